package dev.kiln.cpu;

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.Random;

/**
 * The scalar and SIMD SGEMM paths side by side on LeNet's per-image convolution GEMMs, one thread, alternating rounds,
 * timed in thread CPU time (so other processes on a shared machine disturb it less than wall time). Not a test: run
 * by hand, {@code java --add-modules jdk.incubator.vector -cp ... dev.kiln.cpu.GemmBench [rounds]}.
 */
public final class GemmBench {

    record Shape(String name, boolean ta, boolean tb, int m, int n, int k) {
    }

    public static void main(String[] args) {
        int rounds = args.length > 0 ? Integer.parseInt(args[0]) : 5;
        Shape[] shapes = {
                new Shape("conv1 forward  W(6x25) col(25x784)", false, false, 6, 784, 25),
                new Shape("conv2 forward  W(16x150) col(150x100)", false, false, 16, 100, 150),
                new Shape("conv2 bwd data W^T(150x16) dY(16x100)", true, false, 150, 100, 16),
                new Shape("conv2 bwd wgt  dY(16x100) col^T(100x150)", false, true, 16, 150, 100),
                new Shape("fc1 forward    X(256x400) W^T(400x120)", false, true, 256, 120, 400),
        };
        ThreadMXBean mx = ManagementFactory.getThreadMXBean();
        Random r = new Random(1);
        Scratch s = new Scratch();
        System.out.println("SIMD: " + SimdSupport.describe() + " (lanes " + VectorSgemm.L + ")");
        for (Shape sh : shapes) {
            float[] a = new float[sh.m * sh.k], b = new float[sh.k * sh.n], c = new float[sh.m * sh.n];
            for (int i = 0; i < a.length; i++) a[i] = r.nextFloat();
            for (int i = 0; i < b.length; i++) b[i] = r.nextFloat();
            double flops = 2.0 * sh.m * sh.n * sh.k;
            int reps = (int) Math.max(10, 2e8 / flops);
            double[][] gf = new double[2][rounds];
            for (int round = -2; round < rounds; round++) {
                for (int path = 0; path < 2; path++) {
                    long t0 = mx.getCurrentThreadCpuTime();
                    for (int i = 0; i < reps; i++) {
                        if (path == 0) {
                            Sgemm.gemmScalar(sh.ta, sh.tb, sh.m, sh.n, sh.k, 1f, a, 0, sh.ta ? sh.m : sh.k, b, 0,
                                    sh.tb ? sh.k : sh.n, 0f, c, 0, sh.n, s);
                        } else {
                            VectorSgemm.gemm(sh.ta, sh.tb, sh.m, sh.n, sh.k, 1f, a, 0, sh.ta ? sh.m : sh.k, b, 0,
                                    sh.tb ? sh.k : sh.n, 0f, c, 0, sh.n, s);
                        }
                    }
                    double sec = (mx.getCurrentThreadCpuTime() - t0) / 1e9;
                    if (round >= 0) gf[path][round] = flops * reps / sec / 1e9;
                }
            }
            java.util.Arrays.sort(gf[0]);
            java.util.Arrays.sort(gf[1]);
            System.out.printf("%-42s scalar %6.1f (%5.1f-%5.1f)  simd %6.1f (%5.1f-%5.1f) GFLOP/s per core  %.2fx%n",
                    sh.name, gf[0][rounds / 2], gf[0][0], gf[0][rounds - 1], gf[1][rounds / 2], gf[1][0],
                    gf[1][rounds - 1], gf[1][rounds / 2] / gf[0][rounds / 2]);
        }
        bnBackward(mx, rounds);
        convForward(mx, rounds, new dev.kiln.backend.ConvGeometry(64, 1, 28, 28, 6, 5, 5, 1, 1, 2, 2, 1, 1));
        convWeightGradient(mx, rounds, new dev.kiln.backend.ConvGeometry(64, 1, 28, 28, 6, 5, 5, 1, 1, 2, 2, 1, 1), "conv1");
        convWeightGradient(mx, rounds, new dev.kiln.backend.ConvGeometry(64, 6, 14, 14, 16, 5, 5, 1, 1, 0, 0, 1, 1), "conv2");
    }

    /** The batch-norm backward reduction before the chunked float lanes (one double chain per sum), as a baseline. */
    private static void bnBackwardDoubleChains(int n, int ch, int sp, float[] x, float[] dy, float[] mean, float[] out) {
        for (int c = 0; c < ch; c++) {
            double sdy = 0, sdyx = 0;
            float mu = mean[c];
            for (int i = 0; i < n; i++) {
                int o = (i * ch + c) * sp;
                for (int j = 0; j < sp; j++) {
                    double d = dy[o + j];
                    sdy += d;
                    sdyx += d * ((double) x[o + j] - mu);
                }
            }
            out[c] = (float) (sdy + sdyx);
        }
    }

    /** Batch-norm backward sums (bn1 shape at batch 64) on one thread: the kernel now against the scalar double chains. */
    private static void bnBackward(ThreadMXBean mx, int rounds) {
        dev.kiln.backend.BatchNormGeometry g = new dev.kiln.backend.BatchNormGeometry(64, 6, 784);
        int len = 64 * 6 * 784;
        Random r = new Random(4);
        float[] x = new float[len], dy = new float[len], dx = new float[len];
        for (int i = 0; i < len; i++) {
            x[i] = (float) r.nextGaussian();
            dy[i] = (float) r.nextGaussian() * 1e-3f;
        }
        float[] gamma = {1, 1, 1, 1, 1, 1}, mean = new float[6], inv = {1, 1, 1, 1, 1, 1};
        float[] dg = new float[6], db = new float[6], out = new float[6];
        try (Parallel par = new Parallel(1)) {
            double[][] ns = new double[2][rounds];
            for (int round = -3; round < rounds; round++) {
                for (int path = 0; path < 2; path++) {
                    long t0 = mx.getCurrentThreadCpuTime();
                    for (int i = 0; i < 20; i++) {
                        if (path == 0) {
                            bnBackwardDoubleChains(64, 6, 784, x, dy, mean, out);
                        } else {
                            BatchNormKernels.backward(g, x, dy, gamma, mean, inv, null, dg, db, par);
                        }
                    }
                    double sec = (mx.getCurrentThreadCpuTime() - t0) / 1e9;
                    if (round >= 0) ns[path][round] = sec / 20 / len * 1e9;
                }
            }
            java.util.Arrays.sort(ns[0]);
            java.util.Arrays.sort(ns[1]);
            System.out.printf("%-42s double chains %.3f (%.3f-%.3f)  now %.3f (%.3f-%.3f) ns/value  %.2fx%n",
                    "bn1 backward sums, batch 64 (" + SimdSupport.describe() + ")", ns[0][rounds / 2], ns[0][0], ns[0][rounds - 1], ns[1][rounds / 2],
                    ns[1][0], ns[1][rounds - 1], ns[0][rounds / 2] / ns[1][rounds / 2]);
        }
    }

    /** conv1 forward at batch 64 on one thread: im2col + SGEMM (whichever path is on) against the direct kernel. */
    private static void convForward(ThreadMXBean mx, int rounds, dev.kiln.backend.ConvGeometry g) {
        Random r = new Random(3);
        float[] x = new float[(int) g.inputLength()], w = new float[(int) g.weightLength()];
        float[] b = new float[g.outChannels()], y = new float[(int) g.outputLength()];
        for (int i = 0; i < x.length; i++) x[i] = r.nextFloat();
        for (int i = 0; i < w.length; i++) w[i] = r.nextFloat();
        Scratch sc = new Scratch();
        try (Parallel par = new Parallel(1)) {
            double flops = 2.0 * g.outputLength() * g.inChannels() * g.kernelH() * g.kernelW();
            double[][] gf = new double[2][rounds];
            for (int round = -3; round < rounds; round++) {
                for (int path = 0; path < 2; path++) {
                    long t0 = mx.getCurrentThreadCpuTime();
                    for (int i = 0; i < 20; i++) {
                        if (path == 0) {
                            Conv2dKernels.forwardIm2col(g, x, w, b, y, par, () -> sc);
                        } else {
                            VectorConv.forward(g, x, w, b, y, par, () -> sc);
                        }
                    }
                    double sec = (mx.getCurrentThreadCpuTime() - t0) / 1e9;
                    if (round >= 0) gf[path][round] = flops * 20 / sec / 1e9;
                }
            }
            java.util.Arrays.sort(gf[0]);
            java.util.Arrays.sort(gf[1]);
            System.out.printf("%-42s im2col %6.1f (%5.1f-%5.1f)  direct %6.1f (%5.1f-%5.1f) GFLOP/s per core  %.2fx%n",
                    "conv1 forward, batch 64, with bias", gf[0][rounds / 2], gf[0][0], gf[0][rounds - 1],
                    gf[1][rounds / 2], gf[1][0], gf[1][rounds - 1], gf[1][rounds / 2] / gf[0][rounds / 2]);
        }
    }

    /**
     * Weight gradients at batch 64 on one thread (the chunking of the real op): for one input channel im2col + SIMD
     * lanes against the direct kernel, otherwise the scalar path against im2col + SIMD lanes.
     */
    private static void convWeightGradient(ThreadMXBean mx, int rounds, dev.kiln.backend.ConvGeometry g, String name) {
        Random r = new Random(2);
        float[] x = new float[g.n() * g.inChannels() * g.inH() * g.inW()];
        float[] dy = new float[g.n() * g.outChannels() * g.outH() * g.outW()];
        for (int i = 0; i < x.length; i++) x[i] = r.nextFloat();
        for (int i = 0; i < dy.length; i++) dy[i] = r.nextFloat();
        int chunks = Math.min(g.n(), 16);
        float[] partial = new float[chunks * g.outChannels() * g.inChannels() * g.kernelH() * g.kernelW()];
        Scratch sc = new Scratch();
        try (Parallel par = new Parallel(1)) {
            double flops = 2.0 * g.n() * g.outChannels() * g.inChannels() * g.kernelH() * g.kernelW() * g.outH() * g.outW();
            double[][] gf = new double[2][rounds];
            for (int round = -3; round < rounds; round++) {
                for (int path = 0; path < 2; path++) {
                    long t0 = mx.getCurrentThreadCpuTime();
                    for (int i = 0; i < 20; i++) {
                        if (path == 0) {
                            if (VectorConv.fits(g)) {
                                Conv2dKernels.backwardWeightSimd(g, x, dy, partial, chunks, par, () -> sc);
                            } else {
                                Conv2dKernels.backwardWeightScalar(g, x, dy, partial, chunks, par, () -> sc);
                            }
                        } else if (VectorConv.fits(g)) {
                            VectorConv.weightGradient(g, x, dy, partial, chunks, par, () -> sc);
                        } else {
                            Conv2dKernels.backwardWeightSimd(g, x, dy, partial, chunks, par, () -> sc);
                        }
                    }
                    double sec = (mx.getCurrentThreadCpuTime() - t0) / 1e9;
                    if (round >= 0) gf[path][round] = flops * 20 / sec / 1e9;
                }
            }
            java.util.Arrays.sort(gf[0]);
            java.util.Arrays.sort(gf[1]);
            System.out.printf("%-42s %s %6.1f (%5.1f-%5.1f)  %s %6.1f (%5.1f-%5.1f) GFLOP/s per core  %.2fx%n",
                    name + " weight gradient, batch 64", VectorConv.fits(g) ? "im2col+lanes" : "scalar", gf[0][rounds / 2], gf[0][0], gf[0][rounds - 1],
                    VectorConv.fits(g) ? "direct" : "im2col+lanes", gf[1][rounds / 2], gf[1][0], gf[1][rounds - 1],
                    gf[1][rounds / 2] / gf[0][rounds / 2]);
        }
    }
}
