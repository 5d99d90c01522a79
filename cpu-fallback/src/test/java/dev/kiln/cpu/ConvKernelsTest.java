package dev.kiln.cpu;

import dev.kiln.backend.ConvGeometry;
import dev.kiln.core.Generator;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Convolutions with padding and strides (ResNet's shapes and their edges) through {@link Conv2dKernels}, on whichever
 * kernel set runs (this class runs under both, see the scalar-kernels surefire execution), at 1 and 3 threads:
 * within a stated tolerance of a float64 reference, and bit for bit the same at both thread counts. With the SIMD
 * kernels, {@link ImplicitConv}'s forward and input gradients (stride 1 and by stride phase) also equal, bit for bit, a
 * plain loop that sums the same terms in the same order with fused multiply-adds.
 */
class ConvKernelsTest {

    /**
     * Error bound, relative to the sum of the terms' magnitudes: float32 sums of up to a few thousand terms (forward,
     * input gradient) and of a chunk's images x positions (weight gradient) stay far inside it.
     */
    private static final double TOLERANCE = 1e-5;
    private static final double WEIGHT_GRADIENT_TOLERANCE = 1e-4;

    /** n, C, H, W, OC, KH, KW, SH, SW, PH, PW. */
    private static final int[][] SHAPES = {
            {3, 16, 28, 28, 16, 3, 3, 1, 1, 1, 1},   // ResNet layer1
            {2, 16, 28, 28, 32, 3, 3, 2, 2, 1, 1},   // ResNet layer2 stride 2
            {2, 32, 14, 14, 32, 3, 3, 1, 1, 1, 1},   // ResNet layer2
            {2, 64, 7, 7, 64, 3, 3, 1, 1, 1, 1},     // ResNet layer3: many weights (weight gradient as a GEMM)
            {2, 3, 7, 11, 5, 3, 3, 1, 1, 1, 1},      // odd width, 5 output channels (4 + 1 of the packed blocks)
            {2, 2, 5, 5, 3, 3, 3, 1, 1, 1, 1},       // rows narrower than a vector
            {3, 3, 9, 13, 4, 3, 3, 2, 2, 1, 1},      // stride 2, odd sizes
            {2, 2, 11, 11, 13, 5, 5, 2, 2, 2, 2},    // stride 2, 5x5, 13 output channels
            {2, 3, 8, 8, 6, 3, 3, 2, 2, 0, 0},       // stride 2 unpadded
            {2, 1, 6, 6, 4, 3, 3, 1, 1, 1, 1},       // one input channel, rows narrower than a vector
            {1, 4, 10, 9, 7, 3, 3, 1, 1, 1, 1},      // batch 1
            {2, 2, 9, 10, 3, 3, 2, 2, 1, 1, 0},      // rectangular kernel, stride and padding per axis
            {2, 3, 6, 6, 4, 3, 3, 1, 1, 3, 3},       // padding past the kernel: input gradient takes col2im
            {2, 32, 6, 6, 40, 3, 3, 1, 1, 1, 1},     // many weights, 40 output channels (not whole vectors)
            {2, 16, 28, 28, 32, 1, 1, 2, 2, 0, 0},   // 1x1 stride-2 shortcut (im2col path)
            {2, 48, 5, 6, 12, 3, 3, 1, 1, 1, 1},     // many weights, 12 output channels: one vector of them
            {2, 3, 10, 11, 4, 2, 2, 3, 3, 0, 1},     // stride 3 past a 2x2 kernel: phases no tap reaches
            {2, 2, 8, 9, 3, 3, 3, 2, 2, 3, 3},       // stride 2, padding past the kernel
            {7, 8, 7, 7, 16, 3, 3, 1, 1, 1, 1},      // 7x7 planes (an 8x3 and an 8x1 block), several images per thread
            {5, 8, 14, 14, 16, 3, 3, 2, 2, 1, 1},    // stride 2 to 7x7, several images per thread
            {2, 3, 5, 5, 8, 3, 3, 1, 1, 1, 1},       // exactly one 8x3 block per image
            {3, 2, 9, 35, 8, 3, 3, 2, 2, 1, 1},      // stride 2, rows wider than two vectors, odd width
            {20, 16, 28, 28, 32, 3, 3, 2, 2, 1, 1},  // weight gradient: two chunks of 10 images, groups of 6 and 4
            {17, 32, 14, 14, 64, 1, 1, 2, 2, 0, 0},  // 1x1 stride-2 shortcut, two chunks (8 and 9 images)
            {2, 64, 7, 7, 64, 3, 3, 2, 2, 1, 1},     // 4 vectors of output channels x 6 taps, stride 2
            {9, 8, 7, 7, 16, 3, 3, 1, 1, 1, 1},      // same padding, groups of 4 (1 thread) or 3 images, a short last one
            {3, 2, 6, 7, 5, 5, 5, 1, 1, 2, 2},       // same padding 5x5: two zero rows, two wrapped columns a side
            {2, 3, 4, 3, 4, 5, 5, 1, 1, 2, 2},       // same padding, width one more than the padding
            {3, 2, 5, 6, 4, 1, 3, 1, 1, 0, 1},       // same padding 1x3: images with no zero rows between them
            {3, 2, 6, 5, 4, 3, 1, 1, 1, 1, 0},       // same padding 3x1: one column copy
            {5, 4, 6, 6, 12, 3, 3, 1, 1, 1, 1},      // same padding, 12 output channels (an 8 and a 4 block)
            {9, 8, 14, 14, 16, 3, 3, 2, 2, 1, 1},    // stride 2 to 7x7 stacked, groups of 4 or 3 images
            {5, 3, 9, 9, 4, 3, 3, 2, 2, 1, 1},       // stride 2, odd size: phase planes of 5 and 4 columns
            {4, 3, 11, 11, 5, 1, 1, 2, 2, 0, 0},     // 1x1 stride 2, odd size
            {3, 2, 12, 10, 4, 5, 5, 2, 2, 2, 2},     // 5x5 stride 2: two shifts per column phase
            {3, 2, 9, 8, 4, 3, 3, 3, 3, 1, 1},       // stride 3
            {3, 1, 28, 28, 16, 3, 3, 1, 1, 1, 1},    // ResNet stem: one input channel, weight gradient on dY in place
            {2, 1, 16, 20, 6, 3, 3, 1, 1, 1, 1},     // one input channel, 6 outputs (3 x 4 blocks and single taps)
            {2, 1, 16, 16, 4, 5, 5, 1, 1, 2, 2},     // one input channel, 5x5 same padding
            {2, 1, 18, 18, 4, 3, 3, 1, 1, 1, 1},     // one input channel, planes not whole vectors (padded rows)
            {2, 3, 9, 17, 4, 3, 3, 2, 2, 0, 0},      // stride 2 unpadded, rows of 17: vector phase split and join
            {2, 2, 6, 20, 3, 5, 5, 2, 2, 2, 2},      // 5x5 stride 2 padding 2, rows of 20
            {2, 2, 7, 16, 3, 3, 3, 2, 2, 1, 1},      // stride 2, rows of exactly one vector
            {2, 2, 5, 18, 3, 3, 3, 1, 2, 1, 1},      // stride 1 down and 2 across
    };

    private static ConvGeometry geometry(int[] s) {
        return new ConvGeometry(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[8], s[9], s[10], 1, 1);
    }

    private record Result(float[] y, float[] dx, float[] dw) {
    }

    private static Result run(ConvGeometry g, float[] x, float[] w, float[] bias, float[] dy, int threads) {
        ThreadLocal<Scratch> local = ThreadLocal.withInitial(Scratch::new);
        Supplier<Scratch> scratch = local::get;
        float[] y = new float[(int) g.outputLength()];
        float[] dx = new float[(int) g.inputLength()];
        float[] dw = new float[(int) g.weightLength()];
        // stale values where a kernel must write every element
        Arrays.fill(y, Float.NaN);
        Arrays.fill(dx, Float.NaN);
        Arrays.fill(dw, Float.NaN);
        try (Parallel par = new Parallel(threads)) {
            Conv2dKernels.forward(g, x, w, bias, y, par, scratch);
            Conv2dKernels.backwardData(g, w, dy, dx, par, scratch);
            Conv2dKernels.backwardWeight(g, x, dy, dw, par, scratch);
        }
        return new Result(y, dx, dw);
    }

    @Test
    void paddedAndStridedConvolutionsMatchFloat64AndDoNotDependOnThreadCount() {
        Generator gen = new Generator(11);
        for (int[] s : SHAPES) {
            ConvGeometry g = geometry(s);
            float[] x = uniform(gen, g.inputLength());
            float[] w = uniform(gen, g.weightLength());
            float[] bias = uniform(gen, g.outChannels());
            float[] dy = uniform(gen, g.outputLength());
            Result one = run(g, x, w, bias, dy, 1);
            Result three = run(g, x, w, bias, dy, 3);
            String what = g + " (" + SimdSupport.describe() + " kernels)";
            assertArrayEquals(one.y, three.y, what + " forward, 1 vs 3 threads");
            assertArrayEquals(one.dx, three.dx, what + " input gradient, 1 vs 3 threads");
            assertArrayEquals(one.dw, three.dw, what + " weight gradient, 1 vs 3 threads");
            Reference ref = new Reference(g, x, w, dy);
            for (int i = 0; i < one.y.length; i++) {
                double[] e = ref.output(i);
                assertClose(e[0] + bias[ref.outChannel(i)], e[1] + Math.abs(bias[ref.outChannel(i)]), one.y[i],
                        TOLERANCE, what + " forward " + i);
            }
            double[][] dx = ref.inputGradient();
            for (int i = 0; i < one.dx.length; i++) {
                assertClose(dx[0][i], dx[1][i], one.dx[i], TOLERANCE, what + " input gradient " + i);
            }
            double[][] dw = ref.weightGradient();
            for (int i = 0; i < one.dw.length; i++) {
                assertClose(dw[0][i], dw[1][i], one.dw[i], WEIGHT_GRADIENT_TOLERANCE, what + " weight gradient " + i);
            }
        }
    }

    /**
     * The implicit-GEMM forward is each output's taps in (c, ky, kx) order, one fused multiply-add each from zero,
     * then the bias; its input gradient is the forward on dY with the rotated kernel, so the same loop on the rotated
     * kernel gives it bit for bit (taps over the padding add an exact zero: compared with the sign of zero dropped).
     */
    @Test
    void implicitForwardAndInputGradientEqualTheirFmaLoopsBitForBit() {
        org.junit.jupiter.api.Assumptions.assumeTrue(SimdSupport.ENABLED, "ImplicitConv is a SIMD kernel");
        Generator gen = new Generator(12);
        ThreadLocal<Scratch> local = ThreadLocal.withInitial(Scratch::new);
        try (Parallel par = new Parallel(3)) {
            for (int[] s : SHAPES) {
                ConvGeometry g = geometry(s);
                if (!ImplicitConv.fits(g) && !StackedConv.fits(g)) {
                    continue;
                }
                float[] x = uniform(gen, g.inputLength());
                float[] w = uniform(gen, g.weightLength());
                float[] bias = uniform(gen, g.outChannels());
                float[] expected = fmaForward(g, x, w, bias);
                for (boolean stacked : new boolean[]{false, true}) {
                    if (stacked ? !StackedConv.fits(g) : !ImplicitConv.fits(g)) {
                        continue;
                    }
                    float[] y = new float[(int) g.outputLength()];
                    ImplicitConv.forward(g, x, w, bias, y, par, local::get, stacked);
                    for (int i = 0; i < y.length; i++) {
                        assertEquals(expected[i] + 0f, y[i] + 0f, g + " forward, stacked " + stacked + ", " + i);
                    }
                }
                if (!ImplicitConv.fitsBackwardData(g)) {
                    continue;
                }
                float[] dy = uniform(gen, g.outputLength());
                if (g.strideH() > 1 || g.strideW() > 1) {
                    float[] dx = new float[(int) g.inputLength()];
                    ImplicitConv.backwardData(g, w, dy, dx, par, local::get);
                    float[] expectedDx = fmaInputGradient(g, w, dy);
                    for (int i = 0; i < dx.length; i++) {
                        assertEquals(expectedDx[i] + 0f, dx[i] + 0f, g + " input gradient " + i);
                    }
                    continue;
                }
                int kh = g.kernelH(), kw = g.kernelW(), kk = kh * kw;
                ConvGeometry t = new ConvGeometry(g.n(), g.outChannels(), g.outH(), g.outW(), g.inChannels(), kh, kw,
                        1, 1, kh - 1 - g.padH(), kw - 1 - g.padW(), 1, 1);
                float[] rotated = new float[w.length];
                for (int o = 0; o < g.outChannels(); o++) {
                    for (int c = 0; c < g.inChannels(); c++) {
                        for (int i = 0; i < kk; i++) {
                            rotated[(c * g.outChannels() + o) * kk + i] = w[(o * g.inChannels() + c) * kk + kk - 1 - i];
                        }
                    }
                }
                float[] expectedDx = fmaForward(t, dy, rotated, null);
                for (boolean stacked : new boolean[]{false, true}) {
                    float[] dx = new float[(int) g.inputLength()];
                    ImplicitConv.backwardData(g, w, dy, dx, par, local::get, stacked);
                    for (int i = 0; i < dx.length; i++) {
                        assertEquals(expectedDx[i] + 0f, dx[i] + 0f, g + " input gradient, stacked " + stacked + ", " + i);
                    }
                }
            }
        }
    }

    /**
     * The stacked layout ({@link StackedConv}) gives the same bits however many images share a GEMM: each output is
     * its own taps in the same order, and the zero rows keep one image's taps off the next.
     */
    @Test
    void stackedForwardDoesNotDependOnImagesPerGroup() {
        org.junit.jupiter.api.Assumptions.assumeTrue(SimdSupport.ENABLED, "StackedConv is a SIMD kernel");
        Generator gen = new Generator(13);
        ThreadLocal<Scratch> local = ThreadLocal.withInitial(Scratch::new);
        try (Parallel par = new Parallel(2)) {
            for (int[] s : SHAPES) {
                ConvGeometry g = geometry(s);
                if (!StackedConv.fits(g)) {
                    continue;
                }
                float[] x = uniform(gen, g.inputLength());
                float[] w = uniform(gen, g.weightLength());
                float[] bias = uniform(gen, g.outChannels());
                float[] expected = fmaForward(g, x, w, bias);
                int oc = g.outChannels(), k = g.inChannels() * g.kernelH() * g.kernelW();
                float[] packed = new float[ImplicitConv.packedLength(oc, k)];
                ImplicitConv.pack(w, oc, k, packed, 0);
                for (int images = 1; images <= g.n() + 1; images++) {
                    float[] y = new float[(int) g.outputLength()];
                    Arrays.fill(y, Float.NaN);
                    StackedConv.forwardPacked(g, images, packed, oc, k, bias, x, y, par, local::get);
                    for (int i = 0; i < y.length; i++) {
                        assertEquals(expected[i] + 0f, y[i] + 0f, g + " forward, " + images + " images per GEMM, " + i);
                    }
                }
            }
        }
    }

    @Test
    void resNetShapesTakeTheImplicitKernelsAndDilationOrGroupsDoNot() {
        assertTrue(StackedConv.fits(geometry(SHAPES[0])), "3x3 pad 1 stride 1");
        assertTrue(StackedConv.fits(geometry(SHAPES[1])), "3x3 pad 1 stride 2");
        assertTrue(StackedConv.fits(geometry(SHAPES[14])), "1x1 stride 2");
        assertFalse(StackedConv.fits(geometry(SHAPES[8])), "stride 2 unpadded: phase planes wider than the output");
        assertFalse(StackedConv.fits(new ConvGeometry(2, 3, 9, 9, 4, 1, 1, 1, 1, 0, 0, 1, 1)), "plain 1x1");
        assertFalse(StackedConv.fits(new ConvGeometry(2, 3, 9, 9, 4, 3, 3, 1, 1, 2, 2, 2, 2)), "dilation");
        ThreadLocal<Scratch> local = ThreadLocal.withInitial(Scratch::new);
        assertTrue(StackedConv.pays(geometry(SHAPES[3]), local::get), "7x7: 56 positions an image against 64");
        assertFalse(StackedConv.pays(geometry(SHAPES[2]), local::get), "14x14: 210 against 224");
        assertFalse(StackedConv.pays(geometry(SHAPES[0]), local::get), "28x28");
        assertFalse(StackedConv.pays(geometry(SHAPES[1]), local::get), "stride 2");
        assertTrue(ImplicitConv.fits(geometry(SHAPES[0])));
        assertTrue(ImplicitConv.fitsBackwardData(geometry(SHAPES[0])));
        assertTrue(ImplicitConv.fits(geometry(SHAPES[1])));
        assertTrue(ImplicitConv.fitsBackwardData(geometry(SHAPES[1])), "stride 2: by phase");
        assertFalse(ImplicitConv.fitsBackwardData(geometry(SHAPES[12])), "padding past the kernel");
        assertFalse(ImplicitConv.fits(geometry(SHAPES[14])), "1x1: im2col is a plain copy");
        assertTrue(ImplicitConv.fitsWeightGradient(geometry(SHAPES[14])), "1x1 stride 2: weight gradient by position map");
        assertFalse(ImplicitConv.fits(new ConvGeometry(2, 3, 9, 9, 4, 3, 3, 1, 1, 2, 2, 2, 2)), "dilation");
        assertFalse(ImplicitConv.fits(new ConvGeometry(2, 4, 9, 9, 4, 3, 3, 1, 1, 1, 1, 1, 1, 2)), "groups");
        assertFalse(ImplicitConv.fits(new ConvGeometry(2, 6, 14, 14, 16, 5, 5, 1, 1, 0, 0, 1, 1)),
                "LeNet's conv2 keeps the wide kernel");
    }

    /**
     * Every register blocking and image grouping of the implicit weight gradient (the ones the dispatcher does not
     * pick are kept for side-by-side timing) is within the tolerance of float64 and independent of the thread count.
     */
    @Test
    void everyImplicitWeightGradientBlockingMatchesFloat64() {
        org.junit.jupiter.api.Assumptions.assumeTrue(SimdSupport.ENABLED, "ImplicitConv is a SIMD kernel");
        Generator gen = new Generator(17);
        int[][] shapes = {SHAPES[3], SHAPES[2], SHAPES[1], SHAPES[13], SHAPES[15], SHAPES[22], SHAPES[23], SHAPES[24]};
        for (int[] shape : shapes) {
            ConvGeometry g = geometry(shape);
            float[] x = uniform(gen, g.inputLength());
            float[] dy = uniform(gen, g.outputLength());
            double[][] ref = new Reference(g, x, new float[(int) g.weightLength()], dy).weightGradient();
            int chunks = Math.max(1, Math.min(16, g.n() / 8));
            int wl = (int) g.weightLength();
            for (int variant = 0; variant < 4; variant++) {
                boolean wide = (variant & 1) != 0, grouped = (variant & 2) != 0;
                float[][] byThreads = new float[2][];
                for (int t = 0; t < 2; t++) {
                    ThreadLocal<Scratch> local = ThreadLocal.withInitial(Scratch::new);
                    float[] dw = new float[wl];
                    Arrays.fill(dw, Float.NaN);
                    try (Parallel par = new Parallel(t == 0 ? 1 : 3)) {
                        ImplicitConv.weightGradientGemm(g, x, dy, dw, chunks, par, local::get, wide, grouped);
                        byThreads[t] = dw;
                    }
                }
                String what = g + " wide blocks " + wide + ", grouped " + grouped;
                assertArrayEquals(byThreads[0], byThreads[1], what + ": 1 vs 3 threads");
                for (int i = 0; i < wl; i++) {
                    assertClose(ref[0][i], ref[1][i], byThreads[0][i], WEIGHT_GRADIENT_TOLERANCE, what + " " + i);
                }
            }
        }
    }

    /** Dilation falls back to the im2col path, still within the tolerance of float64 at 1 and 3 threads. */
    @Test
    void dilatedConvolutionTakesTheGeneralPath() {
        Generator gen = new Generator(13);
        ConvGeometry g = new ConvGeometry(2, 3, 9, 10, 4, 3, 3, 2, 1, 2, 2, 2, 2);
        float[] x = uniform(gen, g.inputLength());
        float[] w = uniform(gen, g.weightLength());
        float[] dy = uniform(gen, g.outputLength());
        Result one = run(g, x, w, null, dy, 1);
        Result three = run(g, x, w, null, dy, 3);
        assertArrayEquals(one.y, three.y);
        assertArrayEquals(one.dx, three.dx);
        assertArrayEquals(one.dw, three.dw);
        Reference ref = new Reference(g, x, w, dy);
        for (int i = 0; i < one.y.length; i++) {
            double[] e = ref.output(i);
            assertClose(e[0], e[1], one.y[i], TOLERANCE, g + " forward " + i);
        }
        double[][] dx = ref.inputGradient();
        for (int i = 0; i < one.dx.length; i++) {
            assertClose(dx[0][i], dx[1][i], one.dx[i], TOLERANCE, g + " input gradient " + i);
        }
        double[][] dw = ref.weightGradient();
        for (int i = 0; i < one.dw.length; i++) {
            assertClose(dw[0][i], dw[1][i], one.dw[i], WEIGHT_GRADIENT_TOLERANCE, g + " weight gradient " + i);
        }
    }

    private static void assertClose(double exact, double magnitude, float got, double tolerance, String what) {
        double bound = tolerance * magnitude + 1e-30;
        assertTrue(Math.abs(got - exact) <= bound,
                what + ": got " + got + ", float64 " + exact + " (bound " + bound + ")");
    }

    private static float[] uniform(Generator gen, long length) {
        float[] a = new float[(int) length];
        gen.fillUniform(a, -1f, 1f);
        return a;
    }

    /** Each output: taps in (c, ky, kx) order with Math.fma from 0, padding taps included as zeros, then the bias. */
    private static float[] fmaForward(ConvGeometry g, float[] x, float[] w, float[] bias) {
        int cin = g.inChannels(), ih = g.inH(), iw = g.inW(), oh = g.outH(), ow = g.outW();
        int kh = g.kernelH(), kw = g.kernelW();
        float[] y = new float[(int) g.outputLength()];
        for (int n = 0; n < g.n(); n++) {
            for (int o = 0; o < g.outChannels(); o++) {
                for (int oy = 0; oy < oh; oy++) {
                    for (int ox = 0; ox < ow; ox++) {
                        float acc = 0f;
                        for (int c = 0; c < cin; c++) {
                            for (int ky = 0; ky < kh; ky++) {
                                for (int kx = 0; kx < kw; kx++) {
                                    int yy = oy * g.strideH() - g.padH() + ky;
                                    int xx = ox * g.strideW() - g.padW() + kx;
                                    float v = yy < 0 || yy >= ih || xx < 0 || xx >= iw ? 0f
                                            : x[((n * cin + c) * ih + yy) * iw + xx];
                                    acc = Math.fma(w[((o * cin + c) * kh + ky) * kw + kx], v, acc);
                                }
                            }
                        }
                        y[((n * g.outChannels() + o) * oh + oy) * ow + ox] = bias == null ? acc : acc + bias[o];
                    }
                }
            }
        }
        return y;
    }

    /**
     * Each input gradient of a strided convolution: the taps that reach it in (o, ky, kx) order with Math.fma from 0,
     * a tap whose output lies outside dY adding an exact zero.
     */
    private static float[] fmaInputGradient(ConvGeometry g, float[] w, float[] dy) {
        int cin = g.inChannels(), ih = g.inH(), iw = g.inW(), oh = g.outH(), ow = g.outW();
        int kh = g.kernelH(), kw = g.kernelW(), sh = g.strideH(), sw = g.strideW();
        float[] dx = new float[(int) g.inputLength()];
        for (int n = 0; n < g.n(); n++) {
            for (int c = 0; c < cin; c++) {
                for (int y = 0; y < ih; y++) {
                    for (int x = 0; x < iw; x++) {
                        float acc = 0f;
                        for (int o = 0; o < g.outChannels(); o++) {
                            for (int ky = 0; ky < kh; ky++) {
                                for (int kx = 0; kx < kw; kx++) {
                                    int ty = y + g.padH() - ky, tx = x + g.padW() - kx;
                                    if (Math.floorMod(ty, sh) != 0 || Math.floorMod(tx, sw) != 0) {
                                        continue;
                                    }
                                    int oy = Math.floorDiv(ty, sh), ox = Math.floorDiv(tx, sw);
                                    float v = oy < 0 || oy >= oh || ox < 0 || ox >= ow ? 0f
                                            : dy[((n * g.outChannels() + o) * oh + oy) * ow + ox];
                                    acc = Math.fma(w[((o * cin + c) * kh + ky) * kw + kx], v, acc);
                                }
                            }
                        }
                        dx[((n * cin + c) * ih + y) * iw + x] = acc;
                    }
                }
            }
        }
        return dx;
    }

    /** Float64 sums and sums of magnitudes of every output, input gradient and weight gradient. */
    private static final class Reference {
        private final ConvGeometry g;
        private final float[] x, w, dy;

        Reference(ConvGeometry g, float[] x, float[] w, float[] dy) {
            this.g = g;
            this.x = x;
            this.w = w;
            this.dy = dy;
        }

        int outChannel(int i) {
            return i / (g.outH() * g.outW()) % g.outChannels();
        }

        /** Calls {@code term(n, o, oy, ox, c, ky, kx, inputIndex)} for every product that reads the input. */
        private void forEachTerm(Term t) {
            int cin = g.inChannels(), ih = g.inH(), iw = g.inW(), oh = g.outH(), ow = g.outW();
            for (int n = 0; n < g.n(); n++) {
                for (int o = 0; o < g.outChannels(); o++) {
                    for (int oy = 0; oy < oh; oy++) {
                        for (int ox = 0; ox < ow; ox++) {
                            for (int c = 0; c < cin; c++) {
                                for (int ky = 0; ky < g.kernelH(); ky++) {
                                    for (int kx = 0; kx < g.kernelW(); kx++) {
                                        int yy = oy * g.strideH() - g.padH() + ky * g.dilationH();
                                        int xx = ox * g.strideW() - g.padW() + kx * g.dilationW();
                                        if (yy < 0 || yy >= ih || xx < 0 || xx >= iw) {
                                            continue;
                                        }
                                        t.term(((n * g.outChannels() + o) * oh + oy) * ow + ox,
                                                ((o * cin + c) * g.kernelH() + ky) * g.kernelW() + kx,
                                                ((n * cin + c) * ih + yy) * iw + xx);
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }

        interface Term {
            void term(int outIndex, int weightIndex, int inIndex);
        }

        double[] output(int i) {
            int ohw = g.outH() * g.outW();
            int n = i / (ohw * g.outChannels());
            int o = outChannel(i);
            int oy = i % ohw / g.outW(), ox = i % g.outW();
            double sum = 0, mag = 0;
            for (int c = 0; c < g.inChannels(); c++) {
                for (int ky = 0; ky < g.kernelH(); ky++) {
                    for (int kx = 0; kx < g.kernelW(); kx++) {
                        int yy = oy * g.strideH() - g.padH() + ky * g.dilationH();
                        int xx = ox * g.strideW() - g.padW() + kx * g.dilationW();
                        if (yy < 0 || yy >= g.inH() || xx < 0 || xx >= g.inW()) {
                            continue;
                        }
                        double p = (double) w[((o * g.inChannels() + c) * g.kernelH() + ky) * g.kernelW() + kx]
                                * x[((n * g.inChannels() + c) * g.inH() + yy) * g.inW() + xx];
                        sum += p;
                        mag += Math.abs(p);
                    }
                }
            }
            return new double[]{sum, mag};
        }

        double[][] inputGradient() {
            double[][] r = new double[2][x.length];
            forEachTerm((out, wi, in) -> {
                double p = (double) w[wi] * dy[out];
                r[0][in] += p;
                r[1][in] += Math.abs(p);
            });
            return r;
        }

        double[][] weightGradient() {
            double[][] r = new double[2][w.length];
            forEachTerm((out, wi, in) -> {
                double p = (double) x[in] * dy[out];
                r[0][wi] += p;
                r[1][wi] += Math.abs(p);
            });
            return r;
        }
    }
}
