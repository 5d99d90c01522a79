package dev.kiln.cpu;

import dev.kiln.backend.ConvGeometry;
import dev.kiln.core.Generator;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The depthwise kernels give bit for bit what the grouped reference ({@link GroupedConvKernels}) gives, forward,
 * input gradient and weight gradient, at 1 and 3 threads (under both kernel sets: the scalar-kernels execution runs
 * this class too), on padded, strided, dilated, rectangular and degenerate geometries.
 */
class DepthwiseConvKernelsTest {

    @Test
    void depthwiseKernelsEqualTheGroupedReferenceBitForBitAtOneAndThreeThreads() {
        ConvGeometry[] shapes = {
                depthwise(4, 8, 28, 28, 3, 3, 1, 1, 1, 1, 1, 1),   // MobileNet-style 3x3, padding 1
                depthwise(3, 6, 15, 13, 3, 3, 2, 2, 1, 1, 1, 1),   // stride 2, odd sizes
                depthwise(2, 5, 9, 11, 5, 5, 1, 1, 2, 2, 1, 1),    // 5x5, padding 2
                depthwise(2, 4, 12, 10, 3, 3, 1, 1, 2, 2, 2, 2),   // dilation 2
                depthwise(2, 3, 7, 9, 3, 2, 1, 2, 0, 1, 1, 1),     // rectangular kernel, mixed stride and padding
                depthwise(2, 3, 3, 3, 3, 3, 1, 1, 3, 3, 1, 1),     // padding wider than the input: empty taps
                depthwise(1, 2, 6, 6, 1, 1, 1, 1, 0, 0, 1, 1),     // 1x1
        };
        Generator gen = new Generator(21);
        try (Parallel one = new Parallel(1); Parallel three = new Parallel(3)) {
            for (ConvGeometry g : shapes) {
                assertTrue(DepthwiseConvKernels.applies(g), g.toString());
                float[] x = random(gen, g.inputLength());
                float[] w = random(gen, g.weightLength());
                float[] bias = random(gen, g.outChannels());
                float[] dy = random(gen, g.outputLength());
                float[] y = new float[(int) g.outputLength()];
                float[] dx = new float[(int) g.inputLength()];
                float[] dw = new float[(int) g.weightLength()];
                GroupedConvKernels.forward(g, x, w, bias, y, one);
                GroupedConvKernels.backwardData(g, w, dy, dx, one);
                GroupedConvKernels.backwardWeight(g, x, dy, dw, one);
                float[] yNoBias = new float[y.length];
                GroupedConvKernels.forward(g, x, w, null, yNoBias, one);
                for (Parallel par : new Parallel[]{one, three}) {
                    String what = g + " (" + SimdSupport.describe() + " kernels)";
                    float[] dx2 = nanFilled(dx.length);
                    float[] dw2 = nanFilled(dw.length);
                    float[] y2 = nanFilled(y.length);
                    DepthwiseConvKernels.forward(g, x, w, bias, y2, par);
                    assertArrayEquals(y, y2, what + " forward");
                    y2 = nanFilled(y.length);
                    DepthwiseConvKernels.forward(g, x, w, null, y2, par);
                    assertArrayEquals(yNoBias, y2, what + " forward without bias");
                    DepthwiseConvKernels.backwardData(g, w, dy, dx2, par);
                    assertArrayEquals(dx, dx2, what + " input gradient");
                    DepthwiseConvKernels.backwardWeight(g, x, dy, dw2, par);
                    assertArrayEquals(dw, dw2, what + " weight gradient");
                }
            }
        }
    }

    @Test
    void onlyDepthwiseGeometriesTakeTheseKernels() {
        assertFalse(DepthwiseConvKernels.applies(new ConvGeometry(1, 4, 5, 5, 4, 3, 3, 1, 1, 1, 1, 1, 1, 2)));
        assertFalse(DepthwiseConvKernels.applies(new ConvGeometry(1, 4, 5, 5, 8, 3, 3, 1, 1, 1, 1, 1, 1, 4)));
        assertFalse(DepthwiseConvKernels.applies(new ConvGeometry(1, 1, 5, 5, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1)));
        assertTrue(DepthwiseConvKernels.applies(new ConvGeometry(1, 4, 5, 5, 4, 3, 3, 1, 1, 1, 1, 1, 1, 4)));
    }

    private static ConvGeometry depthwise(int n, int c, int h, int w, int kh, int kw, int sh, int sw, int ph, int pw,
                                          int dh, int dw) {
        return new ConvGeometry(n, c, h, w, c, kh, kw, sh, sw, ph, pw, dh, dw, c);
    }

    private static float[] random(Generator gen, long n) {
        float[] a = new float[(int) n];
        gen.fillUniform(a, -1f, 1f);
        return a;
    }

    private static float[] nanFilled(int n) {
        float[] a = new float[n];
        java.util.Arrays.fill(a, Float.NaN);
        return a;
    }
}
