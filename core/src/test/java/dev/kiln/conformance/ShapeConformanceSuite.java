package dev.kiln.conformance;

import static dev.kiln.conformance.Inputs.narrow;
import static dev.kiln.conformance.Inputs.widen;
import static dev.kiln.conformance.Tolerance.assertClose;
import static dev.kiln.conformance.Tolerance.assertExact;
import static dev.kiln.conformance.Tolerance.shape;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.backend.AdaptivePoolGeometry;
import dev.kiln.backend.Buffer;
import dev.kiln.backend.UpsampleGeometry;

import java.util.Arrays;
import java.util.stream.Stream;

import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Conformance of the shape ops: slice copies (narrow, cat, stack), adaptive average and max pooling, nearest
 * upsampling, forward and backward; see {@link ConformanceSuite}.
 */
public class ShapeConformanceSuite extends ConformanceSuite {

    // ==================================================================================================== slices

    /** outer, srcExtent, srcStart, dstExtent, dstStart, length, inner. */
    static final int[][] SLICES = {
        {3, 5, 1, 4, 2, 2, 6},   // a middle slice into the middle of a wider extent
        {1, 4, 0, 4, 0, 4, 3},   // the whole extent (a plain copy)
        {2, 3, 2, 7, 6, 1, 1},   // last element of the source to the last of the destination, inner 1
        {4, 2, 0, 5, 3, 2, 5},   // cat's second part
        {2, 6, 3, 3, 1, 0, 4},   // an empty slice changes nothing
        {1, 1, 0, 1, 0, 1, 1},   // one element
        {70, 3, 1, 2, 0, 2, 300}, // many rows (parallel)
    };

    static Stream<Arguments> sliceCases() {
        return Arrays.stream(SLICES).map(c -> Arguments.of(named("outer " + c[0] + " src " + c[1] + "[" + c[2] + ",+" + c[5]
                + ") dst " + c[3] + "[" + c[4] + ",+" + c[5] + ") inner " + c[6], c)));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("sliceCases")
    @DisplayName("copySlice copies the slice bit for bit and leaves the rest of dst as it was")
    void copySlice(int[] c) {
        int outer = c[0], srcExtent = c[1], srcStart = c[2], dstExtent = c[3], dstStart = c[4], length = c[5], inner = c[6];
        Inputs in = new Inputs(3000 + Arrays.hashCode(c));
        float[] src = in.uniform(outer * srcExtent * inner, -1, 1);
        src[0] = Float.NaN; // data movement keeps every bit
        float[] dst = in.uniform(outer * dstExtent * inner, -1, 1);
        float[] want = narrow(Reference.copySlice(widen(src), outer, srcExtent, srcStart, widen(dst), dstExtent, dstStart,
                length, inner));
        try (Scope s = scope()) {
            Buffer d = s.up(dst);
            b.copySlice(s.in(src), outer, srcExtent, srcStart, d, dstExtent, dstStart, length, inner);
            assertExact("copySlice", new int[] {outer, dstExtent, inner}, s.down(d), want);
            s.assertInputsUnchanged("copySlice");
        }
    }

    @Test
    @DisplayName("copySlice assembles a cat of three parts along the middle dimension")
    void copySliceCat() {
        int outer = 3, inner = 4;
        int[] extents = {2, 1, 3};
        int total = 6;
        Inputs in = new Inputs(3100);
        float[][] parts = new float[3][];
        for (int k = 0; k < 3; k++) {
            parts[k] = in.uniform(outer * extents[k] * inner, -1, 1);
        }
        try (Scope s = scope()) {
            Buffer d = s.out((long) outer * total * inner);
            for (int k = 0, at = 0; k < 3; at += extents[k], k++) {
                b.copySlice(s.in(parts[k]), outer, extents[k], 0, d, total, at, extents[k], inner);
            }
            float[] got = s.down(d);
            for (int o = 0; o < outer; o++) {
                for (int k = 0, at = 0; k < 3; at += extents[k], k++) {
                    for (int j = 0; j < extents[k] * inner; j++) {
                        assertEquals(parts[k][o * extents[k] * inner + j], got[(o * total + at) * inner + j],
                                "cat part " + k + " row " + o + " element " + j);
                    }
                }
            }
        }
    }

    @Test
    @DisplayName("copySlice refuses a slice outside either extent and src == dst")
    void copySliceRanges() {
        try (Scope s = scope()) {
            Buffer src = s.zeros(24);
            Buffer dst = s.zeros(24);
            assertThrows(IllegalArgumentException.class, () -> b.copySlice(src, 2, 3, 2, dst, 3, 0, 2, 4));
            assertThrows(IllegalArgumentException.class, () -> b.copySlice(src, 2, 3, 0, dst, 3, 2, 2, 4));
            assertThrows(IllegalArgumentException.class, () -> b.copySlice(src, 2, 3, -1, dst, 3, 0, 1, 4));
            assertThrows(IllegalArgumentException.class, () -> b.copySlice(src, 2, 3, 0, dst, 3, 0, -1, 4));
            IllegalArgumentException same = assertThrows(IllegalArgumentException.class,
                    () -> b.copySlice(src, 2, 3, 0, src, 3, 1, 1, 4));
            assertTrue(same.getMessage().contains("copySlice"), same.getMessage());
        }
    }

    // ==================================================================================================== adaptive pooling

    static final AdaptivePoolGeometry[] ADAPTIVE = {
        new AdaptivePoolGeometry(2, 3, 7, 6, 1, 1),    // global pooling
        new AdaptivePoolGeometry(2, 3, 7, 6, 3, 4),    // overlapping windows of different sizes
        new AdaptivePoolGeometry(1, 2, 8, 8, 4, 4),    // divisible: plain 2x2 pooling
        new AdaptivePoolGeometry(1, 1, 3, 4, 5, 7),    // output larger than input: windows repeat
        new AdaptivePoolGeometry(1, 2, 5, 5, 5, 5),    // identity
        new AdaptivePoolGeometry(2, 2, 10, 9, 4, 2),
        new AdaptivePoolGeometry(16, 32, 8, 8, 1, 1),  // a ResNet's global pooling, many planes
    };

    static String describe(AdaptivePoolGeometry g) {
        return "x" + shape(g.n(), g.channels(), g.inH(), g.inW()) + " to " + shape(g.outH(), g.outW());
    }

    static Stream<Arguments> adaptiveCases() {
        return Arrays.stream(ADAPTIVE).map(g -> Arguments.of(named(describe(g), g)));
    }

    static int[] outShape(AdaptivePoolGeometry g) {
        return new int[] {g.n(), g.channels(), g.outH(), g.outW()};
    }

    static int[] inShape(AdaptivePoolGeometry g) {
        return new int[] {g.n(), g.channels(), g.inH(), g.inW()};
    }

    /** The largest window of a geometry: the most terms in one output's sum. */
    static long window(AdaptivePoolGeometry g) {
        long h = 0;
        long w = 0;
        for (int o = 0; o < g.outH(); o++) {
            h = Math.max(h, AdaptivePoolGeometry.end(o, g.inH(), g.outH()) - AdaptivePoolGeometry.start(o, g.inH(), g.outH()));
        }
        for (int o = 0; o < g.outW(); o++) {
            w = Math.max(w, AdaptivePoolGeometry.end(o, g.inW(), g.outW()) - AdaptivePoolGeometry.start(o, g.inW(), g.outW()));
        }
        return h * w;
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("adaptiveCases")
    @DisplayName("adaptiveAvgPool2dForward and adaptiveAvgPool2dBackward")
    void adaptiveAvgPool(AdaptivePoolGeometry g) {
        Inputs in = new Inputs(3200 + g.hashCode());
        float[] x = in.uniform((int) g.inputLength(), -1, 1);
        float[] dy = in.uniform((int) g.outputLength(), -1, 1);
        Reference.Sum y = Reference.adaptiveAvgPoolForward(g, widen(x));
        Reference.Sum dx = Reference.adaptiveAvgPoolBackward(g, widen(dy));
        try (Scope s = scope()) {
            Buffer yb = s.out(g.outputLength());
            Buffer dxb = s.out(g.inputLength());
            b.adaptiveAvgPool2dForward(g, s.in(x), yb);
            b.adaptiveAvgPool2dBackward(g, s.in(dy), dxb);
            // a window's sum; an input is in at most 2x2 windows (4 when the output is larger than the input: 2x2 again)
            assertClose("adaptiveAvgPool2dForward " + describe(g), outShape(g), s.down(yb), y.v(),
                    Tolerance.sums(y.v(), y.abs(), window(g) + 2));
            assertClose("adaptiveAvgPool2dBackward " + describe(g), inShape(g), s.down(dxb), dx.v(),
                    Tolerance.sums(dx.v(), dx.abs(), (long) 4 * ((g.outH() + g.inH() - 1) / g.inH()) * ((g.outW() + g.inW() - 1) / g.inW()) + 2));
            s.assertInputsUnchanged("adaptiveAvgPool2d");
        }
        Gradcheck.check("adaptiveAvgPool2d", describe(g), xx -> Reference.adaptiveAvgPoolForward(g, xx).v(), widen(x),
                widen(dy), dx.v(), in.subset(x.length, 12));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("adaptiveCases")
    @DisplayName("adaptiveMaxPool2dForward (values and indices) and adaptiveMaxPool2dBackward (distinct values)")
    void adaptiveMaxPool(AdaptivePoolGeometry g) {
        Inputs in = new Inputs(3300 + g.hashCode());
        float[] x = in.distinct((int) g.inputLength());
        float[] dy = in.uniform((int) g.outputLength(), -1, 1);
        double[][] ref = Reference.adaptiveMaxPoolForward(g, widen(x));
        Reference.Sum dx = Reference.adaptiveMaxPoolBackward(g, ref[1], widen(dy));
        try (Scope s = scope()) {
            Buffer yb = s.out(g.outputLength());
            Buffer ib = s.out(g.outputLength());
            b.adaptiveMaxPool2dForward(g, s.in(x), yb, ib);
            assertExact("adaptiveMaxPool2dForward " + describe(g), outShape(g), s.down(yb), narrow(ref[0]));
            float[] indices = s.down(ib);
            assertExact("adaptiveMaxPool2dForward indices " + describe(g), outShape(g), indices, narrow(ref[1]));
            Buffer dxb = s.out(g.inputLength());
            b.adaptiveMaxPool2dBackward(g, s.in(indices), s.in(dy), dxb);
            assertClose("adaptiveMaxPool2dBackward " + describe(g), inShape(g), s.down(dxb), dx.v(),
                    Tolerance.sums(dx.v(), dx.abs(), window(g)));
            s.assertInputsUnchanged("adaptiveMaxPool2d");
        }
        Gradcheck.check("adaptiveMaxPool2d", describe(g), xx -> Reference.adaptiveMaxPoolForward(g, xx)[0], widen(x),
                widen(dy), dx.v(), in.subset(x.length, 12));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("adaptiveCases")
    @DisplayName("adaptiveMaxPool2d with ties picks the first maximum; with NaN the last NaN; all -inf the first")
    void adaptiveMaxPoolTiesAndNaN(AdaptivePoolGeometry g) {
        Inputs in = new Inputs(3400 + g.hashCode());
        float[] x = in.fewLevels((int) g.inputLength(), 3);
        x[x.length / 3] = Float.NaN;
        x[x.length / 3 + 1] = Float.NaN;
        x[x.length - 1] = Float.NEGATIVE_INFINITY;
        double[][] ref = Reference.adaptiveMaxPoolForward(g, widen(x));
        float[] dy = in.uniform((int) g.outputLength(), -1, 1);
        Reference.Sum dx = Reference.adaptiveMaxPoolBackward(g, ref[1], widen(dy));
        try (Scope s = scope()) {
            Buffer yb = s.out(g.outputLength());
            Buffer ib = s.out(g.outputLength());
            b.adaptiveMaxPool2dForward(g, s.in(x), yb, ib);
            assertExact("adaptiveMaxPool2dForward with ties " + describe(g), outShape(g), s.down(yb), narrow(ref[0]));
            assertExact("adaptiveMaxPool2dForward indices with ties " + describe(g), outShape(g), s.down(ib), narrow(ref[1]));
            Buffer dxb = s.out(g.inputLength());
            b.adaptiveMaxPool2dBackward(g, ib, s.in(dy), dxb);
            assertClose("adaptiveMaxPool2dBackward with ties " + describe(g), inShape(g), s.down(dxb), dx.v(),
                    Tolerance.sums(dx.v(), dx.abs(), window(g)));
        }
        float[] negInf = new float[(int) g.inputLength()];
        Arrays.fill(negInf, Float.NEGATIVE_INFINITY);
        double[][] first = Reference.adaptiveMaxPoolForward(g, widen(negInf));
        try (Scope s = scope()) {
            Buffer yb = s.out(g.outputLength());
            Buffer ib = s.out(g.outputLength());
            b.adaptiveMaxPool2dForward(g, s.in(negInf), yb, ib);
            assertExact("adaptiveMaxPool2dForward indices, all -inf " + describe(g), outShape(g), s.down(ib), narrow(first[1]));
        }
    }

    @Test
    @DisplayName("adaptive geometry: PyTorch's windows, and sizes below 1 refused")
    void adaptiveGeometry() {
        // torch: adaptive_avg_pool2d of 7 rows to 3 takes rows [0,3), [2,5), [4,7)
        assertEquals(0, AdaptivePoolGeometry.start(0, 7, 3));
        assertEquals(3, AdaptivePoolGeometry.end(0, 7, 3));
        assertEquals(2, AdaptivePoolGeometry.start(1, 7, 3));
        assertEquals(5, AdaptivePoolGeometry.end(1, 7, 3));
        assertEquals(4, AdaptivePoolGeometry.start(2, 7, 3));
        assertEquals(7, AdaptivePoolGeometry.end(2, 7, 3));
        assertThrows(IllegalArgumentException.class, () -> new AdaptivePoolGeometry(1, 1, 4, 4, 0, 1));
        assertThrows(IllegalArgumentException.class, () -> new AdaptivePoolGeometry(1, 1, 0, 4, 1, 1));
    }

    // ==================================================================================================== upsampling

    static final UpsampleGeometry[] UPSAMPLES = {
        new UpsampleGeometry(2, 3, 4, 5, 2, 2),   // a U-Net's decoder step
        new UpsampleGeometry(1, 2, 3, 3, 3, 1),   // different factors per axis
        new UpsampleGeometry(1, 1, 2, 3, 1, 4),
        new UpsampleGeometry(1, 1, 1, 1, 5, 5),   // one pixel
        new UpsampleGeometry(8, 16, 7, 7, 2, 2),  // many planes
    };

    static String describe(UpsampleGeometry g) {
        return "x" + shape(g.n(), g.channels(), g.inH(), g.inW()) + " scale " + shape(g.scaleH(), g.scaleW());
    }

    static Stream<Arguments> upsampleCases() {
        return Arrays.stream(UPSAMPLES).map(g -> Arguments.of(named(describe(g), g)));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("upsampleCases")
    @DisplayName("upsampleNearest2dForward (exact) and upsampleNearest2dBackward")
    void upsampleNearest(UpsampleGeometry g) {
        Inputs in = new Inputs(3500 + g.hashCode());
        float[] x = in.uniform((int) g.inputLength(), -1, 1);
        float[] dy = in.uniform((int) g.outputLength(), -1, 1);
        double[] y = Reference.upsampleNearestForward(g, widen(x));
        Reference.Sum dx = Reference.upsampleNearestBackward(g, widen(dy));
        try (Scope s = scope()) {
            Buffer yb = s.out(g.outputLength());
            Buffer dxb = s.out(g.inputLength());
            b.upsampleNearest2dForward(g, s.in(x), yb);
            b.upsampleNearest2dBackward(g, s.in(dy), dxb);
            assertExact("upsampleNearest2dForward " + describe(g), new int[] {g.n(), g.channels(), g.outH(), g.outW()},
                    s.down(yb), narrow(y));
            assertClose("upsampleNearest2dBackward " + describe(g), new int[] {g.n(), g.channels(), g.inH(), g.inW()},
                    s.down(dxb), dx.v(), Tolerance.sums(dx.v(), dx.abs(), (long) g.scaleH() * g.scaleW()));
            s.assertInputsUnchanged("upsampleNearest2d");
        }
        Gradcheck.check("upsampleNearest2d", describe(g), xx -> Reference.upsampleNearestForward(g, xx), widen(x),
                widen(dy), dx.v(), in.subset(x.length, 12));
    }

    @Test
    @DisplayName("upsample geometry: factors below 1 refused")
    void upsampleGeometry() {
        assertThrows(IllegalArgumentException.class, () -> new UpsampleGeometry(1, 1, 2, 2, 0, 2));
        assertThrows(IllegalArgumentException.class, () -> new UpsampleGeometry(1, 1, 2, 2, 2, -1));
        assertEquals(8, new UpsampleGeometry(1, 1, 4, 3, 2, 3).outH());
        assertEquals(9, new UpsampleGeometry(1, 1, 4, 3, 2, 3).outW());
    }
}
