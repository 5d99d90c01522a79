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

/** Conformance of element-wise ops (unary, scalar, broadcasting binary, axpy) and reductions (sumTo, broadcastTo, argmax); see {@link ConformanceSuite}. */
public class ElementwiseConformanceSuite extends ConformanceSuite {

    // ==================================================================================================== element-wise

    static float[] unaryInput(UnaryOp op, Inputs in, int n) {
        switch (op) {
            case LOG:
            case SQRT:
            case RECIPROCAL:
                return in.uniform(n, 0.05, 4); // their domain (0, inf), away from the pole of 1/x
            case EXP:
                return in.uniform(n, -8, 8);
            default:
                return in.uniform(n, -3, 3);
        }
    }

    static Stream<Arguments> unaryCases() {
        List<Arguments> l = new ArrayList<>();
        for (UnaryOp op : UnaryOp.values()) {
            for (int n : new int[] {1, 7, 1000}) {
                for (boolean inPlace : new boolean[] {false, true}) {
                    l.add(Arguments.of(named(op + " n=" + n + (inPlace ? " in place" : ""), op), n, inPlace));
                }
            }
        }
        return l.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("unaryCases")
    @DisplayName("unary")
    void unary(UnaryOp op, int n, boolean inPlace) {
        float[] x = unaryInput(op, new Inputs(100 + op.ordinal() * 10 + n), n);
        double[] ref = Reference.unary(op, widen(x));
        try (Scope s = scope()) {
            // buffers are 3 longer than n: the tail must stay as it was (the op touches i < n only)
            float[] padded = Arrays.copyOf(x, n + 3);
            padded[n] = padded[n + 1] = padded[n + 2] = 42f;
            Buffer xb = inPlace ? s.up(padded) : s.in(padded);
            Buffer yb = inPlace ? xb : s.up(Inputs.filled(n + 3, 42f));
            b.unary(op, xb, yb, n);
            float[] got = s.down(yb);
            // element-wise float32 op: |got - ref| <= 1e-7 + 1e-5 |ref| (see Tolerance)
            assertClose("unary " + op, new int[] {n}, Arrays.copyOf(got, n), ref, ATOL, RTOL);
            assertExact("unary " + op + " tail beyond n", new int[] {3}, Arrays.copyOfRange(got, n, n + 3),
                    new float[] {42f, 42f, 42f});
            if (!inPlace) {
                s.assertInputsUnchanged("unary " + op);
            }
        }
    }

    static Stream<Arguments> scalarCases() {
        List<Arguments> l = new ArrayList<>();
        for (ScalarOp op : ScalarOp.values()) {
            float[] scalars = op == ScalarOp.POW ? new float[] {2f, 0.5f, -1.5f, 3f, 0f} : new float[] {0.75f, -2.5f, 0f};
            for (float sc : scalars) {
                for (boolean inPlace : new boolean[] {false, true}) {
                    l.add(Arguments.of(named(op + " s=" + sc + (inPlace ? " in place" : ""), op), sc, inPlace));
                }
            }
        }
        return l.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("scalarCases")
    @DisplayName("scalar")
    void scalar(ScalarOp op, float sc, boolean inPlace) {
        int n = 257;
        Inputs in = new Inputs(200 + op.ordinal() * 17 + Float.floatToIntBits(sc));
        float[] x;
        if (op == ScalarOp.POW && sc != Math.rint(sc)) {
            x = in.uniform(n, 0.05, 3); // non-integer exponents: positive bases only
        } else if (op == ScalarOp.POW) {
            x = in.uniform(n, -3, 3); // integer exponents: negative bases too (x.pow(2), x.pow(3))
        } else {
            x = in.uniform(n, -3, 3);
        }
        double[] ref = Reference.scalar(op, widen(x), sc);
        try (Scope s = scope()) {
            Buffer xb = inPlace ? s.up(x) : s.in(x);
            Buffer yb = inPlace ? xb : s.out(n);
            b.scalar(op, xb, sc, yb, n);
            // element-wise float32 op: |got - ref| <= 1e-7 + 1e-5 |ref|
            assertClose("scalar " + op + " s=" + sc, new int[] {n}, s.down(yb), ref, ATOL, RTOL);
            if (!inPlace) {
                s.assertInputsUnchanged("scalar " + op);
            }
        }
    }

    /** {aShape, bShape, outShape}. */
    static final int[][][] BROADCAST_PATTERNS = {
        {{7}, {7}, {7}},
        {{1}, {1}, {1}},
        {{2, 3, 4}, {2, 3, 4}, {2, 3, 4}},
        {{2, 3, 4}, {1, 3, 1}, {2, 3, 4}},
        {{1, 3, 1}, {2, 3, 4}, {2, 3, 4}},
        {{2, 1, 4}, {1, 3, 1}, {2, 3, 4}},
        {{4, 1, 5, 1}, {1, 3, 1, 2}, {4, 3, 5, 2}},
        {{1, 1}, {3, 5}, {3, 5}},
        {{64, 10}, {1, 10}, {64, 10}},
        {{64, 6, 28, 28}, {1, 6, 1, 1}, {64, 6, 28, 28}},
    };

    static Stream<Arguments> binaryCases() {
        List<Arguments> l = new ArrayList<>();
        for (BinaryOp op : BinaryOp.values()) {
            for (int[][] p : BROADCAST_PATTERNS) {
                l.add(Arguments.of(named(op + " " + shape(p[0]) + " , " + shape(p[1]) + " -> " + shape(p[2]), op), p));
            }
        }
        return l.stream();
    }

    static float[] binaryRight(BinaryOp op, Inputs in, int n) {
        return op == BinaryOp.DIV ? in.signedAwayFromZero(n, 0.1, 3) : in.uniform(n, -3, 3);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("binaryCases")
    @DisplayName("binary with broadcasting")
    void binary(BinaryOp op, int[][] p) {
        Inputs in = new Inputs(300 + op.ordinal() * 31 + Arrays.deepHashCode(p));
        float[] a = in.uniform(Reference.numel(p[0]), -3, 3);
        float[] bb = binaryRight(op, in, Reference.numel(p[1]));
        double[] ref = Reference.binary(op, widen(a), p[0], widen(bb), p[1], p[2]);
        try (Scope s = scope()) {
            Buffer ab = s.in(a);
            Buffer bbuf = s.in(bb);
            Buffer out = s.out(Reference.numel(p[2]));
            b.binary(op, ab, p[0], bbuf, p[1], out, p[2]);
            // element-wise float32 op: |got - ref| <= 1e-7 + 1e-5 |ref|
            assertClose("binary " + op + " " + shape(p[0]) + "," + shape(p[1]) + "->" + shape(p[2]), p[2],
                    s.down(out), ref, ATOL, RTOL);
            s.assertInputsUnchanged("binary " + op);
        }
    }

    static Stream<Arguments> aliasCases() {
        List<Arguments> l = new ArrayList<>();
        for (BinaryOp op : BinaryOp.values()) {
            for (String alias : new String[] {"out=a", "out=b", "out=a=b"}) {
                l.add(Arguments.of(named(op + " " + alias, op), alias));
            }
        }
        return l.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("aliasCases")
    @DisplayName("binary in place (out aliases an input of the output's shape)")
    void binaryInPlace(BinaryOp op, String alias) {
        int[] full = {3, 4, 5};
        int[] bcast = {1, 4, 1};
        Inputs in = new Inputs(400 + op.ordinal() * 7 + alias.hashCode());
        try (Scope s = scope()) {
            double[] ref;
            Buffer out;
            switch (alias) {
                case "out=a": {
                    float[] a = in.uniform(60, -3, 3);
                    float[] c = binaryRight(op, in, 4);
                    ref = Reference.binary(op, widen(a), full, widen(c), bcast, full);
                    out = s.up(a);
                    b.binary(op, out, full, s.in(c), bcast, out, full);
                    break;
                }
                case "out=b": {
                    float[] a = in.uniform(4, -3, 3);
                    float[] c = binaryRight(op, in, 60);
                    ref = Reference.binary(op, widen(a), bcast, widen(c), full, full);
                    out = s.up(c);
                    b.binary(op, s.in(a), bcast, out, full, out, full);
                    break;
                }
                default: {
                    float[] a = binaryRight(op, in, 60);
                    ref = Reference.binary(op, widen(a), full, widen(a), full, full);
                    out = s.up(a);
                    b.binary(op, out, full, out, full, out, full);
                }
            }
            // element-wise float32 op: |got - ref| <= 1e-7 + 1e-5 |ref|
            assertClose("binary " + op + " in place " + alias, full, s.down(out), ref, ATOL, RTOL);
            s.assertInputsUnchanged("binary " + op + " in place");
        }
    }

    @ParameterizedTest(name = "alpha={0}")
    @DisplayName("axpy (only i < n is touched)")
    @org.junit.jupiter.params.provider.ValueSource(floats = {1f, -0.5f, 0f, 3.25f})
    void axpy(float alpha) {
        Inputs in = new Inputs(500 + Float.floatToIntBits(alpha));
        int n = 333;
        float[] x = in.uniform(n + 2, -2, 2);
        float[] y = in.uniform(n + 2, -2, 2);
        double[] ref = Reference.axpy(alpha, widen(Arrays.copyOf(x, n)), widen(Arrays.copyOf(y, n)));
        try (Scope s = scope()) {
            Buffer xb = s.in(x);
            Buffer yb = s.up(y);
            b.axpy(alpha, xb, yb, n);
            float[] got = s.down(yb);
            // y + alpha x is a fused or two-rounding float32 op; cancellation: atol covers |alpha x| + |y| rounding
            double[] tol = new double[n];
            for (int i = 0; i < n; i++) {
                tol[i] = ATOL + RTOL * (Math.abs(y[i]) + Math.abs(alpha * x[i]));
            }
            assertClose("axpy alpha=" + alpha, new int[] {n}, Arrays.copyOf(got, n), ref, tol);
            assertExact("axpy tail beyond n", new int[] {2}, Arrays.copyOfRange(got, n, n + 2), Arrays.copyOfRange(y, n, n + 2));
            s.assertInputsUnchanged("axpy");
        }
    }

    // ==================================================================================================== reductions

    /** {xShape, reducedShape}: sumTo goes left to right, broadcastTo right to left. */
    static final int[][][] REDUCE_PATTERNS = {
        {{3, 4}, {1, 4}},
        {{3, 4}, {3, 1}},
        {{3, 4}, {1, 1}},
        {{3, 4}, {3, 4}},
        {{1, 1}, {1, 1}},
        {{2, 3, 4, 5}, {1, 3, 1, 1}},
        {{2, 3, 4, 5}, {2, 1, 4, 1}},
        {{2, 3, 4, 5}, {1, 1, 1, 5}},
        {{2, 3, 4, 5}, {1, 1, 1, 1}},
        {{64, 120}, {1, 120}},
        {{64, 6, 28, 28}, {1, 6, 1, 1}},
    };

    static Stream<Arguments> reduceCases() {
        return Arrays.stream(REDUCE_PATTERNS).map(p -> Arguments.of(named(shape(p[0]) + " <-> " + shape(p[1]), p)));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("reduceCases")
    @DisplayName("sumTo")
    void sumTo(int[][] p) {
        float[] x = new Inputs(600 + Arrays.deepHashCode(p)).uniform(Reference.numel(p[0]), -1, 2);
        Reference.Sum ref = Reference.sumTo(widen(x), p[0], p[1]);
        long k = Reference.numel(p[0]) / Reference.numel(p[1]);
        try (Scope s = scope()) {
            Buffer xb = s.in(x);
            Buffer out = s.out(Reference.numel(p[1]));
            b.sumTo(xb, p[0], out, p[1]);
            // sum of K = numel(x)/numel(out) terms: RTOL |ref| + 1e-7 sqrt(K) sum|x|
            assertClose("sumTo " + shape(p[0]) + "->" + shape(p[1]), p[1], s.down(out), ref.v(),
                    Tolerance.sums(ref.v(), ref.abs(), k));
            s.assertInputsUnchanged("sumTo");
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("reduceCases")
    @DisplayName("broadcastTo (and sumTo as its reference backward)")
    void broadcastTo(int[][] p) {
        Inputs in = new Inputs(700 + Arrays.deepHashCode(p));
        float[] x = in.uniform(Reference.numel(p[1]), -1, 1);
        double[] ref = Reference.broadcastTo(widen(x), p[1], p[0]);
        try (Scope s = scope()) {
            Buffer xb = s.in(x);
            Buffer out = s.out(Reference.numel(p[0]));
            b.broadcastTo(xb, p[1], out, p[0]);
            // pure data movement: bit-exact
            assertExact("broadcastTo " + shape(p[1]) + "->" + shape(p[0]), p[0], s.down(out), narrow(ref));
            s.assertInputsUnchanged("broadcastTo");
        }
        // the backward of broadcastTo is sumTo: check the reference pair by finite differences
        double[] dy = widen(in.uniform(Reference.numel(p[0]), -1, 1));
        Gradcheck.check("broadcastTo", shape(p[1]), xx -> Reference.broadcastTo(xx, p[1], p[0]), widen(x), dy,
                Reference.sumTo(dy, p[0], p[1]).v(), in.subset(x.length, 8));
    }

    static Stream<Arguments> argmaxCases() {
        List<Arguments> l = new ArrayList<>();
        int[][] shapes = {{1, 1, 1}, {1, 7, 1}, {3, 5, 1}, {2, 4, 3}, {64, 10, 1}, {1, 1, 5}};
        for (int[] sh : shapes) {
            for (String kind : new String[] {"distinct", "ties", "NaN"}) {
                l.add(Arguments.of(named(kind + " (outer,extent,inner)=" + shape(sh), sh), kind));
            }
        }
        return l.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("argmaxCases")
    @DisplayName("argmax: first maximum, NaN is the maximum")
    void argmax(int[] sh, String kind) {
        int n = sh[0] * sh[1] * sh[2];
        Inputs in = new Inputs(800 + Arrays.hashCode(sh) + kind.hashCode());
        float[] x = kind.equals("distinct") ? in.distinct(n) : in.fewLevels(n, 3);
        if (kind.equals("NaN")) {
            // one NaN per (outer, inner) line, at a random position; a second one further on must not win
            for (int o = 0; o < sh[0]; o++) {
                for (int i = 0; i < sh[2]; i++) {
                    int e = in.ints(1, sh[1])[0];
                    x[(o * sh[1] + e) * sh[2] + i] = Float.NaN;
                    if (e + 1 < sh[1]) {
                        x[(o * sh[1] + sh[1] - 1) * sh[2] + i] = Float.NaN;
                    }
                }
            }
        }
        double[] ref = Reference.argmax(widen(x), sh[0], sh[1], sh[2]);
        try (Scope s = scope()) {
            Buffer xb = s.in(x);
            Buffer out = s.out((long) sh[0] * sh[2]);
            b.argmax(xb, sh[0], sh[1], sh[2], out);
            // an index: exact
            assertExact("argmax " + kind + " (outer,extent,inner)=" + shape(sh), new int[] {sh[0], sh[2]},
                    s.down(out), narrow(ref));
            s.assertInputsUnchanged("argmax");
        }
    }
}
