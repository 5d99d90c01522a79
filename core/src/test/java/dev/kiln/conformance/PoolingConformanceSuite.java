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

/** Conformance of average and max pooling, forward and backward (first-maximum ties); see {@link ConformanceSuite}. */
public class PoolingConformanceSuite extends ConformanceSuite {

    // ==================================================================================================== pooling

    static PoolGeometry pool(int n, int c, int h, int w, int kh, int kw, int sh, int sw, int ph, int pw) {
        return new PoolGeometry(n, c, h, w, kh, kw, sh, sw, ph, pw);
    }

    static final PoolGeometry[] POOLS = {
        pool(64, 6, 28, 28, 2, 2, 2, 2, 0, 0),  // LeNet pool1
        pool(64, 16, 10, 10, 2, 2, 2, 2, 0, 0), // LeNet pool2
        pool(2, 3, 7, 6, 3, 3, 2, 2, 1, 1),     // overlapping (stride 2 < kernel 3), padding
        pool(1, 2, 5, 4, 3, 3, 1, 1, 1, 1),     // stride 1, padding
        pool(1, 1, 1, 1, 1, 1, 1, 1, 0, 0),     // 1x1
        pool(2, 1, 4, 7, 2, 3, 1, 2, 1, 1),     // non-square kernel and stride, padding
        pool(1, 2, 8, 8, 3, 3, 3, 3, 0, 0),     // floor mode drops the last rows/columns
    };

    static String describe(PoolGeometry g) {
        return "x" + shape(g.n(), g.channels(), g.inH(), g.inW()) + " kernel" + shape(g.kernelH(), g.kernelW())
                + " stride" + shape(g.strideH(), g.strideW()) + (g.padH() != 0 || g.padW() != 0 ? " pad" + shape(g.padH(), g.padW()) : "");
    }

    static Stream<Arguments> poolCases() {
        return Arrays.stream(POOLS).map(g -> Arguments.of(named(describe(g), g)));
    }

    static int[] outShape(PoolGeometry g) {
        return new int[] {g.n(), g.channels(), g.outH(), g.outW()};
    }

    static int[] inShape(PoolGeometry g) {
        return new int[] {g.n(), g.channels(), g.inH(), g.inW()};
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("poolCases")
    @DisplayName("avgPool2dForward and avgPool2dBackward (count_include_pad)")
    void avgPool(PoolGeometry g) {
        Inputs in = new Inputs(2000 + g.hashCode());
        float[] x = in.uniform((int) g.inputLength(), -1, 1);
        float[] dy = in.uniform((int) g.outputLength(), -1, 1);
        Reference.Sum y = Reference.avgPoolForward(g, widen(x));
        Reference.Sum dx = Reference.avgPoolBackward(g, widen(dy));
        long k = (long) g.kernelH() * g.kernelW();
        try (Scope s = scope()) {
            Buffer yb = s.out(g.outputLength());
            Buffer dxb = s.out(g.inputLength());
            b.avgPool2dForward(g, s.in(x), yb);
            b.avgPool2dBackward(g, s.in(dy), dxb);
            // sums of at most kh*kw terms (a window; the windows overlapping an input)
            assertClose("avgPool2dForward " + describe(g), outShape(g), s.down(yb), y.v(), Tolerance.sums(y.v(), y.abs(), k));
            assertClose("avgPool2dBackward " + describe(g), inShape(g), s.down(dxb), dx.v(), Tolerance.sums(dx.v(), dx.abs(), k));
            s.assertInputsUnchanged("avgPool2d");
        }
        int[] idx = in.subset(x.length, 12);
        Gradcheck.check("avgPool2d", describe(g), xx -> Reference.avgPoolForward(g, xx).v(), widen(x), widen(dy), dx.v(), idx);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("poolCases")
    @DisplayName("maxPool2dForward and maxPool2dBackward (distinct values)")
    void maxPool(PoolGeometry g) {
        Inputs in = new Inputs(2100 + g.hashCode());
        float[] x = in.distinct((int) g.inputLength()); // no ties, no two values within 1e-6: FD never crosses a kink
        float[] dy = in.uniform((int) g.outputLength(), -1, 1);
        double[] y = Reference.maxPoolForward(g, widen(x));
        Reference.Sum dx = Reference.maxPoolBackward(g, widen(x), y, widen(dy));
        try (Scope s = scope()) {
            Buffer yb = s.out(g.outputLength());
            Buffer xb = s.in(x);
            b.maxPool2dForward(g, xb, yb);
            float[] yGot = s.down(yb);
            // a maximum is one of the inputs: exact
            assertExact("maxPool2dForward " + describe(g), outShape(g), yGot, narrow(y));
            Buffer dxb = s.out(g.inputLength());
            b.maxPool2dBackward(g, xb, s.in(narrow(y)), s.in(dy), dxb);
            // overlapping windows add up to kh*kw gradients in one input
            assertClose("maxPool2dBackward " + describe(g), inShape(g), s.down(dxb), dx.v(),
                    Tolerance.sums(dx.v(), dx.abs(), (long) g.kernelH() * g.kernelW()));
            s.assertInputsUnchanged("maxPool2d");
        }
        Gradcheck.check("maxPool2d", describe(g), xx -> Reference.maxPoolForward(g, xx), widen(x), widen(dy), dx.v(),
                in.subset(x.length, 12));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("poolCases")
    @DisplayName("maxPool2dBackward with ties routes to the first maximum of each window")
    void maxPoolTies(PoolGeometry g) {
        Inputs in = new Inputs(2200 + g.hashCode());
        float[] x = in.fewLevels((int) g.inputLength(), 3);
        float[] dy = in.uniform((int) g.outputLength(), -1, 1);
        double[] y = Reference.maxPoolForward(g, widen(x));
        Reference.Sum dx = Reference.maxPoolBackward(g, widen(x), y, widen(dy));
        try (Scope s = scope()) {
            Buffer yb = s.out(g.outputLength());
            Buffer xb = s.in(x);
            b.maxPool2dForward(g, xb, yb);
            assertExact("maxPool2dForward with ties " + describe(g), outShape(g), s.down(yb), narrow(y));
            Buffer dxb = s.out(g.inputLength());
            b.maxPool2dBackward(g, xb, yb, s.in(dy), dxb);
            assertClose("maxPool2dBackward with ties " + describe(g), inShape(g), s.down(dxb), dx.v(),
                    Tolerance.sums(dx.v(), dx.abs(), (long) g.kernelH() * g.kernelW()));
        }
    }
}
