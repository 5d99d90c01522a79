package dev.kiln.cpu;

import java.util.Arrays;

/**
 * A bounded, size-keyed pool of {@code float[]} arrays for one backend instance, so a training step that allocates
 * the same tensors every step stops allocating once warm. Arrays (never {@link CpuBuffer} objects) are pooled: a
 * closed buffer drops its reference before its array is returned, so a stale buffer can never see new data.
 * Arrays handed out are zero-filled (as {@code allocate} promises).
 *
 * <p>Bounded in bytes ({@code maxBytes}) and in distinct lengths. When an array given back does not fit, arrays of a
 * stale length (none taken or given back for {@link #STALE_AFTER} pool operations, the one used longest ago first)
 * are dropped to the garbage collector to make room, so the lengths in use now stay pooled: without that, an eval pass
 * at another batch size could fill the pool with its lengths and leave every later training step allocating its
 * working set afresh. Lengths in recent use are not displaced: a pass whose working set exceeds the pool keeps what it
 * has (displacing its own arrays would only trade one allocation for another). Thread-safe (one lock; the critical
 * sections are a few array operations).
 */
final class ArrayPool {

    /** Arrays shorter than this are not worth pooling (allocation is a bump of a pointer). */
    static final int MIN_LENGTH = 16;
    private static final int MAX_SIZES = 128;
    private static final int MAX_PER_SIZE = 64;

    private final long maxBytes;
    private final int[] lengths = new int[MAX_SIZES];
    private final float[][][] stacks = new float[MAX_SIZES][][];
    private final int[] counts = new int[MAX_SIZES];
    /** When each length was last taken or given back (a counter of pool operations). */
    private final long[] lastUse = new long[MAX_SIZES];
    private long clock;
    private int sizes;
    private long pooledBytes;
    private long hits, misses;

    /** Pool operations after which an unused length may be displaced: several training steps of a large model. */
    static final long STALE_AFTER = 4096;

    private final long staleAfter;

    ArrayPool(long maxBytes) {
        this(maxBytes, STALE_AFTER);
    }

    ArrayPool(long maxBytes, long staleAfter) {
        this.maxBytes = maxBytes;
        this.staleAfter = staleAfter;
    }

    /** A zero-filled array of exactly {@code length} floats, reused when one is pooled. */
    float[] take(int length) {
        float[] a = takeDirty(length);
        if (a != null) {
            Arrays.fill(a, 0f);
            return a;
        }
        return new float[length];
    }

    /** A pooled array of exactly {@code length} floats with arbitrary content, or null. */
    float[] takeDirty(int length) {
        if (length < MIN_LENGTH) {
            return null;
        }
        synchronized (this) {
            int s = find(length);
            if (s >= 0) {
                lastUse[s] = ++clock;
            }
            if (s >= 0 && counts[s] > 0) {
                float[][] st = stacks[s];
                float[] a = st[--counts[s]];
                st[counts[s]] = null;
                pooledBytes -= 4L * length;
                hits++;
                return a;
            }
            misses++;
            return null;
        }
    }

    /** Gives {@code a} back; the caller must hold no other reference to it. */
    void give(float[] a) {
        int length = a.length;
        if (length < MIN_LENGTH || 4L * length > maxBytes) {
            return;
        }
        synchronized (this) {
            int s = find(length);
            if (s >= 0 && counts[s] == MAX_PER_SIZE) {
                lastUse[s] = ++clock;
                return;
            }
            if (s < 0) {
                if (sizes == MAX_SIZES) {
                    s = leastRecentlyUsed(-1); // its length's arrays go with the slot
                    if (s < 0) {
                        return;
                    }
                    pooledBytes -= 4L * lengths[s] * counts[s];
                } else {
                    s = sizes++;
                }
                lengths[s] = length;
                stacks[s] = new float[4][];
                counts[s] = 0;
            }
            lastUse[s] = ++clock;
            while (pooledBytes + 4L * length > maxBytes) {
                int v = leastRecentlyUsed(s);
                if (v < 0) {
                    return;
                }
                stacks[v][--counts[v]] = null;
                pooledBytes -= 4L * lengths[v];
            }
            if (counts[s] == stacks[s].length) {
                stacks[s] = Arrays.copyOf(stacks[s], Math.min(MAX_PER_SIZE, 2 * counts[s]));
            }
            stacks[s][counts[s]++] = a;
            pooledBytes += 4L * length;
        }
    }

    /**
     * The stale slot used longest ago, other than {@code keep}, holding arrays unless {@code keep} is -1 (a slot to
     * reuse); -1 if none.
     */
    private int leastRecentlyUsed(int keep) {
        int best = -1;
        for (int i = 0; i < sizes; i++) {
            if (i != keep && (keep < 0 || counts[i] > 0) && clock - lastUse[i] > staleAfter
                    && (best < 0 || lastUse[i] < lastUse[best])) {
                best = i;
            }
        }
        return best;
    }

    private int find(int length) {
        for (int i = 0; i < sizes; i++) {
            if (lengths[i] == length) {
                return i;
            }
        }
        return -1;
    }

    synchronized void clear() {
        for (int i = 0; i < sizes; i++) {
            stacks[i] = null;
            counts[i] = 0;
        }
        sizes = 0;
        pooledBytes = 0;
    }

    synchronized long pooledBytes() {
        return pooledBytes;
    }

    synchronized String stats() {
        return "pool: " + sizes + " lengths, " + pooledBytes / 1024 + " KiB held, " + hits + " hits, " + misses + " misses";
    }
}
