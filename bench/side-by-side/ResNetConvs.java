package dev.kiln.cpu;

import dev.kiln.backend.ConvGeometry;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.Random;

/**
 * The convolutions of the ResNet of {@code ./kiln resnet} at batch 128 through the backend's dispatcher: each
 * geometry's forward, input gradient and weight gradient once per {@link #once} call, and a step's totals (each pass
 * times its calls per step). Compiled against each build by {@code bench/side-by-side}, which loads both and calls
 * them in turn.
 */
public final class ResNetConvs {
    // n, c, h, w, oc, k, stride, pad, calls per step
    static final int[][] SHAPES = {
            {128, 1, 28, 28, 16, 3, 1, 1, 1},
            {128, 16, 28, 28, 16, 3, 1, 1, 4},
            {128, 16, 28, 28, 32, 3, 2, 1, 1},
            {128, 16, 28, 28, 32, 1, 2, 0, 1},
            {128, 32, 14, 14, 32, 3, 1, 1, 3},
            {128, 32, 14, 14, 64, 3, 2, 1, 1},
            {128, 32, 14, 14, 64, 1, 2, 0, 1},
            {128, 64, 7, 7, 64, 3, 1, 1, 3},
    };
    static final ConvGeometry[] G = new ConvGeometry[SHAPES.length];
    static final float[][] X = new float[SHAPES.length][], DY = new float[SHAPES.length][], W = new float[SHAPES.length][];
    static final float[][] Y = new float[SHAPES.length][], DX = new float[SHAPES.length][], DW = new float[SHAPES.length][];
    static ThreadLocal<Scratch> local = ThreadLocal.withInitial(Scratch::new);
    static final ThreadMXBean MX = ManagementFactory.getThreadMXBean();
    static Parallel par;
    static {
        for (int s = 0; s < SHAPES.length; s++) {
            int[] a = SHAPES[s];
            ConvGeometry g = new ConvGeometry(a[0], a[1], a[2], a[3], a[4], a[5], a[5], a[6], a[6], a[7], a[7], 1, 1);
            G[s] = g;
            Random r = new Random(s);
            X[s] = new float[(int) g.inputLength()];
            DY[s] = new float[(int) g.outputLength()];
            W[s] = new float[(int) g.weightLength()];
            for (int i = 0; i < X[s].length; i++) X[s][i] = (float) r.nextGaussian();
            for (int i = 0; i < DY[s].length; i++) DY[s][i] = (float) r.nextGaussian();
            for (int i = 0; i < W[s].length; i++) W[s][i] = (float) r.nextGaussian() * 0.1f;
            Y[s] = new float[DY[s].length];
            DX[s] = new float[X[s].length];
            DW[s] = new float[W[s].length];
        }
    }
    /**
     * Nanoseconds of each shape's forward, input gradient and weight gradient, then the step's totals. Each call
     * starts from new scratch arrays, allocated in an untimed pass: where they land (at a 64-byte boundary or not)
     * moves some kernels by up to 15%, so every round samples a new placement.
     */
    public static long[] once(int threads) {
        if (par == null) par = new Parallel(threads);
        local = ThreadLocal.withInitial(Scratch::new);
        run(threads);
        return run(threads);
    }

    private static long[] run(int threads) {
        long[] t = new long[SHAPES.length * 3 + 4];
        for (int s = 0; s < SHAPES.length; s++) {
            ConvGeometry g = G[s];
            for (int pass = 0; pass < 3; pass++) {
                if (pass == 1 && SHAPES[s][1] == 1) {
                    continue; // the stem's input needs no gradient
                }
                long t0 = threads == 1 ? MX.getCurrentThreadCpuTime() : System.nanoTime();
                if (pass == 0) Conv2dKernels.forward(g, X[s], W[s], null, Y[s], par, local::get);
                else if (pass == 1) Conv2dKernels.backwardData(g, W[s], DY[s], DX[s], par, local::get);
                else Conv2dKernels.backwardWeight(g, X[s], DY[s], DW[s], par, local::get);
                long d = (threads == 1 ? MX.getCurrentThreadCpuTime() : System.nanoTime()) - t0;
                t[3 * s + pass] = d;
                t[SHAPES.length * 3 + pass] += d * SHAPES[s][8];
                t[SHAPES.length * 3 + 3] += d * SHAPES[s][8];
            }
        }
        return t;
    }
    /** A hash of every output, to check that both builds computed the same bits. */
    public static int hash() {
        int h = 0;
        for (float[][] arrays : new float[][][]{Y, DX, DW}) for (float[] a : arrays) for (float v : a) h = 31 * h + Float.floatToIntBits(v);
        return h;
    }
    /** The names of {@link #once}'s times, in order. */
    public static String[] names() {
        java.util.List<String> names = new java.util.ArrayList<>();
        String[] shapes = {"stem", "layer1", "layer2-s2", "layer2-shortcut", "layer2", "layer3-s2", "layer3-shortcut",
                "layer3"};
        for (String s : shapes) {
            names.add(s + " forward");
            names.add(s + " input grad");
            names.add(s + " weight grad");
        }
        names.addAll(java.util.List.of("step forward", "step input grad", "step weight grad", "step all"));
        return names.toArray(new String[0]);
    }
}
