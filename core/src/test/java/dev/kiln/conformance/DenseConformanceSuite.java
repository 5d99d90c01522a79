package dev.kiln.conformance;

import static dev.kiln.conformance.Inputs.narrow;
import static dev.kiln.conformance.Inputs.widen;
import static dev.kiln.conformance.Tolerance.ATOL;
import static dev.kiln.conformance.Tolerance.RTOL;
import static dev.kiln.conformance.Tolerance.SUM_COEFF;
import static dev.kiln.conformance.Tolerance.assertClose;
import static dev.kiln.conformance.Tolerance.assertExact;
import static dev.kiln.conformance.Tolerance.shape;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.backend.Activation;
import dev.kiln.backend.AdamHyper;
import dev.kiln.backend.Backend;
import dev.kiln.backend.BatchNormGeometry;
import dev.kiln.backend.BinaryOp;
import dev.kiln.backend.Buffer;
import dev.kiln.backend.ConvGeometry;
import dev.kiln.backend.PoolGeometry;
import dev.kiln.backend.ScalarOp;
import dev.kiln.backend.SgdHyper;
import dev.kiln.backend.UnaryOp;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.Consumer;
import java.util.stream.Stream;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeEach;
import dev.kiln.suites.TestBackends;
import org.junit.jupiter.params.Parameter;
import org.junit.jupiter.params.ParameterizedClass;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Named;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/** Conformance of GEMM and 2-d convolution (forward, backward data, weight and bias); see {@link ConformanceSuite}. */
public class DenseConformanceSuite extends ConformanceSuite {

    // ==================================================================================================== gemm

    static Stream<Arguments> gemmCases() {
        int[][] sizes = {{1, 1, 1}, {1, 7, 1}, {5, 1, 3}, {3, 5, 7}, {17, 13, 9}, {64, 120, 400}};
        float[][] ab = {{1f, 0f}, {1f, 1f}, {0.5f, -2f}, {-1.25f, 0.75f}};
        List<Arguments> l = new ArrayList<>();
        for (int[] mnk : sizes) {
            for (int t = 0; t < 4; t++) {
                for (float[] alphaBeta : ab) {
                    boolean ta = (t & 2) != 0;
                    boolean tb = (t & 1) != 0;
                    String name = "m,n,k=" + mnk[0] + "," + mnk[1] + "," + mnk[2] + " " + (ta ? "A^T" : "A") + " " + (tb ? "B^T" : "B")
                            + " alpha=" + alphaBeta[0] + " beta=" + alphaBeta[1] + (alphaBeta[1] == 0 ? " (C was NaN)" : "");
                    l.add(Arguments.of(named(name, mnk), ta, tb, alphaBeta[0], alphaBeta[1]));
                }
            }
        }
        return l.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("gemmCases")
    @DisplayName("gemm")
    void gemm(int[] mnk, boolean ta, boolean tb, float alpha, float beta) {
        int m = mnk[0];
        int n = mnk[1];
        int k = mnk[2];
        Inputs in = new Inputs(900 + Arrays.hashCode(mnk) * 4 + (ta ? 2 : 0) + (tb ? 1 : 0) + Float.floatToIntBits(beta));
        float[] a = in.uniform(m * k, -1, 1);
        float[] bm = in.uniform(k * n, -1, 1);
        float[] c = beta == 0 ? Inputs.filled(m * n, Float.NaN) : in.uniform(m * n, -1, 1);
        Reference.Sum ref = Reference.gemm(ta, tb, m, n, k, alpha, widen(a), widen(bm), beta, widen(c));
        try (Scope s = scope()) {
            Buffer ab = s.in(a);
            Buffer bb = s.in(bm);
            Buffer cb = s.up(c);
            b.gemm(ta, tb, m, n, k, alpha, ab, bb, beta, cb);
            // a dot product of K = k (+1 for beta C) terms: RTOL |ref| + 1e-7 sqrt(K) sum|term|
            assertClose("gemm " + (ta ? "T" : "N") + (tb ? "T" : "N") + " m,n,k=" + m + "," + n + "," + k
                    + " alpha=" + alpha + " beta=" + beta, new int[] {m, n}, s.down(cb), ref.v(),
                    Tolerance.sums(ref.v(), ref.abs(), k + 1));
            s.assertInputsUnchanged("gemm");
        }
    }

    static Stream<Arguments> gemmGradCases() {
        return Stream.of(new int[] {1, 1, 1}, new int[] {3, 5, 7}, new int[] {64, 120, 400})
                .map(mnk -> Arguments.of(named("m,n,k=" + mnk[0] + "," + mnk[1] + "," + mnk[2], mnk)));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("gemmGradCases")
    @DisplayName("gemm as its own backward: dA = dC B^T, dB = A^T dC (checked by finite differences)")
    void gemmBackward(int[] mnk) {
        int m = mnk[0];
        int n = mnk[1];
        int k = mnk[2];
        Inputs in = new Inputs(950 + Arrays.hashCode(mnk));
        float[] a = in.uniform(m * k, -1, 1);
        float[] bm = in.uniform(k * n, -1, 1);
        float[] dc = in.uniform(m * n, -1, 1);
        double[] da = Reference.gemm(false, true, m, k, n, 1, widen(dc), widen(bm), 0, null).v();
        Reference.Sum dbRef = Reference.gemm(true, false, k, n, m, 1, widen(a), widen(dc), 0, null);
        Gradcheck.check("gemm (dA)", "m,n,k=" + m + "," + n + "," + k,
                aa -> Reference.gemm(false, false, m, n, k, 1, aa, widen(bm), 0, null).v(), widen(a), widen(dc), da,
                in.subset(a.length, 8));
        Gradcheck.check("gemm (dB)", "m,n,k=" + m + "," + n + "," + k,
                bb -> Reference.gemm(false, false, m, n, k, 1, widen(a), bb, 0, null).v(), widen(bm), widen(dc),
                dbRef.v(), in.subset(bm.length, 8));
        try (Scope s = scope()) {
            Buffer dA = s.out((long) m * k);
            Buffer dB = s.out((long) k * n);
            b.gemm(false, true, m, k, n, 1f, s.in(dc), s.in(bm), 0f, dA);
            b.gemm(true, false, k, n, m, 1f, s.in(a), s.in(dc), 0f, dB);
            Reference.Sum daRef = Reference.gemm(false, true, m, k, n, 1, widen(dc), widen(bm), 0, null);
            // sums of n (for dA) and m (for dB) terms
            assertClose("gemm backward dA = dC B^T", new int[] {m, k}, s.down(dA), daRef.v(),
                    Tolerance.sums(daRef.v(), daRef.abs(), n));
            assertClose("gemm backward dB = A^T dC", new int[] {k, n}, s.down(dB), dbRef.v(),
                    Tolerance.sums(dbRef.v(), dbRef.abs(), m));
        }
    }

    // ==================================================================================================== convolution

    static ConvGeometry conv(int n, int c, int h, int w, int oc, int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw) {
        return new ConvGeometry(n, c, h, w, oc, kh, kw, sh, sw, ph, pw, dh, dw);
    }

    static ConvGeometry grouped(int n, int c, int h, int w, int oc, int kh, int kw, int sh, int sw, int ph, int pw, int dh,
                                int dw, int groups) {
        return new ConvGeometry(n, c, h, w, oc, kh, kw, sh, sw, ph, pw, dh, dw, groups);
    }

    static String describe(ConvGeometry g) {
        return "x" + shape(g.n(), g.inChannels(), g.inH(), g.inW()) + " w" + shape(g.outChannels(), g.inChannelsPerGroup(), g.kernelH(), g.kernelW())
                + (g.strideH() != 1 || g.strideW() != 1 ? " stride" + shape(g.strideH(), g.strideW()) : "")
                + (g.padH() != 0 || g.padW() != 0 ? " pad" + shape(g.padH(), g.padW()) : "")
                + (g.dilationH() != 1 || g.dilationW() != 1 ? " dilation" + shape(g.dilationH(), g.dilationW()) : "")
                + (g.groups() != 1 ? " groups " + g.groups() : "");
    }

    static final ConvGeometry[] CONVS = {
        conv(1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1),      // 1x1 spatial, C=1
        conv(2, 3, 1, 1, 2, 3, 3, 1, 1, 1, 1, 1, 1),      // 1x1 spatial, kernel 3 over padding only
        conv(2, 3, 7, 5, 4, 3, 3, 1, 1, 1, 1, 1, 1),      // batch 2, non-square, padding
        conv(2, 2, 9, 8, 3, 3, 2, 2, 2, 1, 1, 1, 1),      // stride 2 < kernel 3, non-square kernel
        conv(1, 2, 9, 10, 2, 3, 3, 1, 1, 2, 2, 2, 2),     // dilation 2
        conv(2, 1, 6, 7, 2, 4, 3, 3, 2, 0, 1, 1, 1),      // odd strides, C=1
        conv(1, 2, 11, 9, 3, 3, 3, 2, 2, 1, 1, 2, 2),     // stride 2 and dilation 2
        conv(64, 1, 28, 28, 6, 5, 5, 1, 1, 2, 2, 1, 1),   // LeNet conv1
        conv(64, 6, 14, 14, 16, 5, 5, 1, 1, 0, 0, 1, 1),  // LeNet conv2
        grouped(2, 4, 7, 6, 4, 3, 3, 1, 1, 1, 1, 1, 1, 4),     // depthwise
        grouped(2, 3, 6, 5, 6, 3, 3, 2, 2, 1, 1, 1, 1, 3),     // depthwise, two filters per channel, stride 2
        grouped(2, 4, 9, 8, 6, 3, 2, 2, 1, 1, 0, 1, 2, 2),     // 2 groups, rectangular kernel, per-axis geometry
        grouped(1, 6, 4, 4, 6, 1, 1, 1, 1, 0, 0, 1, 1, 3),     // grouped pointwise
        grouped(5, 16, 10, 10, 16, 3, 3, 1, 1, 1, 1, 1, 1, 16), // MobileNet-style depthwise, many planes
        grouped(1, 2, 3, 9, 2, 1, 4, 1, 3, 0, 2, 1, 2, 2),     // 1xk kernel, padding only along w
    };

    static Stream<Arguments> convCases() {
        return Arrays.stream(CONVS).map(g -> Arguments.of(named(describe(g), g)));
    }

    static Stream<Arguments> convBiasCases() {
        return Arrays.stream(CONVS).flatMap(g -> Stream.of(
                Arguments.of(named(describe(g) + " with bias", g), true),
                Arguments.of(named(describe(g) + " without bias", g), false)));
    }

    static boolean lenet(ConvGeometry g) {
        return g.n() == 64;
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("convBiasCases")
    @DisplayName("conv2dForward")
    void conv2dForward(ConvGeometry g, boolean withBias) {
        Inputs in = new Inputs(1000 + g.hashCode());
        float[] x = in.uniform((int) g.inputLength(), -1, 1);
        float[] w = in.uniform((int) g.weightLength(), -1, 1);
        float[] bias = in.uniform(g.outChannels(), -1, 1);
        Reference.Sum ref = Reference.conv2dForward(g, widen(x), widen(w), withBias ? widen(bias) : null);
        try (Scope s = scope()) {
            Buffer y = s.out(g.outputLength());
            b.conv2dForward(g, s.in(x), s.in(w), withBias ? s.in(bias) : null, y);
            // each output is a sum of K = C kh kw products (+ bias): RTOL |ref| + 1e-7 sqrt(K) sum|term|
            long k = (long) g.inChannelsPerGroup() * g.kernelH() * g.kernelW() + 1;
            assertClose("conv2dForward " + describe(g) + (withBias ? " +bias" : ""),
                    new int[] {g.n(), g.outChannels(), g.outH(), g.outW()}, s.down(y), ref.v(), Tolerance.sums(ref.v(), ref.abs(), k));
            s.assertInputsUnchanged("conv2dForward");
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("convCases")
    @DisplayName("conv2dBackwardData")
    void conv2dBackwardData(ConvGeometry g) {
        Inputs in = new Inputs(1100 + g.hashCode());
        float[] w = in.uniform((int) g.weightLength(), -1, 1);
        float[] dy = in.uniform((int) g.outputLength(), -1, 1);
        Reference.Sum ref = Reference.conv2dBackwardData(g, widen(w), widen(dy));
        try (Scope s = scope()) {
            Buffer dx = s.out(g.inputLength());
            b.conv2dBackwardData(g, s.in(w), s.in(dy), dx);
            // each dx gathers at most K = outC kh kw products
            long k = (long) g.outChannelsPerGroup() * g.kernelH() * g.kernelW();
            assertClose("conv2dBackwardData " + describe(g), new int[] {g.n(), g.inChannels(), g.inH(), g.inW()},
                    s.down(dx), ref.v(), Tolerance.sums(ref.v(), ref.abs(), k));
            s.assertInputsUnchanged("conv2dBackwardData");
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("convCases")
    @DisplayName("conv2dBackwardWeight")
    void conv2dBackwardWeight(ConvGeometry g) {
        Inputs in = new Inputs(1200 + g.hashCode());
        float[] x = in.uniform((int) g.inputLength(), -1, 1);
        float[] dy = in.uniform((int) g.outputLength(), -1, 1);
        Reference.Sum ref = Reference.conv2dBackwardWeight(g, widen(x), widen(dy));
        try (Scope s = scope()) {
            Buffer dw = s.out(g.weightLength());
            b.conv2dBackwardWeight(g, s.in(x), s.in(dy), dw);
            // each dw is a sum over K = n outH outW products
            long k = (long) g.n() * g.outH() * g.outW();
            assertClose("conv2dBackwardWeight " + describe(g), new int[] {g.outChannels(), g.inChannelsPerGroup(), g.kernelH(), g.kernelW()},
                    s.down(dw), ref.v(), Tolerance.sums(ref.v(), ref.abs(), k));
            s.assertInputsUnchanged("conv2dBackwardWeight");
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("convCases")
    @DisplayName("conv2dBackwardBias")
    void conv2dBackwardBias(ConvGeometry g) {
        Inputs in = new Inputs(1300 + g.hashCode());
        float[] dy = in.uniform((int) g.outputLength(), -1, 1.5);
        Reference.Sum ref = Reference.conv2dBackwardBias(g, widen(dy));
        try (Scope s = scope()) {
            Buffer db = s.out(g.outChannels());
            b.conv2dBackwardBias(g, s.in(dy), db);
            // each db is a sum over K = n outH outW values
            long k = (long) g.n() * g.outH() * g.outW();
            assertClose("conv2dBackwardBias " + describe(g), new int[] {g.outChannels()}, s.down(db), ref.v(),
                    Tolerance.sums(ref.v(), ref.abs(), k));
            s.assertInputsUnchanged("conv2dBackwardBias");
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("convCases")
    @DisplayName("conv2d reference backward (data, weight, bias) vs finite differences")
    void conv2dReferenceGradients(ConvGeometry g) {
        Inputs in = new Inputs(1400 + g.hashCode());
        double[] x = widen(in.uniform((int) g.inputLength(), -1, 1));
        double[] w = widen(in.uniform((int) g.weightLength(), -1, 1));
        double[] bias = widen(in.uniform(g.outChannels(), -1, 1));
        double[] dy = widen(in.uniform((int) g.outputLength(), -1, 1));
        int samples = lenet(g) ? 3 : 12;
        String d = describe(g);
        Gradcheck.check("conv2d (data)", d, xx -> Reference.conv2dForward(g, xx, w, bias).v(), x, dy,
                Reference.conv2dBackwardData(g, w, dy).v(), in.subset(x.length, samples));
        Gradcheck.check("conv2d (weight)", d, ww -> Reference.conv2dForward(g, x, ww, bias).v(), w, dy,
                Reference.conv2dBackwardWeight(g, x, dy).v(), in.subset(w.length, samples));
        Gradcheck.check("conv2d (bias)", d, bb -> Reference.conv2dForward(g, x, w, bb).v(), bias, dy,
                Reference.conv2dBackwardBias(g, dy).v(), in.subset(bias.length, samples));
    }
}
