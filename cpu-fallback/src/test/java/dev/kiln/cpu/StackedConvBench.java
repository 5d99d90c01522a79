package dev.kiln.cpu;

import dev.kiln.backend.ConvGeometry;

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.Random;

/**
 * The stride-1 3x3 convolutions of the ResNet of {@code ./kiln resnet} at batch 128, forward and input gradient, on
 * the padded layout and on {@link StackedConv}'s, calls alternating between the two in one process (so both see the
 * same phases of a noisy machine); one thread in thread CPU time, or wall time with more threads; minimum and median.
 * Not a test: run by hand,
 * {@code java --add-modules jdk.incubator.vector -cp ... dev.kiln.cpu.StackedConvBench [rounds] [threads]}.
 */
public final class StackedConvBench {

    public static void main(String[] args) {
        int rounds = args.length > 0 ? Integer.parseInt(args[0]) : 15;
        int threads = args.length > 1 ? Integer.parseInt(args[1]) : 1;
        ConvGeometry[] shapes = {
                new ConvGeometry(128, 16, 28, 28, 16, 3, 3, 1, 1, 1, 1, 1, 1),
                new ConvGeometry(128, 32, 14, 14, 32, 3, 3, 1, 1, 1, 1, 1, 1),
                new ConvGeometry(128, 64, 7, 7, 64, 3, 3, 1, 1, 1, 1, 1, 1),
        };
        ThreadMXBean mx = ManagementFactory.getThreadMXBean();
        ThreadLocal<Scratch> local = ThreadLocal.withInitial(Scratch::new);
        System.out.println("kernels: " + SimdSupport.describe() + ", " + threads + " thread(s), " + rounds
                + " rounds, " + (threads == 1 ? "thread CPU time" : "wall time"));
        System.out.printf("%-28s %-15s %-8s %9s %10s %8s%n", "shape", "pass", "layout", "min ms", "median ms",
                "GFLOP/s");
        try (Parallel par = new Parallel(threads)) {
            for (ConvGeometry g : shapes) {
                Random r = new Random(1);
                float[] x = new float[(int) g.inputLength()];
                float[] dy = new float[(int) g.outputLength()];
                float[] w = new float[(int) g.weightLength()];
                for (int i = 0; i < x.length; i++) {
                    x[i] = (float) r.nextGaussian();
                }
                for (int i = 0; i < dy.length; i++) {
                    dy[i] = (float) r.nextGaussian();
                }
                for (int i = 0; i < w.length; i++) {
                    w[i] = (float) r.nextGaussian() * 0.1f;
                }
                float[] y = new float[dy.length];
                float[] dx = new float[x.length];
                double flops = 2.0 * g.n() * g.outChannels() * g.outH() * g.outW() * g.inChannels() * 9;
                String shape = g.n() + "x" + g.inChannels() + "x" + g.inH() + "x" + g.inW() + "->" + g.outChannels();
                for (int pass = 0; pass < 2; pass++) {
                    long[][] times = new long[2][rounds];
                    for (int k = -3; k < rounds; k++) {
                        for (int layout = 0; layout < 2; layout++) {
                            boolean stacked = layout == 1;
                            long t0 = threads == 1 ? mx.getCurrentThreadCpuTime() : System.nanoTime();
                            if (pass == 0) {
                                ImplicitConv.forward(g, x, w, null, y, par, local::get, stacked);
                            } else {
                                ImplicitConv.backwardData(g, w, dy, dx, par, local::get, stacked);
                            }
                            long t = (threads == 1 ? mx.getCurrentThreadCpuTime() : System.nanoTime()) - t0;
                            if (k >= 0) {
                                times[layout][k] = t;
                            }
                        }
                    }
                    for (int layout = 0; layout < 2; layout++) {
                        long[] t = times[layout].clone();
                        java.util.Arrays.sort(t);
                        System.out.printf("%-28s %-15s %-8s %9.3f %10.3f %8.1f%n", shape,
                                pass == 0 ? "forward" : "input gradient", layout == 0 ? "padded" : "stacked",
                                t[0] / 1e6, t[rounds / 2] / 1e6, flops / t[0]);
                    }
                }
            }
        }
    }
}
