package dev.kiln.examples;

import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.ArrayList;
import java.util.List;

/**
 * What this JVM on this machine can do at best, measured with simple kernels on every core: float32 multiply-adds on
 * L1-resident arrays (the JIT vectorises them) and a STREAM-like triad on arrays far larger than the caches.
 */
record MachinePeak(double gflops, double gbPerSecond) {

    static MachinePeak measure(int threads) {
        return new MachinePeak(best(threads, MachinePeak::flopKernel), best(threads, MachinePeak::triadKernel));
    }

    private interface Kernel {
        /** Runs for a while and returns (work units, seconds). */
        double[] run();
    }

    private static double best(int threads, Kernel k) {
        double best = 0;
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        try {
            for (int round = 0; round < 4; round++) {
                List<Future<double[]>> fs = new ArrayList<>();
                for (int t = 0; t < threads; t++) {
                    fs.add(pool.submit(k::run));
                }
                double work = 0;
                double seconds = 0;
                for (Future<double[]> f : fs) {
                    double[] r = f.get();
                    work += r[0];
                    seconds = Math.max(seconds, r[1]);
                }
                best = Math.max(best, work / seconds / 1e9);
            }
        } catch (Exception e) {
            throw new IllegalStateException("peak measurement failed", e);
        } finally {
            pool.shutdownNow();
        }
        return best;
    }

    /** 8 independent multiply-add chains over 512-float arrays: two FLOPs per element per pass. */
    private static double[] flopKernel() {
        int n = 512;
        float[][] acc = new float[8][n];
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = 1e-3f * (i % 7);
        }
        int passes = 40_000;
        long t0 = System.nanoTime();
        for (int p = 0; p < passes; p++) {
            for (float[] a : acc) {
                for (int i = 0; i < n; i++) {
                    a[i] = a[i] * 0.999f + x[i];
                }
            }
        }
        double seconds = (System.nanoTime() - t0) / 1e9;
        float sink = 0;
        for (float[] a : acc) {
            sink += a[n - 1];
        }
        return new double[]{2.0 * 8 * n * passes + (sink == 42 ? 1 : 0), seconds};
    }

    /** a = b + s * c over 3 x 32 MB: 12 bytes moved per element. */
    private static double[] triadKernel() {
        int n = 8 << 20;
        float[] a = new float[n];
        float[] b = new float[n];
        float[] c = new float[n];
        java.util.Arrays.fill(b, 1f);
        java.util.Arrays.fill(c, 2f);
        int passes = 6;
        long t0 = System.nanoTime();
        for (int p = 0; p < passes; p++) {
            for (int i = 0; i < n; i++) {
                a[i] = b[i] + 0.5f * c[i];
            }
        }
        double seconds = (System.nanoTime() - t0) / 1e9;
        return new double[]{12.0 * n * passes + (a[7] == 42 ? 1 : 0), seconds};
    }
}
