package dev.kiln.cpu;

import dev.kiln.backend.ConvGeometry;

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.Arrays;
import java.util.Random;
import java.util.function.Supplier;

/**
 * Every convolution pass of a training step of the ResNet of {@code ./kiln resnet} at batch 128 through
 * {@link Conv2dKernels}' dispatchers (the kernels the CPU backend runs), one thread, thread CPU time, the minimum of
 * the rounds per pass, and the step's total weighted by calls per step. Not a test: run by hand, alternating
 * processes built from two commits to compare them,
 * {@code java --add-modules jdk.incubator.vector -cp ... dev.kiln.cpu.ConvPassBench [rounds]}.
 */
public final class ConvPassBench {
    public static void main(String[] args) {
        int rounds = args.length > 0 ? Integer.parseInt(args[0]) : 7;
        int n = 128;
        // C, H (= W), OC, kernel, stride, padding, calls per step
        int[][] s = {
                {1, 28, 16, 3, 1, 1, 1}, {16, 28, 16, 3, 1, 1, 4}, {16, 28, 32, 3, 2, 1, 1}, {16, 28, 32, 1, 2, 0, 1},
                {32, 14, 32, 3, 1, 1, 3}, {32, 14, 64, 3, 2, 1, 1}, {32, 14, 64, 1, 2, 0, 1}, {64, 7, 64, 3, 1, 1, 3}};
        ThreadMXBean mx = ManagementFactory.getThreadMXBean();
        ThreadLocal<Scratch> local = ThreadLocal.withInitial(Scratch::new);
        Supplier<Scratch> scratch = local::get;
        double total = 0, flopsTotal = 0;
        try (Parallel par = new Parallel(1)) {
            for (int[] e : s) {
                ConvGeometry g = new ConvGeometry(n, e[0], e[1], e[1], e[2], e[3], e[3], e[4], e[4], e[5], e[5], 1, 1);
                Random r = new Random(1);
                float[] x = new float[(int) g.inputLength()], dy = new float[(int) g.outputLength()];
                float[] w = new float[(int) g.weightLength()];
                for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
                for (int i = 0; i < dy.length; i++) dy[i] = (float) r.nextGaussian();
                for (int i = 0; i < w.length; i++) w[i] = (float) r.nextGaussian() * 0.1f;
                float[] y = new float[dy.length], dx = new float[x.length], dw = new float[w.length];
                Runnable[] passes = {
                        () -> Conv2dKernels.forward(g, x, w, null, y, par, scratch),
                        () -> Conv2dKernels.backwardData(g, w, dy, dx, par, scratch),
                        () -> Conv2dKernels.backwardWeight(g, x, dy, dw, par, scratch)};
                String[] names = {"forward", "backward data", "backward weight"};
                double flops = 2.0 * n * g.outChannels() * g.outH() * g.outW() * g.inChannels() * e[3] * e[3];
                for (int p = 0; p < 3; p++) {
                    if (p == 1 && e[0] == 1) continue;
                    for (int wu = 0; wu < 3; wu++) passes[p].run();
                    long best = Long.MAX_VALUE;
                    for (int k = 0; k < rounds; k++) {
                        long t0 = mx.getCurrentThreadCpuTime();
                        passes[p].run();
                        best = Math.min(best, mx.getCurrentThreadCpuTime() - t0);
                    }
                    total += best * (double) e[6];
                    flopsTotal += flops * e[6];
                    System.out.printf("%-22s %-16s x%d %8.3f ms %6.1f GFLOP/s%n", e[0] + "x" + e[1] + "->" + e[2] + " k" + e[3] + " s" + e[4], names[p], e[6], best / 1e6, flops / best);
                }
            }
        }
        System.out.printf("step total %.1f ms (one thread), %.1f GFLOP/s%n", total / 1e6, flopsTotal / total);
    }
}
