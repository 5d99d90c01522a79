package dev.kiln.examples;

import dev.kiln.backend.Backend;

/**
 * Median wall time of one call of a backend op: warmed up (at least 0.5 s and 20 calls, then until the JIT compilers
 * have been idle for a while, {@link JitWarmup}, within the command's cap), then timed in rounds of at least 40 ms
 * that end with a synchronisation, so queued GPU work is counted; a wait every 4 calls keeps the queue short.
 */
final class OpTimer {

    private OpTimer() {
    }

    /**
     * Median seconds per call of {@code body}; its warm-up ends by {@code warmupCapSeconds} after it starts, or with
     * its minimum if that takes longer.
     */
    static double medianSeconds(Backend b, int rounds, Runnable body, double warmupCapSeconds) {
        JitWarmup.run(body, 20, 500_000_000L, (long) (warmupCapSeconds * 1e9));
        b.synchronize();
        double[] per = new double[rounds];
        for (int r = 0; r < rounds; r++) {
            int k = 0;
            long t0 = System.nanoTime();
            long t;
            do {
                body.run();
                k++;
                if ((k & 3) == 0 || k < 4) {
                    b.synchronize();
                }
                t = System.nanoTime();
            } while (t - t0 < 40_000_000L);
            b.synchronize();
            per[r] = (System.nanoTime() - t0) / 1e9 / k;
        }
        return BenchLeNetCommand.median(per);
    }
}
