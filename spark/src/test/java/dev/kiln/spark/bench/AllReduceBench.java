package dev.kiln.spark.bench;

import dev.kiln.distributed.Collective;
import dev.kiln.distributed.CollectiveException;
import dev.kiln.spark.SocketCollective;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.Arrays;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.zip.CRC32;

/**
 * One member of the all-reduce benchmark ({@code bench/allreduce} starts N of these JVMs on 127.0.0.1): connects a
 * {@link SocketCollective} through a rendezvous in a shared folder, runs {@code warmup + reps} all-reduces of
 * {@code floats} values and prints one line: bytes this member sent per all-reduce, the median and best time, and a
 * CRC of the result's bits (the same on every member and every repetition, or the line says so).
 *
 * <p>Arguments: rank world folder floats algorithm(MESH|RING|AUTO) reps warmup [encrypt]
 */
public final class AllReduceBench {

    private AllReduceBench() {
    }

    public static void main(String[] args) throws Exception {
        int rank = Integer.parseInt(args[0]);
        int world = Integer.parseInt(args[1]);
        Path folder = Path.of(args[2]);
        int floats = Integer.parseInt(args[3]);
        SocketCollective.Algorithm algorithm = SocketCollective.Algorithm.valueOf(args[4].toUpperCase(Locale.ROOT));
        int reps = Integer.parseInt(args[5]);
        int warmup = Integer.parseInt(args[6]);
        boolean encrypt = args.length > 7 && Boolean.parseBoolean(args[7]);
        float[] base = new float[floats];
        SplittableRandom random = new SplittableRandom(1000 + rank);
        for (int i = 0; i < floats; i++) {
            base[i] = (float) (random.nextDouble() * 2 - 1);
        }
        float[] v = new float[floats];
        SocketCollective.Options options = SocketCollective.Options.of(Duration.ofMinutes(5)).algorithm(algorithm)
                .encrypt(encrypt);
        try (SocketCollective c = SocketCollective.connect(new FolderRendezvous(folder, rank, world), "127.0.0.1",
                options)) {
            long[] nanos = new long[reps];
            long bytes = -1;
            long crc = -1;
            boolean stable = true;
            for (int i = 0; i < warmup + reps; i++) {
                System.arraycopy(base, 0, v, 0, floats);
                c.barrier();
                long b0 = c.bytesSent();
                long t0 = System.nanoTime();
                c.allReduceMean(v);
                long t = System.nanoTime() - t0;
                long sent = c.bytesSent() - b0;
                long sum = crc(v);
                stable &= crc == -1 || (sum == crc && sent == bytes);
                crc = sum;
                bytes = sent;
                if (i >= warmup) {
                    nanos[i - warmup] = t;
                }
            }
            Arrays.sort(nanos);
            System.out.printf(Locale.ROOT, "RESULT rank=%d world=%d floats=%d algorithm=%s encrypt=%b bytes=%d "
                            + "median_ms=%.3f best_ms=%.3f crc=%08x stable=%b%n", rank, world, floats, algorithm,
                    encrypt, bytes, nanos[reps / 2] / 1e6, nanos[0] / 1e6, crc, stable);
        }
    }

    private static long crc(float[] v) {
        ByteBuffer b = ByteBuffer.allocate(v.length * Float.BYTES).order(ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(v);
        CRC32 crc = new CRC32();
        crc.update(b);
        return crc.getValue();
    }

    /**
     * A rendezvous of separate JVMs on one machine: exchange k of member r is the file {@code k-r} in a shared
     * folder, written atomically; every member polls until all N files of the exchange are there.
     */
    static final class FolderRendezvous implements Collective {
        private final Path folder;
        private final int rank;
        private final int world;
        private int exchange;

        FolderRendezvous(Path folder, int rank, int world) {
            this.folder = folder;
            this.rank = rank;
            this.world = world;
        }

        @Override
        public int rank() {
            return rank;
        }

        @Override
        public int worldSize() {
            return world;
        }

        @Override
        public byte[][] allGather(byte[] local) {
            int k = exchange++;
            try {
                Path tmp = folder.resolve(k + "-" + rank + ".tmp");
                Files.write(tmp, local);
                try {
                    Files.move(tmp, folder.resolve(k + "-" + rank), StandardCopyOption.ATOMIC_MOVE);
                } catch (AtomicMoveNotSupportedException e) {
                    Files.move(tmp, folder.resolve(k + "-" + rank));
                }
                byte[][] all = new byte[world][];
                long deadline = System.nanoTime() + Duration.ofMinutes(5).toNanos();
                for (int r = 0; r < world; r++) {
                    Path p = folder.resolve(k + "-" + r);
                    while (!Files.exists(p)) {
                        if (System.nanoTime() > deadline) {
                            throw new CollectiveException("rendezvous: member " + r + " never wrote " + p);
                        }
                        Thread.sleep(5);
                    }
                    all[r] = Files.readAllBytes(p);
                }
                return all;
            } catch (IOException e) {
                throw new CollectiveException("rendezvous in " + folder + " failed: " + e, e);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new CollectiveException("rendezvous interrupted", e);
            }
        }
    }
}
