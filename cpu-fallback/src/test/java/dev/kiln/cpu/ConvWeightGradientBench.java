package dev.kiln.cpu;

import dev.kiln.backend.ConvGeometry;

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;
import java.util.function.Supplier;

/**
 * The padded and strided convolutions of the ResNet of {@code ./kiln resnet} at batch 128: their weight-gradient
 * kernels side by side (and the forward and strided input gradient), rounds alternating between kernels, minimum and
 * median; one thread in thread CPU time, or wall time with more threads. Not a test: run by hand,
 * {@code java --add-modules jdk.incubator.vector -cp ... dev.kiln.cpu.ConvWeightGradientBench [rounds] [batch] [threads]}.
 */
public final class ConvWeightGradientBench {

    public static void main(String[] args) {
        int rounds = args.length > 0 ? Integer.parseInt(args[0]) : 7;
        int n = args.length > 1 ? Integer.parseInt(args[1]) : 128;
        int threads = args.length > 2 ? Integer.parseInt(args[2]) : 1;
        ConvGeometry[] shapes = {
                new ConvGeometry(n, 16, 28, 28, 16, 3, 3, 1, 1, 1, 1, 1, 1),
                new ConvGeometry(n, 16, 28, 28, 32, 3, 3, 2, 2, 1, 1, 1, 1),
                new ConvGeometry(n, 32, 14, 14, 32, 3, 3, 1, 1, 1, 1, 1, 1),
                new ConvGeometry(n, 32, 14, 14, 64, 3, 3, 2, 2, 1, 1, 1, 1),
                new ConvGeometry(n, 64, 7, 7, 64, 3, 3, 1, 1, 1, 1, 1, 1),
                new ConvGeometry(n, 16, 28, 28, 32, 1, 1, 2, 2, 0, 0, 1, 1),
                new ConvGeometry(n, 32, 14, 14, 64, 1, 1, 2, 2, 0, 0, 1, 1),
        };
        ThreadMXBean mx = ManagementFactory.getThreadMXBean();
        ThreadLocal<Scratch> local = ThreadLocal.withInitial(Scratch::new);
        Supplier<Scratch> scratch = local::get;
        System.out.println("kernels: " + SimdSupport.describe() + ", " + threads + " thread(s), " + rounds
                + " rounds, " + (threads == 1 ? "thread CPU time" : "wall time"));
        System.out.printf("%-40s %-28s %10s %10s %9s%n", "shape", "kernel", "min ms", "median ms", "GFLOP/s");
        try (Parallel par = new Parallel(threads)) {
            for (ConvGeometry g : shapes) {
                Random r = new Random(1);
                float[] x = new float[(int) g.inputLength()];
                float[] dy = new float[(int) g.outputLength()];
                for (int i = 0; i < x.length; i++) {
                    x[i] = (float) r.nextGaussian();
                }
                for (int i = 0; i < dy.length; i++) {
                    dy[i] = (float) r.nextGaussian();
                }
                int wl = (int) g.weightLength();
                int chunks = Math.max(1, Math.min(16, g.n() / 8));
                float[] dwGemm = new float[wl];
                Map<String, Runnable> kernels = new LinkedHashMap<>();
                float[] dw = new float[wl];
                kernels.put("Conv2dKernels.backwardWeight", () -> Conv2dKernels.backwardWeight(g, x, dy, dw, par,
                        scratch));
                kernels.put("8 taps x 2 vectors", () -> ImplicitConv.weightGradientGemm(g, x, dy, dwGemm, chunks,
                        par, scratch, false, false));
                kernels.put("24 accumulators", () -> ImplicitConv.weightGradientGemm(g, x, dy, dwGemm,
                        chunks, par, scratch, true, false));
                kernels.put("24 accumulators, grouped", () -> ImplicitConv.weightGradientGemm(g, x, dy, dwGemm,
                        chunks, par, scratch, true, true));
                float[] y = new float[(int) g.outputLength()];
                float[] w = new float[wl];
                Arrays.fill(w, 0.01f);
                if (ImplicitConv.fits(g)) {
                    kernels.put("forward", () -> ImplicitConv.forward(g, x, w, null, y, par, scratch));
                }
                float[] dx = new float[(int) g.inputLength()];
                if (ImplicitConv.fitsBackwardData(g) && g.strideH() > 1) {
                    kernels.put("backward data", () -> ImplicitConv.backwardDataStrided(g, w, dy, dx, par, scratch));
                }
                double flops = 2.0 * g.n() * g.outChannels() * g.outH() * g.outW() * g.inChannels() * g.kernelH()
                        * g.kernelW();
                long[][] times = new long[kernels.size()][rounds];
                for (Runnable k : kernels.values()) {
                    for (int warm = 0; warm < 3; warm++) {
                        k.run();
                    }
                }
                for (int round = 0; round < rounds; round++) {
                    int i = 0;
                    for (Runnable k : kernels.values()) {
                        long t0 = threads == 1 ? mx.getCurrentThreadCpuTime() : System.nanoTime();
                        k.run();
                        times[i++][round] = (threads == 1 ? mx.getCurrentThreadCpuTime() : System.nanoTime()) - t0;
                    }
                }
                int i = 0;
                for (String name : kernels.keySet()) {
                    long[] t = times[i++];
                    Arrays.sort(t);
                    System.out.printf("%-40s %-28s %10.3f %10.3f %9.1f%n", g.n() + "x" + g.inChannels() + "x"
                                    + g.inH() + "x" + g.inW() + "->" + g.outChannels() + " s" + g.strideH(), name,
                            t[0] / 1e6, t[rounds / 2] / 1e6, flops / t[0]);
                }
            }
        }
    }
}
