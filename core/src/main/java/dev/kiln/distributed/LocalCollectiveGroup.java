package dev.kiln.distributed;

import java.time.Duration;
import java.util.Objects;
import java.util.concurrent.BrokenBarrierException;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * A collective over threads of one JVM: {@code worldSize} members, each used by its own thread
 * ({@link #member(int)}). Exchanges meet at a barrier; a member that fails or stays away longer than the timeout
 * breaks the barrier, and every other member's call then throws a {@link CollectiveException} instead of hanging.
 */
public final class LocalCollectiveGroup {

    private final int worldSize;
    private final Duration timeout;
    private final CyclicBarrier barrier;
    private final byte[][] slots;

    public LocalCollectiveGroup(int worldSize) {
        this(worldSize, Duration.ofMinutes(5));
    }

    public LocalCollectiveGroup(int worldSize, Duration timeout) {
        if (worldSize < 1) {
            throw new IllegalArgumentException("LocalCollectiveGroup: world size must be positive, got " + worldSize);
        }
        this.worldSize = worldSize;
        this.timeout = Objects.requireNonNull(timeout, "timeout");
        this.barrier = new CyclicBarrier(worldSize);
        this.slots = new byte[worldSize][];
    }

    public int worldSize() {
        return worldSize;
    }

    /** The member with this rank; give each to one thread. */
    public Collective member(int rank) {
        if (rank < 0 || rank >= worldSize) {
            throw new IllegalArgumentException("LocalCollectiveGroup: rank " + rank + " outside 0.." + (worldSize - 1));
        }
        return new Member(rank);
    }

    /** Breaks the barrier so that members waiting in an exchange fail instead of waiting for a dead peer. */
    public void abort() {
        barrier.reset();
    }

    private final class Member implements Collective {
        private final int rank;

        Member(int rank) {
            this.rank = rank;
        }

        @Override
        public int rank() {
            return rank;
        }

        @Override
        public int worldSize() {
            return worldSize;
        }

        @Override
        public byte[][] allGather(byte[] local) {
            slots[rank] = local.clone();
            await("allGather");                 // every slot is written
            byte[][] out = new byte[worldSize][];
            for (int r = 0; r < worldSize; r++) {
                out[r] = slots[r].clone();
            }
            await("allGather (read)");          // nobody overwrites a slot before everyone has read it
            return out;
        }

        private void await(String op) {
            try {
                barrier.await(timeout.toMillis(), TimeUnit.MILLISECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                barrier.reset();
                throw new CollectiveException(op + ": rank " + rank + " interrupted", e);
            } catch (BrokenBarrierException e) {
                throw new CollectiveException(op + ": rank " + rank + " of " + worldSize
                        + ": another member failed or aborted the group", e);
            } catch (TimeoutException e) {
                throw new CollectiveException(op + ": rank " + rank + " of " + worldSize + " waited more than "
                        + timeout + " for the other members", e);
            }
        }

        @Override
        public String toString() {
            return "LocalCollectiveGroup member " + rank + "/" + worldSize;
        }
    }
}
