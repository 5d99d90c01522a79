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
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Named;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The shared conformance suite of the {@link Backend} SPI. A backend runs it by subclassing and returning a new
 * backend from {@link #backend()}; the suite creates it once per class and closes it after the last test.
 *
 * <p>For every op the backend's float32 result is compared with a plain float64 computation in {@link Reference}
 * (naive loops written from the SPI's javadoc), and every reference backward is itself verified by central finite
 * differences of the reference forward ({@link Gradcheck}). Inputs are seeded ({@link Inputs}); tolerances are
 * explained in {@link Tolerance} and next to each assertion. Outputs are pre-filled with NaN so an element an op
 * forgets to write is caught, and inputs are checked to be unchanged.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
public abstract class BackendConformanceSuite {

    /** A new backend; called once per test class. */
    protected abstract Backend backend();

    private Backend b;
    private org.opentest4j.TestAbortedException unavailable;

    @BeforeAll
    void createBackend() {
        try {
            b = backend();
        } catch (org.opentest4j.TestAbortedException e) {
            // Report every test as skipped with the reason (e.g. no GPU), rather than the class silently running none.
            unavailable = e;
        }
    }

    @org.junit.jupiter.api.BeforeEach
    void requireBackend() {
        if (unavailable != null) {
            throw unavailable;
        }
    }

    @AfterAll
    void closeBackend() {
        if (b != null) {
            b.close();
        }
    }

    private Scope scope() {
        return new Scope(b);
    }

    /** Wraps a value with a readable name for parameterized test names. */
    static <T> Named<T> named(String name, T value) {
        return Named.of(name, value);
    }

    // ==================================================================================================== memory


    @Test
    @DisplayName("allocate: zeroed, right length, owned by this backend; close is idempotent")
    void allocate() {
        for (int n : new int[] {1, 7, 1000}) {
            Buffer buf = b.allocate(n);
            assertEquals(n, buf.length(), "allocate(" + n + ").length()");
            assertSame(b, buf.backend(), "allocate(" + n + ").backend()");
            assertFalse(buf.isClosed(), "allocate(" + n + ").isClosed() before close");
            float[] got = new float[n];
            b.download(buf, 0, got, 0, n);
            assertExact("allocate", new int[] {n}, got, new float[n]);
            buf.close();
            assertTrue(buf.isClosed(), "isClosed() after close");
            buf.close(); // closing twice is harmless
        }
    }

    @Test
    @DisplayName("upload and download with offsets")
    void uploadDownload() {
        float[] src = new Inputs(1).uniform(20, -5, 5);
        try (Scope s = scope()) {
            Buffer buf = b.upload(src, 3, 11);
            assertEquals(11, buf.length(), "upload(src, 3, 11).length()");
            assertExact("upload(src, offset 3, length 11)", new int[] {11}, s.down(buf), Arrays.copyOfRange(src, 3, 14));
            buf.close();
            Buffer whole = s.up(src);
            float[] dst = Inputs.filled(12, 42f);
            b.download(whole, 5, dst, 2, 7);
            float[] want = Inputs.filled(12, 42f);
            System.arraycopy(src, 5, want, 2, 7);
            assertExact("download(src offset 5, dst offset 2, length 7) (rest of dst untouched)", new int[] {12}, dst, want);
            b.download(whole, 19, dst, 11, 1);
            want[11] = src[19];
            assertExact("download(last element)", new int[] {12}, dst, want);
        }
    }

    @Test
    @DisplayName("write with offsets leaves the rest unchanged")
    void write() {
        Inputs in = new Inputs(2);
        float[] init = in.uniform(15, -1, 1);
        float[] host = in.uniform(10, -1, 1);
        try (Scope s = scope()) {
            Buffer buf = s.up(init);
            b.write(host, 4, buf, 6, 5);
            float[] want = init.clone();
            System.arraycopy(host, 4, want, 6, 5);
            assertExact("write(src offset 4, dst offset 6, length 5)", new int[] {15}, s.down(buf), want);
        }
    }

    @Test
    @DisplayName("copy with offsets, between buffers and within one buffer")
    void copy() {
        Inputs in = new Inputs(3);
        float[] a = in.uniform(13, -1, 1);
        float[] c = in.uniform(9, -1, 1);
        try (Scope s = scope()) {
            Buffer src = s.in(a);
            Buffer dst = s.up(c);
            b.copy(src, 2, dst, 3, 5);
            float[] want = c.clone();
            System.arraycopy(a, 2, want, 3, 5);
            assertExact("copy(src offset 2, dst offset 3, length 5)", new int[] {9}, s.down(dst), want);
            s.assertInputsUnchanged("copy");
            Buffer self = s.up(a);
            b.copy(self, 0, self, 8, 4); // disjoint ranges of one buffer
            float[] want2 = a.clone();
            System.arraycopy(a, 0, want2, 8, 4);
            assertExact("copy within one buffer [0,4) -> [8,12)", new int[] {13}, s.down(self), want2);
        }
    }

    @Test
    @DisplayName("fill with offsets leaves the rest unchanged")
    void fill() {
        float[] init = new Inputs(4).uniform(10, -1, 1);
        try (Scope s = scope()) {
            Buffer buf = s.up(init);
            b.fill(buf, 3, 4, -2.5f);
            float[] want = init.clone();
            Arrays.fill(want, 3, 7, -2.5f);
            assertExact("fill(offset 3, length 4, -2.5)", new int[] {10}, s.down(buf), want);
            b.fill(buf, 0, 10, 0f);
            assertExact("fill(whole buffer, 0)", new int[] {10}, s.down(buf), new float[10]);
        }
    }

    @ParameterizedTest(name = "rowLength {0}")
    @DisplayName("gatherRows: repeated and unordered rows")
    @org.junit.jupiter.params.provider.ValueSource(ints = {1, 5, 784})
    void gatherRows(int rowLength) {
        Inputs in = new Inputs(5 + rowLength);
        int srcRows = 9;
        float[] src = in.uniform(srcRows * rowLength, -1, 1);
        int[] rows = {8, 0, 3, 3, 7, 1, 8};
        try (Scope s = scope()) {
            Buffer sb = s.in(src);
            Buffer db = s.out((long) rows.length * rowLength);
            b.gatherRows(sb, rowLength, rows, db);
            float[] want = new float[rows.length * rowLength];
            for (int i = 0; i < rows.length; i++) {
                System.arraycopy(src, rows[i] * rowLength, want, i * rowLength, rowLength);
            }
            assertExact("gatherRows rows " + Arrays.toString(rows), new int[] {rows.length, rowLength}, s.down(db), want);
            s.assertInputsUnchanged("gatherRows");
        }
    }

    @Test
    @DisplayName("synchronize returns and name/description are set")
    void synchronizeAndNames() {
        b.synchronize();
        assertFalse(b.name() == null || b.name().isBlank(), "name()");
        assertFalse(b.description() == null || b.description().isBlank(), "description()");
    }

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
        } else if (op == ScalarOp.RDIV) {
            x = in.signedAwayFromZero(n, 0.05, 3);
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

    static String describe(ConvGeometry g) {
        return "x" + shape(g.n(), g.inChannels(), g.inH(), g.inW()) + " w" + shape(g.outChannels(), g.inChannels(), g.kernelH(), g.kernelW())
                + (g.strideH() != 1 || g.strideW() != 1 ? " stride" + shape(g.strideH(), g.strideW()) : "")
                + (g.padH() != 0 || g.padW() != 0 ? " pad" + shape(g.padH(), g.padW()) : "")
                + (g.dilationH() != 1 || g.dilationW() != 1 ? " dilation" + shape(g.dilationH(), g.dilationW()) : "");
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
            long k = (long) g.inChannels() * g.kernelH() * g.kernelW() + 1;
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
            long k = (long) g.outChannels() * g.kernelH() * g.kernelW();
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
            assertClose("conv2dBackwardWeight " + describe(g), new int[] {g.outChannels(), g.inChannels(), g.kernelH(), g.kernelW()},
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

    // ==================================================================================================== batch norm

    static final BatchNormGeometry[] BNS = {
        new BatchNormGeometry(64, 6, 28 * 28),  // LeNet BN2d (64,6,28,28)
        new BatchNormGeometry(64, 120, 1),      // LeNet BN1d (64,120)
        new BatchNormGeometry(2, 3, 5),
        new BatchNormGeometry(2, 1, 1),         // C=1, m=2 (smallest with an unbiased variance)
        new BatchNormGeometry(1, 2, 9),         // batch 1, statistics over space
        new BatchNormGeometry(3, 4, 1),
    };

    static String describe(BatchNormGeometry g) {
        return "(n,C,spatial)=" + shape(g.n(), g.channels(), g.spatial());
    }

    static Stream<Arguments> bnCases() {
        return Arrays.stream(BNS).flatMap(g -> Stream.of(
                Arguments.of(named(describe(g) + " affine", g), true),
                Arguments.of(named(describe(g) + " gamma=beta=null", g), false)));
    }

    static final float BN_EPS = 1e-5f;

    /** x = 0.5 + 1.5 U(-1,1): an offset mean, as after a ReLU, so a cancelling variance formula would show. */
    static float[] bnInput(Inputs in, BatchNormGeometry g) {
        float[] x = in.uniform((int) g.length(), -1, 1);
        for (int i = 0; i < x.length; i++) {
            x[i] = 0.5f + 1.5f * x[i];
        }
        return x;
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("bnCases")
    @DisplayName("batchNormForwardTraining (y, saveMean, saveInvStd)")
    void batchNormForwardTraining(BatchNormGeometry g, boolean affine) {
        Inputs in = new Inputs(1500 + g.hashCode() + (affine ? 1 : 0));
        float[] x = bnInput(in, g);
        float[] gamma = in.uniform(g.channels(), 0.5, 2);
        float[] beta = in.uniform(g.channels(), -1, 1);
        double[] xd = widen(x);
        double[] mean = Reference.bnMean(g, xd);
        double[] var = Reference.bnVar(g, xd, mean);
        double[] invStd = Reference.bnInvStd(var, BN_EPS);
        double[] y = Reference.bnNormalize(g, xd, affine ? widen(gamma) : null, affine ? widen(beta) : null, mean, invStd);
        // Error budget. m = n*spatial; the mean is a sum of m values divided by m, so its float32 error is
        // RTOL |mean| + 1e-7 sqrt(m) mean|x|; the variance (however computed: two-pass or E[x^2] - mean^2) errs by
        // at most RTOL var + 1e-7 sqrt(m) mean(x^2) (+ twice the mean's error times |mean|), invStd by half that
        // relatively; y = gamma (x - mean) invStd + beta inherits gamma invStd dMean + |gamma xhat| dInvStd/invStd.
        long m = g.valuesPerChannel();
        double[] meanTol = new double[g.channels()];
        double[] invStdTol = new double[g.channels()];
        double[] relInv = new double[g.channels()];
        for (int c = 0; c < g.channels(); c++) {
            double absSum = 0;
            double sqSum = 0;
            for (int n = 0; n < g.n(); n++) {
                for (int p = 0; p < g.spatial(); p++) {
                    double v = xd[(n * g.channels() + c) * g.spatial() + p];
                    absSum += Math.abs(v);
                    sqSum += v * v;
                }
            }
            meanTol[c] = ATOL + RTOL * Math.abs(mean[c]) + SUM_COEFF * Math.sqrt(m) * absSum / m;
            double varErr = RTOL * var[c] + SUM_COEFF * Math.sqrt(m) * sqSum / m + 2 * Math.abs(mean[c]) * meanTol[c];
            relInv[c] = RTOL + 0.5 * varErr / (var[c] + BN_EPS);
            invStdTol[c] = invStd[c] * relInv[c];
        }
        double[] yTol = new double[y.length];
        for (int n = 0; n < g.n(); n++) {
            for (int c = 0; c < g.channels(); c++) {
                double ga = affine ? Math.abs(gamma[c]) : 1;
                for (int p = 0; p < g.spatial(); p++) {
                    int i = (n * g.channels() + c) * g.spatial() + p;
                    double xhat = (xd[i] - mean[c]) * invStd[c];
                    yTol[i] = ATOL + RTOL * (Math.abs(y[i]) + ga * Math.abs(xhat)) + ga * invStd[c] * meanTol[c]
                            + ga * Math.abs(xhat) * relInv[c];
                }
            }
        }
        try (Scope s = scope()) {
            Buffer yb = s.out(g.length());
            Buffer sm = s.out(g.channels());
            Buffer si = s.out(g.channels());
            b.batchNormForwardTraining(g, s.in(x), affine ? s.in(gamma) : null, affine ? s.in(beta) : null, BN_EPS, yb, sm, si);
            String op = "batchNormForwardTraining " + describe(g) + (affine ? " affine" : "");
            assertClose(op + " saveMean", new int[] {g.channels()}, s.down(sm), mean, meanTol);
            assertClose(op + " saveInvStd", new int[] {g.channels()}, s.down(si), invStd, invStdTol);
            assertClose(op + " y", new int[] {g.n(), g.channels(), g.spatial()}, s.down(yb), y, yTol);
            s.assertInputsUnchanged(op);
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("bnCases")
    @DisplayName("batchNormForwardInference")
    void batchNormForwardInference(BatchNormGeometry g, boolean affine) {
        Inputs in = new Inputs(1600 + g.hashCode() + (affine ? 1 : 0));
        float[] x = bnInput(in, g);
        float[] gamma = in.uniform(g.channels(), 0.5, 2);
        float[] beta = in.uniform(g.channels(), -1, 1);
        float[] rm = in.uniform(g.channels(), -0.5, 0.5);
        float[] rv = in.uniform(g.channels(), 0.2, 3);
        double[] y = Reference.bnInference(g, widen(x), affine ? widen(gamma) : null, affine ? widen(beta) : null,
                widen(rm), widen(rv), BN_EPS);
        try (Scope s = scope()) {
            Buffer yb = s.out(g.length());
            b.batchNormForwardInference(g, s.in(x), affine ? s.in(gamma) : null, affine ? s.in(beta) : null,
                    s.in(rm), s.in(rv), BN_EPS, yb);
            // a handful of float32 element-wise ops; x - mean may cancel, so the tolerance is relative to the
            // magnitudes of the operands: ATOL + RTOL (|y| + |gamma| invStd (|x| + |mean|) + |beta|)
            double[] tol = new double[y.length];
            for (int i = 0; i < y.length; i++) {
                int c = (i / g.spatial()) % g.channels();
                double ga = affine ? Math.abs(gamma[c]) : 1;
                tol[i] = ATOL + RTOL * (Math.abs(y[i]) + ga / Math.sqrt(rv[c] + BN_EPS) * (Math.abs(x[i]) + Math.abs(rm[c]))
                        + (affine ? Math.abs(beta[c]) : 0));
            }
            assertClose("batchNormForwardInference " + describe(g) + (affine ? " affine" : ""),
                    new int[] {g.n(), g.channels(), g.spatial()}, s.down(yb), y, tol);
            s.assertInputsUnchanged("batchNormForwardInference");
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("bnCases")
    @DisplayName("batchNormInferenceActivation: inference BN then sigmoid, relu and tanh in one pass, also in place")
    void batchNormInferenceActivation(BatchNormGeometry g, boolean affine) {
        Inputs in = new Inputs(1650 + g.hashCode() + (affine ? 1 : 0));
        float[] x = bnInput(in, g);
        float[] gamma = in.uniform(g.channels(), 0.5, 2);
        float[] beta = in.uniform(g.channels(), -1, 1);
        float[] rm = in.uniform(g.channels(), -0.5, 0.5);
        float[] rv = in.uniform(g.channels(), 0.2, 3);
        double[] z = Reference.bnInference(g, widen(x), affine ? widen(gamma) : null, affine ? widen(beta) : null,
                widen(rm), widen(rv), BN_EPS);
        for (Activation a : Activation.values()) {
            double[] y = Reference.activationForward(a, z);
            // the BN tolerance of batchNormForwardInference, carried through an activation whose slope is at most 1,
            // plus the activation's own relative error
            double[] tol = new double[y.length];
            for (int i = 0; i < y.length; i++) {
                int c = (i / g.spatial()) % g.channels();
                double ga = affine ? Math.abs(gamma[c]) : 1;
                tol[i] = 2 * ATOL + RTOL * (Math.abs(y[i]) + Math.abs(z[i])
                        + ga / Math.sqrt(rv[c] + BN_EPS) * (Math.abs(x[i]) + Math.abs(rm[c])) + (affine ? Math.abs(beta[c]) : 0));
            }
            String op = "batchNormInferenceActivation " + a + " " + describe(g) + (affine ? " affine" : "");
            try (Scope s = scope()) {
                Buffer yb = s.out(g.length());
                b.batchNormInferenceActivation(g, a, s.in(x), affine ? s.in(gamma) : null, affine ? s.in(beta) : null,
                        s.in(rm), s.in(rv), BN_EPS, yb);
                assertClose(op, new int[] {g.n(), g.channels(), g.spatial()}, s.down(yb), y, tol);
                s.assertInputsUnchanged(op);
                Buffer inPlace = s.up(x);
                b.batchNormInferenceActivation(g, a, inPlace, affine ? s.in(gamma) : null, affine ? s.in(beta) : null,
                        s.in(rm), s.in(rv), BN_EPS, inPlace);
                assertClose(op + " in place", new int[] {g.n(), g.channels(), g.spatial()}, s.down(inPlace), y, tol);
            }
        }
    }

    static Stream<Arguments> bnBackwardCases() {
        List<Arguments> l = new ArrayList<>();
        for (BatchNormGeometry g : BNS) {
            l.add(Arguments.of(named(describe(g) + " affine, all outputs", g), true, "all"));
            l.add(Arguments.of(named(describe(g) + " gamma=null, all outputs", g), false, "all"));
            l.add(Arguments.of(named(describe(g) + " affine, dx only", g), true, "dx"));
            l.add(Arguments.of(named(describe(g) + " affine, dGamma and dBeta only", g), true, "params"));
        }
        return l.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("bnBackwardCases")
    @DisplayName("batchNormBackward (dx, dGamma, dBeta; null outputs)")
    void batchNormBackward(BatchNormGeometry g, boolean affine, String wanted) {
        Inputs in = new Inputs(1700 + g.hashCode() + wanted.hashCode() + (affine ? 1 : 0));
        float[] x = bnInput(in, g);
        float[] dy = in.uniform((int) g.length(), -1, 1);
        float[] gamma = in.uniform(g.channels(), 0.5, 2);
        // the saved statistics are inputs of the backward: feed the reference's own, rounded to float32,
        // and compute the reference backward from exactly those values
        double[] xd = widen(x);
        double[] mean0 = Reference.bnMean(g, xd);
        float[] saveMean = narrow(mean0);
        float[] saveInvStd = narrow(Reference.bnInvStd(Reference.bnVar(g, xd, mean0), BN_EPS));
        Reference.BnGrads ref = Reference.bnBackward(g, xd, widen(dy), affine ? widen(gamma) : null,
                widen(saveMean), widen(saveInvStd));
        boolean wantDx = !wanted.equals("params");
        boolean wantParams = !wanted.equals("dx");
        try (Scope s = scope()) {
            Buffer dx = wantDx ? s.out(g.length()) : null;
            Buffer dGamma = wantParams ? s.out(g.channels()) : null;
            Buffer dBeta = wantParams ? s.out(g.channels()) : null;
            b.batchNormBackward(g, s.in(x), s.in(dy), affine ? s.in(gamma) : null, s.in(saveMean), s.in(saveInvStd),
                    dx, dGamma, dBeta);
            String op = "batchNormBackward " + describe(g) + (affine ? " affine" : "");
            long m = g.valuesPerChannel();
            if (wantDx) {
                // dx = gamma invStd / m (m dy - sum dy - xhat sum(dy xhat)): see Reference.bnBackward for the budget
                assertClose(op + " dx", new int[] {g.n(), g.channels(), g.spatial()}, s.down(dx), ref.dx(), ref.dxTol());
            }
            if (wantParams) {
                // sums of m = n*spatial terms
                assertClose(op + " dGamma", new int[] {g.channels()}, s.down(dGamma), ref.dGamma().v(),
                        Tolerance.sums(ref.dGamma().v(), ref.dGamma().abs(), m));
                assertClose(op + " dBeta", new int[] {g.channels()}, s.down(dBeta), ref.dBeta().v(),
                        Tolerance.sums(ref.dBeta().v(), ref.dBeta().abs(), m));
            }
            s.assertInputsUnchanged(op);
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("bnCases")
    @DisplayName("batch norm reference backward vs finite differences")
    void batchNormReferenceGradients(BatchNormGeometry g, boolean affine) {
        Inputs in = new Inputs(1800 + g.hashCode() + (affine ? 1 : 0));
        double[] x = widen(bnInput(in, g));
        double[] dy = widen(in.uniform((int) g.length(), -1, 1));
        double[] gamma = affine ? widen(in.uniform(g.channels(), 0.5, 2)) : null;
        double[] beta = affine ? widen(in.uniform(g.channels(), -1, 1)) : null;
        double[] mean = Reference.bnMean(g, x);
        double[] invStd = Reference.bnInvStd(Reference.bnVar(g, x, mean), BN_EPS);
        Reference.BnGrads ref = Reference.bnBackward(g, x, dy, gamma, mean, invStd);
        int samples = g.length() > 10000 ? 4 : 10;
        Gradcheck.check("batchNorm (x)", describe(g), xx -> Reference.bnTrainingForward(g, xx, gamma, beta, BN_EPS),
                x, dy, ref.dx(), in.subset(x.length, samples));
        if (affine) {
            Gradcheck.check("batchNorm (gamma)", describe(g), gg -> Reference.bnTrainingForward(g, x, gg, beta, BN_EPS),
                    gamma, dy, ref.dGamma().v(), in.subset(gamma.length, samples));
            Gradcheck.check("batchNorm (beta)", describe(g), bb -> Reference.bnTrainingForward(g, x, gamma, bb, BN_EPS),
                    beta, dy, ref.dBeta().v(), in.subset(beta.length, samples));
        }
    }

    static Stream<Arguments> runningStatsCases() {
        return Arrays.stream(BNS).flatMap(g -> Stream.of(
                Arguments.of(named(describe(g) + " momentum 0.1", g), 0.1),
                Arguments.of(named(describe(g) + " factor 1/3 (cumulative)", g), 1.0 / 3)));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("runningStatsCases")
    @DisplayName("batchNormUpdateRunningStats")
    void batchNormUpdateRunningStats(BatchNormGeometry g, double factor) {
        Inputs in = new Inputs(1900 + g.hashCode() + Double.hashCode(factor));
        float[] saveMean = in.uniform(g.channels(), -1, 1);
        float[] saveInvStd = in.uniform(g.channels(), 0.5, 3);
        float[] rm = in.uniform(g.channels(), -1, 1);
        float[] rv = in.uniform(g.channels(), 0.2, 2);
        double[][] ref = Reference.bnRunningStats(g, widen(saveMean), widen(saveInvStd), BN_EPS, factor, widen(rm), widen(rv));
        try (Scope s = scope()) {
            Buffer rmb = s.up(rm);
            Buffer rvb = s.up(rv);
            b.batchNormUpdateRunningStats(g, s.in(saveMean), s.in(saveInvStd), BN_EPS, factor, rmb, rvb, null, null);
            // a few float32 element-wise ops: RTOL times the magnitude of each term of the blend
            double[] tolM = new double[g.channels()];
            double[] tolV = new double[g.channels()];
            long m = g.valuesPerChannel();
            for (int c = 0; c < g.channels(); c++) {
                tolM[c] = ATOL + RTOL * ((1 - factor) * Math.abs(rm[c]) + factor * Math.abs(saveMean[c]));
                tolV[c] = ATOL + RTOL * ((1 - factor) * rv[c] + factor / ((double) saveInvStd[c] * saveInvStd[c]) * m / (m - 1));
            }
            String op = "batchNormUpdateRunningStats " + describe(g) + " factor=" + factor;
            assertClose(op + " runningMean", new int[] {g.channels()}, s.down(rmb), ref[0], tolM);
            assertClose(op + " runningVar", new int[] {g.channels()}, s.down(rvb), ref[1], tolV);
            s.assertInputsUnchanged(op);
        }
    }

    @ParameterizedTest(name = "guard {0}")
    @ValueSource(floats = {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY})
    @DisplayName("batchNormUpdateRunningStats: a non-finite guard leaves the running statistics bitwise unchanged and counts one skip; a finite one updates exactly as no guard")
    void batchNormUpdateRunningStatsGuard(float bad) {
        BatchNormGeometry g = new BatchNormGeometry(4, 70, 3);
        Inputs in = new Inputs(1990);
        float[] saveMean = in.uniform(g.channels(), -1, 1);
        float[] saveInvStd = in.uniform(g.channels(), 0.5, 3);
        float[] rm = in.uniform(g.channels(), -1, 1);
        float[] rv = in.uniform(g.channels(), 0.2, 2);
        try (Scope s = scope()) {
            Buffer rmb = s.up(rm);
            Buffer rvb = s.up(rv);
            Buffer guard = s.up(new float[] {bad});
            Buffer skipped = s.up(new float[] {4f});
            b.batchNormUpdateRunningStats(g, s.in(saveMean), s.in(saveInvStd), BN_EPS, 0.1, rmb, rvb, guard, skipped);
            b.batchNormUpdateRunningStats(g, s.in(saveMean), s.in(saveInvStd), BN_EPS, 0.1, rmb, rvb, guard, null);
            assertArrayEquals(rm, s.down(rmb), "runningMean after a skipped update");
            assertArrayEquals(rv, s.down(rvb), "runningVar after a skipped update");
            assertEquals(5f, s.down(skipped)[0], "one skip counted once");
            Buffer rmFree = s.up(rm);
            Buffer rvFree = s.up(rv);
            b.fill(guard, 0, 1, -3.5f);
            b.batchNormUpdateRunningStats(g, s.in(saveMean), s.in(saveInvStd), BN_EPS, 0.1, rmb, rvb, guard, skipped);
            b.batchNormUpdateRunningStats(g, s.in(saveMean), s.in(saveInvStd), BN_EPS, 0.1, rmFree, rvFree, null, null);
            assertFalse(Arrays.equals(rm, s.down(rmb)), "a finite guard lets the update through");
            assertArrayEquals(s.down(rmFree), s.down(rmb), "guarded = unguarded runningMean");
            assertArrayEquals(s.down(rvFree), s.down(rvb), "guarded = unguarded runningVar");
            assertEquals(5f, s.down(skipped)[0]);
        }
    }

    @Test
    @DisplayName("batch norm running stats: training forward + update over 4 batches with factor 1/k give the plain average of the batch means and unbiased variances")
    void batchNormCumulativeRunningStats() {
        BatchNormGeometry g = new BatchNormGeometry(4, 3, 5);
        long m = g.valuesPerChannel();
        Inputs in = new Inputs(1950);
        double[] avgMean = new double[g.channels()];
        double[] avgVar = new double[g.channels()];
        int batches = 4;
        try (Scope s = scope()) {
            Buffer rm = s.zeros(g.channels());
            Buffer rv = s.up(Inputs.filled(g.channels(), 1f));
            for (int k = 1; k <= batches; k++) {
                float[] x = bnInput(in, g);
                double[] xd = widen(x);
                // the unbiased variance written plainly: sum (x - mean)^2 / (m - 1)
                for (int c = 0; c < g.channels(); c++) {
                    double sum = 0;
                    for (int n = 0; n < g.n(); n++) {
                        for (int p = 0; p < g.spatial(); p++) {
                            sum += xd[(n * g.channels() + c) * g.spatial() + p];
                        }
                    }
                    double mu = sum / m;
                    double ss = 0;
                    for (int n = 0; n < g.n(); n++) {
                        for (int p = 0; p < g.spatial(); p++) {
                            double d = xd[(n * g.channels() + c) * g.spatial() + p] - mu;
                            ss += d * d;
                        }
                    }
                    avgMean[c] += mu / batches;
                    avgVar[c] += ss / (m - 1) / batches;
                }
                Buffer sm = s.out(g.channels());
                Buffer si = s.out(g.channels());
                b.batchNormForwardTraining(g, s.in(x), null, null, BN_EPS, s.out(g.length()), sm, si);
                b.batchNormUpdateRunningStats(g, sm, si, BN_EPS, 1.0 / k, rm, rv, null, null);
            }
            // 4 chained float32 updates of O(1) values; eps is subtracted back exactly in the reference, and
            // float32 1/invStd^2 - eps loses ~eps*1e-7 absolutely: tolerance 1e-5 relative plus 1e-6
            String op = "batch norm running stats over " + batches + " batches with factor 1/k " + describe(g);
            assertClose(op + " runningMean", new int[] {g.channels()}, s.down(rm), avgMean, 1e-6, 1e-5);
            assertClose(op + " runningVar (unbiased, m/(m-1))", new int[] {g.channels()}, s.down(rv), avgVar, 1e-6, 1e-5);
        }
    }

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

    // ==================================================================================================== activations

    static Stream<Arguments> activationCases() {
        List<Arguments> l = new ArrayList<>();
        for (Activation a : Activation.values()) {
            for (int n : new int[] {1, 7, 1000, 64 * 120}) {
                l.add(Arguments.of(named(a + " n=" + n, a), n));
            }
        }
        return l.stream();
    }

    static float[] activationInput(Activation a, Inputs in, int n) {
        if (a == Activation.RELU) {
            // distinct values, none within 1/(n+1) of 0 except by the grid: keep them off the kink at 0
            float[] x = in.distinct(n);
            for (int i = 0; i < n; i++) {
                x[i] = 6 * x[i];
                if (Math.abs(x[i]) < 1e-3f) {
                    x[i] = x[i] < 0 ? -0.01f : 0.01f;
                }
            }
            return x;
        }
        return in.uniform(n, -6, 6);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("activationCases")
    @DisplayName("activationForward and activationBackward")
    void activation(Activation a, int n) {
        Inputs in = new Inputs(2300 + a.ordinal() * 97 + n);
        float[] x = activationInput(a, in, n);
        float[] dy = in.uniform(n, -1, 1);
        double[] y = Reference.activationForward(a, widen(x));
        double[] dx = Reference.activationBackward(a, widen(x), widen(dy));
        try (Scope s = scope()) {
            Buffer yb = s.out(n);
            Buffer xb = s.in(x);
            b.activationForward(a, xb, yb, n);
            // element-wise: |got - ref| <= 1e-7 + 1e-5 |ref|
            assertClose("activationForward " + a, new int[] {n}, s.down(yb), y, ATOL, RTOL);
            Buffer dxb = s.out(n);
            b.activationBackward(a, xb, s.in(narrow(y)), s.in(dy), dxb, n);
            // dx = dy f'(x): f' from y as y(1-y) or 1-y^2 cancels when |y| -> 1, so the absolute error is
            // RTOL |dy| (the magnitude before cancellation) on top of the relative one
            double[] tol = new double[n];
            for (int i = 0; i < n; i++) {
                tol[i] = ATOL + RTOL * (Math.abs(dx[i]) + Math.abs(dy[i]) * (a == Activation.RELU ? 0 : 1));
            }
            assertClose("activationBackward " + a, new int[] {n}, s.down(dxb), dx, tol);
            s.assertInputsUnchanged("activation " + a);
        }
        Gradcheck.check("activation " + a, "n=" + n, xx -> Reference.activationForward(a, xx), widen(x), widen(dy), dx,
                in.subset(n, 16));
    }

    static Stream<Arguments> biasActivationCases() {
        List<Arguments> l = new ArrayList<>();
        int[][] shapes = {{5, 7, 1}, {3, 4, 9}, {2, 16, 100}, {0, 3, 2}};
        for (Activation a : Activation.values()) {
            for (int[] sh : shapes) {
                l.add(Arguments.of(a, sh[0], sh[1], sh[2]));
            }
        }
        return l.stream();
    }

    @ParameterizedTest(name = "{0} outer={1} channels={2} inner={3}")
    @MethodSource("biasActivationCases")
    @DisplayName("biasActivation: a(x + bias[channel]) over (outer, channels, inner), also in place")
    void biasActivation(Activation a, int outer, int channels, int inner) {
        int n = outer * channels * inner;
        Inputs in = new Inputs(2350 + a.ordinal() * 31 + n + channels);
        float[] x = in.uniform(n, -4, 4);
        float[] bias = in.uniform(channels, -2, 2);
        double[] z = new double[n];
        for (int i = 0; i < n; i++) {
            z[i] = (double) x[i] + bias[(i / inner) % channels];
        }
        double[] y = Reference.activationForward(a, z);
        // x + bias rounds once (u |z|), carried through a slope of at most 1, plus the activation's relative error
        double[] tol = new double[n];
        for (int i = 0; i < n; i++) {
            tol[i] = ATOL + RTOL * (Math.abs(y[i]) + Math.abs(z[i]));
        }
        String op = "biasActivation " + a + " (" + outer + ", " + channels + ", " + inner + ")";
        try (Scope s = scope()) {
            Buffer yb = s.out(Math.max(n, 1));
            b.biasActivation(a, outer, channels, inner, s.in(x), s.in(bias), yb);
            assertClose(op, new int[] {n}, Arrays.copyOf(s.down(yb), n), y, tol);
            s.assertInputsUnchanged(op);
            Buffer inPlace = s.up(x);
            b.biasActivation(a, outer, channels, inner, inPlace, s.in(bias), inPlace);
            assertClose(op + " in place", new int[] {n}, s.down(inPlace), y, tol);
        }
    }

    // ==================================================================================================== softmax

    static Stream<Arguments> softmaxCases() {
        int[][] shapes = {{1, 1}, {3, 7}, {64, 10}, {2, 1000}, {5, 3}};
        return Arrays.stream(shapes).map(sh -> Arguments.of(named("(rows,cols)=" + shape(sh), sh)));
    }

    /** Logits in (-4, 4); row 0 is shifted by +80 and row 1 (when there is one) by -80: overflow without max-subtraction. */
    static float[] logits(Inputs in, int rows, int cols) {
        float[] x = in.uniform(rows * cols, -4, 4);
        for (int c = 0; c < cols; c++) {
            x[c] += 80f;
            if (rows > 1) {
                x[cols + c] -= 80f;
            }
        }
        return x;
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("softmaxCases")
    @DisplayName("softmaxForward and softmaxBackward (large logits)")
    void softmax(int[] sh) {
        int rows = sh[0];
        int cols = sh[1];
        Inputs in = new Inputs(2400 + Arrays.hashCode(sh));
        float[] x = logits(in, rows, cols);
        float[] dy = in.uniform(rows * cols, -1, 1);
        Reference.Sum y = Reference.softmaxForward(rows, cols, widen(x));
        float[] yf = narrow(y.v());
        Reference.Sum dx = Reference.softmaxBackward(rows, cols, widen(yf), widen(dy));
        try (Scope s = scope()) {
            Buffer yb = s.out((long) rows * cols);
            b.softmaxForward(rows, cols, s.in(x), yb);
            // y = e_i / sum_j e_j: relative error of exp (RTOL; the logits' float32 rounding after subtracting the
            // max adds |x| ulp ~ 5e-6 at |x| = 84) and of a sum of cols terms
            double[] tol = new double[y.v().length];
            for (int i = 0; i < tol.length; i++) {
                tol[i] = ATOL + (RTOL + SUM_COEFF * Math.sqrt(cols)) * y.v()[i];
            }
            assertClose("softmaxForward", sh, s.down(yb), y.v(), tol);
            Buffer dxb = s.out((long) rows * cols);
            b.softmaxBackward(rows, cols, s.in(yf), s.in(dy), dxb);
            // dx = y (dy - sum(dy y)): a sum of cols terms then one cancellation
            assertClose("softmaxBackward", sh, s.down(dxb), dx.v(), Tolerance.sums(dx.v(), dx.abs(), cols));
            s.assertInputsUnchanged("softmax");
        }
        Gradcheck.check("softmax", shape(sh), xx -> Reference.softmaxForward(rows, cols, xx).v(), widen(x), widen(dy),
                Reference.softmaxBackward(rows, cols, y.v(), widen(dy)).v(), in.subset(x.length, 16));
    }

    static Stream<Arguments> sceCases() {
        int[][] shapes = {{1, 1}, {4, 3}, {64, 10}, {5, 17}, {2, 1000}};
        float[] dLoss = {1f, 0.37f, -2f};
        List<Arguments> l = new ArrayList<>();
        for (int[] sh : shapes) {
            for (float d : dLoss) {
                l.add(Arguments.of(named("(rows,classes)=" + shape(sh) + " dLoss=" + d, sh), d));
            }
        }
        return l.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("sceCases")
    @DisplayName("softmaxCrossEntropyForward (loss, probs) and softmaxCrossEntropyBackward")
    void softmaxCrossEntropy(int[] sh, float dLoss) {
        int rows = sh[0];
        int classes = sh[1];
        Inputs in = new Inputs(2500 + Arrays.hashCode(sh) + Float.floatToIntBits(dLoss));
        float[] x = logits(in, rows, classes);
        float[] t = in.classes(rows, classes);
        double loss = Reference.crossEntropyLoss(rows, classes, widen(x), widen(t));
        double[] rowLoss = Reference.crossEntropyRows(rows, classes, widen(x), widen(t));
        Reference.Sum probs = Reference.softmaxForward(rows, classes, widen(x));
        float[] pf = narrow(probs.v());
        double[] dLogits = Reference.crossEntropyBackward(rows, classes, widen(pf), widen(t), dLoss);
        try (Scope s = scope()) {
            Buffer pb = s.out((long) rows * classes);
            Buffer lb = s.out(1);
            b.softmaxCrossEntropyForward(rows, classes, s.in(x), s.in(t), pb, lb);
            String op = "softmaxCrossEntropyForward (rows,classes)=" + shape(sh);
            // loss: each row's log-sum-exp - x_t is computed from logits up to |84|, whose float32 ulp-level
            // rounding (RTOL |x|) dominates; then a mean of rows terms
            double rowsAbs = 0;
            for (int r = 0; r < rows; r++) {
                double maxAbs = 0;
                for (int c = 0; c < classes; c++) {
                    maxAbs = Math.max(maxAbs, Math.abs(x[r * classes + c]));
                }
                rowsAbs += Math.abs(rowLoss[r]) + maxAbs;
            }
            double lossTol = ATOL + RTOL * rowsAbs / rows * (1 + SUM_COEFF * Math.sqrt(rows) / RTOL);
            assertClose(op + " loss", new int[] {1}, s.down(lb), new double[] {loss}, new double[] {lossTol});
            double[] ptol = new double[pf.length];
            for (int i = 0; i < ptol.length; i++) {
                ptol[i] = ATOL + (RTOL + SUM_COEFF * Math.sqrt(classes)) * probs.v()[i];
            }
            assertClose(op + " probs", sh, s.down(pb), probs.v(), ptol);
            Buffer db = s.out((long) rows * classes);
            b.softmaxCrossEntropyBackward(rows, classes, s.in(pf), s.in(t), s.in(new float[] {dLoss}), db);
            // element-wise: (p - onehot) * dLoss / rows; p - 1 cancels, so the error is relative to |p| + 1
            double[] dtol = new double[pf.length];
            for (int i = 0; i < dtol.length; i++) {
                dtol[i] = ATOL + RTOL * (Math.abs(pf[i]) + 1) * Math.abs(dLoss) / rows;
            }
            assertClose("softmaxCrossEntropyBackward (rows,classes)=" + shape(sh) + " dLoss=" + dLoss, sh, s.down(db), dLogits, dtol);
            s.assertInputsUnchanged("softmaxCrossEntropy");
        }
        // the reference backward is the gradient of dLoss * loss(logits)
        Gradcheck.check("softmaxCrossEntropy", shape(sh),
                xx -> new double[] {Reference.crossEntropyLoss(rows, classes, xx, widen(t))}, widen(x),
                new double[] {dLoss}, Reference.crossEntropyBackward(rows, classes, probs.v(), widen(t), dLoss),
                in.subset(x.length, 16));
    }

    @ParameterizedTest(name = "target {0}")
    @DisplayName("softmaxCrossEntropyForward rejects a target outside [0, classes)")
    @org.junit.jupiter.params.provider.ValueSource(floats = {-1f, 3f, 100f})
    void softmaxCrossEntropyInvalidTarget(float bad) {
        int rows = 4;
        int classes = 3;
        float[] x = new Inputs(2600).uniform(rows * classes, -1, 1);
        float[] t = {0f, 2f, bad, 1f};
        try (Scope s = scope()) {
            Buffer pb = s.out((long) rows * classes);
            Buffer lb = s.out(1);
            Buffer xb = s.in(x);
            Buffer tb = s.in(t);
            assertThrows(IllegalArgumentException.class, () -> {
                b.softmaxCrossEntropyForward(rows, classes, xb, tb, pb, lb);
                b.synchronize();
            }, "softmaxCrossEntropyForward with target " + bad + " for " + classes + " classes");
        }
    }

    @Test
    @DisplayName("allocateUninitialized: the length asked for, usable as an op's output and for copies")
    void allocateUninitialized() {
        try (Scope s = scope()) {
            Buffer src = s.up(new float[] {1f, -2f, 3f, 4.5f, 5f});
            Buffer empty = b.allocateUninitialized(5);
            Buffer none = b.allocateUninitialized(0);
            try {
                assertEquals(5, empty.length());
                assertEquals(0, none.length());
                b.unary(UnaryOp.NEG, src, empty, 5);
                assertArrayEquals(new float[] {-1f, 2f, -3f, -4.5f, -5f}, s.down(empty));
            } finally {
                empty.close();
                none.close();
            }
        }
    }

    // ==================================================================================================== optimizers

    static Stream<Arguments> sgdCases() {
        return Stream.of(
                Arguments.of(named("plain (lr 0.1)", new SgdHyper(0.1f, 0f, 0f, false, 0f, false))),
                Arguments.of(named("weight decay 0.01, no momentum", new SgdHyper(0.05f, 0f, 0f, false, 0.01f, false))),
                Arguments.of(named("momentum 0.9", new SgdHyper(0.1f, 0.9f, 0f, false, 0f, false))),
                Arguments.of(named("momentum 0.9 dampening 0.5", new SgdHyper(0.1f, 0.9f, 0.5f, false, 0f, false))),
                Arguments.of(named("nesterov momentum 0.9, weight decay 5e-4", new SgdHyper(0.1f, 0.9f, 0f, true, 5e-4f, false))),
                Arguments.of(named("momentum 0.5 dampening 0.1 weight decay 0.01", new SgdHyper(0.2f, 0.5f, 0.1f, false, 0.01f, false))));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("sgdCases")
    @DisplayName("sgdStep: 5 consecutive steps vs PyTorch's rule in float64")
    void sgdStep(SgdHyper base) {
        int n = 101;
        int steps = 5;
        Inputs in = new Inputs(2700 + base.hashCode());
        float[] p0 = in.uniform(n, -1, 1);
        double[] p = widen(p0);
        double[] buf = new double[n];
        boolean momentum = base.momentum() != 0;
        try (Scope s = scope()) {
            Buffer pb = s.up(p0);
            // the buffer is garbage before the first step: firstStep must overwrite it
            Buffer mb = momentum ? s.up(Inputs.filled(n, Float.NaN)) : null;
            double updates = 0;
            for (int step = 1; step <= steps; step++) {
                float[] g = in.uniform(n, -1, 1);
                SgdHyper h = new SgdHyper(base.lr(), base.momentum(), base.dampening(), base.nesterov(),
                        base.weightDecay(), step == 1);
                Buffer gb = s.in(g);
                b.sgdStep(h, pb, gb, mb, n);
                Reference.sgd(h.lr(), h.momentum(), h.dampening(), h.nesterov(), h.weightDecay(), step == 1, p, widen(g), buf);
                // each step rounds p (and the buffer) to float32 once or a few times; the chains drift apart by
                // about u per step: tolerance 1e-5 * step * (|p| + accumulated |update|), still far below the
                // ~lr*|g| ~ 1e-2 effect of any rule difference (dampening, nesterov, weight decay, first step)
                updates += base.lr() * (1 + 1 / (1 - base.momentum()));
                double[] tol = new double[n];
                double[] btol = new double[n];
                for (int i = 0; i < n; i++) {
                    tol[i] = ATOL + RTOL * step * (Math.abs(p[i]) + updates);
                    btol[i] = ATOL + RTOL * step * (Math.abs(buf[i]) + 1 / (1 - base.momentum()));
                }
                String op = "sgdStep " + h + " step " + step;
                assertClose(op + " param", new int[] {n}, s.down(pb), p, tol);
                if (momentum) {
                    assertClose(op + " momentumBuffer", new int[] {n}, s.down(mb), buf, btol);
                }
                s.assertInputsUnchanged(op + " (grad)");
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("sgdCases")
    @DisplayName("sgdStepMany: 40 parameters (two launches on CUDA) with the rate on the device match sgdStep bit for bit")
    void sgdStepManyMatchesSgdStep(SgdHyper base) {
        int count = 40;
        Inputs in = new Inputs(2800 + base.hashCode());
        long[] lengths = new long[count];
        for (int i = 0; i < count; i++) {
            // one parameter longer than a 65535-block grid of 256 threads covers in one pass is too slow for CI; a
            // 70001-float one still makes every launch stride and mixes lengths that end mid-block
            lengths[i] = i == 7 ? 70_001 : 1 + (i * 97) % 700;
        }
        boolean momentum = base.momentum() != 0;
        try (Scope s = scope()) {
            Buffer[] each = new Buffer[count];
            Buffer[] many = new Buffer[count];
            Buffer[] eachBuf = momentum ? new Buffer[count] : null;
            Buffer[] manyBuf = momentum ? new Buffer[count] : null;
            for (int i = 0; i < count; i++) {
                float[] p0 = in.uniform((int) lengths[i], -1, 1);
                each[i] = s.up(p0);
                many[i] = s.up(p0);
                if (momentum) {
                    eachBuf[i] = s.up(Inputs.filled((int) lengths[i], Float.NaN));
                    manyBuf[i] = s.up(Inputs.filled((int) lengths[i], Float.NaN));
                }
            }
            Buffer lr = s.up(new float[] {base.lr()});
            Buffer guard = s.up(new float[] {1.5f});
            Buffer skipped = s.up(new float[] {0f});
            for (int step = 1; step <= 3; step++) {
                boolean first = step == 1;
                SgdHyper h = new SgdHyper(base.lr(), base.momentum(), base.dampening(), base.nesterov(), base.weightDecay(), first);
                // a host rate that is ignored: the device one must win
                SgdHyper hostRateIgnored = new SgdHyper(1000f, base.momentum(), base.dampening(), base.nesterov(),
                        base.weightDecay(), first);
                Buffer[] grads = new Buffer[count];
                for (int i = 0; i < count; i++) {
                    grads[i] = s.in(in.uniform((int) lengths[i], -1, 1));
                    b.sgdStep(h, each[i], grads[i], momentum ? eachBuf[i] : null, lengths[i]);
                }
                b.sgdStepMany(hostRateIgnored, lr, guard, skipped, many, grads, manyBuf, lengths);
                for (int i = 0; i < count; i++) {
                    String op = "sgdStepMany " + h + " step " + step + " param " + i;
                    assertArrayEquals(s.down(each[i]), s.down(many[i]), op);
                    if (momentum) {
                        assertArrayEquals(s.down(eachBuf[i]), s.down(manyBuf[i]), op + " momentum buffer");
                    }
                }
                s.assertInputsUnchanged("sgdStepMany step " + step + " (grads)");
            }
            assertEquals(0f, s.down(skipped)[0], "a finite guard skips nothing");
        }
    }

    @ParameterizedTest(name = "guard {0}")
    @ValueSource(floats = {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY})
    @DisplayName("sgdStepMany: a non-finite guard leaves every parameter and buffer as it was and counts one skip")
    void sgdStepManySkipsOnNonFiniteGuard(float bad) {
        int count = 35;
        Inputs in = new Inputs(2900);
        SgdHyper h = new SgdHyper(0.1f, 0.9f, 0f, false, 0.01f, false);
        try (Scope s = scope()) {
            Buffer[] params = new Buffer[count];
            Buffer[] grads = new Buffer[count];
            Buffer[] bufs = new Buffer[count];
            float[][] before = new float[count][];
            float[][] bufBefore = new float[count][];
            long[] lengths = new long[count];
            for (int i = 0; i < count; i++) {
                lengths[i] = 3 + i;
                before[i] = in.uniform(3 + i, -1, 1);
                bufBefore[i] = in.uniform(3 + i, -1, 1);
                params[i] = s.up(before[i]);
                bufs[i] = s.up(bufBefore[i]);
                grads[i] = s.up(in.uniform(3 + i, -1, 1));
            }
            Buffer guard = s.up(new float[] {bad});
            Buffer skipped = s.up(new float[] {2f});
            b.sgdStepMany(h, null, guard, skipped, params, grads, bufs, lengths);
            b.sgdStepMany(h, null, guard, null, params, grads, bufs, lengths);
            for (int i = 0; i < count; i++) {
                assertArrayEquals(before[i], s.down(params[i]), "param " + i + " after a skipped step");
                assertArrayEquals(bufBefore[i], s.down(bufs[i]), "momentum buffer " + i + " after a skipped step");
            }
            assertEquals(3f, s.down(skipped)[0], "one skip counted once, whatever the number of launches");
            b.fill(guard, 0, 1, 0.25f);
            b.sgdStepMany(h, null, guard, skipped, params, grads, bufs, lengths);
            assertFalse(Arrays.equals(before[0], s.down(params[0])), "a finite guard lets the step through");
            assertEquals(3f, s.down(skipped)[0]);
        }
    }

    static Stream<Arguments> adamCases() {
        return Stream.of(
                Arguments.of(named("Adam defaults (lr 1e-3, betas .9/.999, eps 1e-8)", new AdamHyper(1e-3f, 0.9f, 0.999f, 1e-8f, 0f, false, 0))),
                Arguments.of(named("Adam weight decay 0.01 (L2)", new AdamHyper(1e-2f, 0.9f, 0.999f, 1e-8f, 0.01f, false, 0))),
                Arguments.of(named("AdamW weight decay 0.01 (decoupled)", new AdamHyper(1e-2f, 0.9f, 0.999f, 1e-8f, 0.01f, true, 0))),
                Arguments.of(named("AdamW lr 0.1 betas .5/.9 eps 1e-3 weight decay 0.1", new AdamHyper(0.1f, 0.5f, 0.9f, 1e-3f, 0.1f, true, 0))),
                Arguments.of(named("Adam lr 0.1 betas .5/.9 eps 1e-3 weight decay 0.1", new AdamHyper(0.1f, 0.5f, 0.9f, 1e-3f, 0.1f, false, 0))));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("adamCases")
    @DisplayName("adamStep: 5 consecutive steps with bias correction vs PyTorch's rule in float64")
    void adamStep(AdamHyper base) {
        int n = 101;
        int steps = 5;
        Inputs in = new Inputs(2800 + base.hashCode());
        float[] p0 = in.uniform(n, -1, 1);
        double[] p = widen(p0);
        double[] m = new double[n];
        double[] v = new double[n];
        try (Scope s = scope()) {
            Buffer pb = s.up(p0);
            Buffer mb = s.zeros(n);
            Buffer vb = s.zeros(n);
            for (int step = 1; step <= steps; step++) {
                float[] g = in.uniform(n, -1, 1);
                AdamHyper h = new AdamHyper(base.lr(), base.beta1(), base.beta2(), base.eps(), base.weightDecay(),
                        base.decoupledWeightDecay(), step);
                Buffer gb = s.in(g);
                b.adamStep(h, pb, gb, mb, vb, n);
                Reference.adam(h.lr(), h.beta1(), h.beta2(), h.eps(), h.weightDecay(), h.decoupledWeightDecay(), step,
                        p, widen(g), m, v);
                // float32 state drifts from the float64 chain by ~u per step and the update m/(sqrt(v)+eps) is
                // O(1) times lr: tolerance 1e-5 * step * (|p| + lr) for p, 1e-5 * step * |state| for m and v;
                // missing bias correction changes step 1 by a factor ~3 (beta2 .999: by 30), far outside
                String op = "adamStep " + h;
                double[] tp = new double[n];
                double[] tm = new double[n];
                double[] tv = new double[n];
                for (int i = 0; i < n; i++) {
                    tp[i] = ATOL + RTOL * step * (Math.abs(p[i]) + base.lr());
                    tm[i] = ATOL + RTOL * step * (Math.abs(m[i]) + 0.1);
                    tv[i] = 1e-10 + RTOL * step * Math.abs(v[i]);
                }
                assertClose(op + " param", new int[] {n}, s.down(pb), p, tp);
                assertClose(op + " expAvg", new int[] {n}, s.down(mb), m, tm);
                assertClose(op + " expAvgSq", new int[] {n}, s.down(vb), v, tv);
                s.assertInputsUnchanged(op + " (grad)");
            }
        }
    }

    // ==================================================================================================== validation

    /** An op called with one buffer too short; must throw IllegalArgumentException before touching memory. */
    record Misuse(String name, Consumer<Backend> call) {
        @Override
        public String toString() {
            return name;
        }
    }

    static Stream<Arguments> misuses() {
        ConvGeometry cg = conv(2, 3, 7, 5, 4, 3, 3, 1, 1, 1, 1, 1, 1);
        PoolGeometry pg = pool(2, 3, 7, 6, 3, 3, 2, 2, 1, 1);
        BatchNormGeometry bg = new BatchNormGeometry(2, 3, 5);
        return Stream.of(
                new Misuse("download past the end", be -> be.download(be.allocate(4), 2, new float[8], 0, 3)),
                new Misuse("write past the end", be -> be.write(new float[8], 0, be.allocate(4), 2, 3)),
                new Misuse("copy past the end of dst", be -> be.copy(be.allocate(8), 0, be.allocate(4), 2, 3)),
                new Misuse("fill past the end", be -> be.fill(be.allocate(4), 2, 3, 1f)),
                new Misuse("gatherRows dst too short", be -> be.gatherRows(be.allocate(12), 3, new int[] {0, 1, 2}, be.allocate(8))),
                new Misuse("gatherRows row index out of range", be -> be.gatherRows(be.allocate(12), 3, new int[] {0, 4}, be.allocate(6))),
                new Misuse("unary n > length", be -> be.unary(UnaryOp.NEG, be.allocate(4), be.allocate(4), 5)),
                new Misuse("scalar y too short", be -> be.scalar(ScalarOp.ADD, be.allocate(5), 1f, be.allocate(4), 5)),
                new Misuse("binary out too short", be -> be.binary(BinaryOp.ADD, be.allocate(6), new int[] {2, 3},
                        be.allocate(3), new int[] {1, 3}, be.allocate(5), new int[] {2, 3})),
                new Misuse("axpy x too short", be -> be.axpy(1f, be.allocate(3), be.allocate(5), 5)),
                new Misuse("sumTo x too short", be -> be.sumTo(be.allocate(5), new int[] {2, 3}, be.allocate(3), new int[] {1, 3})),
                new Misuse("broadcastTo out too short", be -> be.broadcastTo(be.allocate(3), new int[] {1, 3}, be.allocate(5), new int[] {2, 3})),
                new Misuse("argmax out too short", be -> be.argmax(be.allocate(12), 2, 3, 2, be.allocate(3))),
                new Misuse("gemm C too short", be -> be.gemm(false, false, 3, 4, 5, 1f, be.allocate(15), be.allocate(20), 0f, be.allocate(11))),
                new Misuse("gemm A too short", be -> be.gemm(true, false, 3, 4, 5, 1f, be.allocate(14), be.allocate(20), 0f, be.allocate(12))),
                new Misuse("conv2dForward y too short", be -> be.conv2dForward(cg, be.allocate(cg.inputLength()),
                        be.allocate(cg.weightLength()), null, be.allocate(cg.outputLength() - 1))),
                new Misuse("conv2dForward bias too short", be -> be.conv2dForward(cg, be.allocate(cg.inputLength()),
                        be.allocate(cg.weightLength()), be.allocate(cg.outChannels() - 1), be.allocate(cg.outputLength()))),
                new Misuse("conv2dBackwardData dx too short", be -> be.conv2dBackwardData(cg, be.allocate(cg.weightLength()),
                        be.allocate(cg.outputLength()), be.allocate(cg.inputLength() - 1))),
                new Misuse("conv2dBackwardWeight x too short", be -> be.conv2dBackwardWeight(cg, be.allocate(cg.inputLength() - 1),
                        be.allocate(cg.outputLength()), be.allocate(cg.weightLength()))),
                new Misuse("conv2dBackwardBias db too short", be -> be.conv2dBackwardBias(cg, be.allocate(cg.outputLength()),
                        be.allocate(cg.outChannels() - 1))),
                new Misuse("batchNormForwardTraining saveMean too short", be -> be.batchNormForwardTraining(bg,
                        be.allocate(bg.length()), null, null, 1e-5f, be.allocate(bg.length()), be.allocate(2), be.allocate(3))),
                new Misuse("batchNormForwardInference var too short", be -> be.batchNormForwardInference(bg,
                        be.allocate(bg.length()), null, null, be.allocate(3), be.allocate(2), 1e-5f, be.allocate(bg.length()))),
                new Misuse("batchNormBackward dx too short", be -> be.batchNormBackward(bg, be.allocate(bg.length()),
                        be.allocate(bg.length()), null, be.allocate(3), be.allocate(3), be.allocate(bg.length() - 1), null, null)),
                new Misuse("batchNormUpdateRunningStats runningVar too short", be -> be.batchNormUpdateRunningStats(bg,
                        be.allocate(3), be.allocate(3), 1e-5f, 0.1, be.allocate(3), be.allocate(2), null, null)),
                new Misuse("batchNormUpdateRunningStats guard of length 0", be -> be.batchNormUpdateRunningStats(bg,
                        be.allocate(3), be.allocate(3), 1e-5f, 0.1, be.allocate(3), be.allocate(3), be.allocate(0), null)),
                new Misuse("avgPool2dForward y too short", be -> be.avgPool2dForward(pg, be.allocate(pg.inputLength()), be.allocate(pg.outputLength() - 1))),
                new Misuse("avgPool2dBackward dx too short", be -> be.avgPool2dBackward(pg, be.allocate(pg.outputLength()), be.allocate(pg.inputLength() - 1))),
                new Misuse("maxPool2dForward x too short", be -> be.maxPool2dForward(pg, be.allocate(pg.inputLength() - 1), be.allocate(pg.outputLength()))),
                new Misuse("maxPool2dBackward dy too short", be -> be.maxPool2dBackward(pg, be.allocate(pg.inputLength()),
                        be.allocate(pg.outputLength()), be.allocate(pg.outputLength() - 1), be.allocate(pg.inputLength()))),
                new Misuse("activationForward y too short", be -> be.activationForward(Activation.RELU, be.allocate(5), be.allocate(4), 5)),
                new Misuse("activationBackward dy too short", be -> be.activationBackward(Activation.TANH, be.allocate(5),
                        be.allocate(5), be.allocate(4), be.allocate(5), 5)),
                new Misuse("softmaxForward y too short", be -> be.softmaxForward(2, 3, be.allocate(6), be.allocate(5))),
                new Misuse("softmaxBackward dx too short", be -> be.softmaxBackward(2, 3, be.allocate(6), be.allocate(6), be.allocate(5))),
                new Misuse("softmaxCrossEntropyForward targets too short", be -> be.softmaxCrossEntropyForward(2, 3,
                        be.allocate(6), be.allocate(1), be.allocate(6), be.allocate(1))),
                new Misuse("softmaxCrossEntropyBackward dLogits too short", be -> be.softmaxCrossEntropyBackward(2, 3,
                        be.allocate(6), be.allocate(2), be.allocate(1), be.allocate(5))),
                new Misuse("sgdStep param too short", be -> be.sgdStep(new SgdHyper(0.1f, 0.9f, 0f, false, 0f, true),
                        be.allocate(4), be.allocate(5), be.allocate(5), 5)),
                new Misuse("sgdStep momentum buffer missing with momentum", be -> be.sgdStep(new SgdHyper(0.1f, 0.9f, 0f, false, 0f, true),
                        be.allocate(5), be.allocate(5), null, 5)),
                new Misuse("sgdStepMany lengths and params differ", be -> be.sgdStepMany(new SgdHyper(0.1f, 0f, 0f, false, 0f, false),
                        null, null, null, new Buffer[] {be.allocate(5), be.allocate(5)}, new Buffer[] {be.allocate(5), be.allocate(5)},
                        null, new long[] {5})),
                new Misuse("sgdStepMany one grad too short", be -> be.sgdStepMany(new SgdHyper(0.1f, 0f, 0f, false, 0f, false),
                        null, null, null, new Buffer[] {be.allocate(5), be.allocate(5)}, new Buffer[] {be.allocate(5), be.allocate(4)},
                        null, new long[] {5, 5})),
                new Misuse("sgdStepMany momentum buffers missing with momentum", be -> be.sgdStepMany(new SgdHyper(0.1f, 0.9f, 0f, false, 0f, true),
                        null, null, null, new Buffer[] {be.allocate(5)}, new Buffer[] {be.allocate(5)}, null, new long[] {5})),
                new Misuse("sgdStepMany the same parameter twice", be -> {
                    Buffer p = be.allocate(5);
                    be.sgdStepMany(new SgdHyper(0.1f, 0f, 0f, false, 0f, false), null, null, null, new Buffer[] {p, p},
                            new Buffer[] {be.allocate(5), be.allocate(5)}, null, new long[] {5, 5});
                }),
                new Misuse("sgdStepMany guard of length 0", be -> be.sgdStepMany(new SgdHyper(0.1f, 0f, 0f, false, 0f, false),
                        null, be.allocate(0), null, new Buffer[] {be.allocate(5)}, new Buffer[] {be.allocate(5)}, null, new long[] {5})),
                new Misuse("biasActivation bias too short", be -> be.biasActivation(Activation.SIGMOID, 2, 3, 4,
                        be.allocate(24), be.allocate(2), be.allocate(24))),
                new Misuse("biasActivation y too short", be -> be.biasActivation(Activation.RELU, 2, 3, 4,
                        be.allocate(24), be.allocate(3), be.allocate(23))),
                new Misuse("biasActivation zero channels", be -> be.biasActivation(Activation.TANH, 2, 0, 4,
                        be.allocate(24), be.allocate(3), be.allocate(24))),
                new Misuse("batchNormInferenceActivation var too short", be -> be.batchNormInferenceActivation(
                        new BatchNormGeometry(2, 3, 4), Activation.SIGMOID, be.allocate(24), null, null, be.allocate(3),
                        be.allocate(2), 1e-5f, be.allocate(24))),
                new Misuse("allocateUninitialized negative length", be -> be.allocateUninitialized(-1)),
                new Misuse("adamStep expAvgSq too short", be -> be.adamStep(new AdamHyper(1e-3f, 0.9f, 0.999f, 1e-8f, 0f, false, 1),
                        be.allocate(5), be.allocate(5), be.allocate(5), be.allocate(4), 5)))
                .map(m -> Arguments.of(named(m.name(), m)));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("misuses")
    @DisplayName("argument validation: IllegalArgumentException")
    void rejectsMisuse(Misuse misuse) {
        // the buffers the lambda allocates are tiny and left to the backend's close()
        assertThrows(IllegalArgumentException.class, () -> misuse.call().accept(b), misuse.name());
    }

    // ==================================================================================================== threads

    @Test
    @DisplayName("concurrent ops on independent buffers from 4 threads give the single-threaded results")
    void concurrentIndependentBuffers() throws Exception {
        int m = 33;
        int n = 29;
        int k = 41;
        Inputs in = new Inputs(2900);
        float[] a = in.uniform(m * k, -1, 1);
        float[] bm = in.uniform(k * n, -1, 1);
        Reference.Sum ref = Reference.gemm(false, false, m, n, k, 1, widen(a), widen(bm), 0, null);
        double[] refTanh = Reference.activationForward(Activation.TANH, ref.v());
        try (Scope s = scope()) {
            Buffer ab = s.in(a); // shared read-only inputs, as a model's parameters
            Buffer bb = s.in(bm);
            ExecutorService pool = Executors.newFixedThreadPool(4);
            try {
                List<Future<float[]>> futures = new ArrayList<>();
                for (int t = 0; t < 8; t++) {
                    futures.add(pool.submit(() -> {
                        try (Buffer c = b.allocate((long) m * n); Buffer y = b.allocate((long) m * n)) {
                            float[] out = new float[m * n];
                            for (int rep = 0; rep < 5; rep++) {
                                b.gemm(false, false, m, n, k, 1f, ab, bb, 0f, c);
                                b.activationForward(Activation.TANH, c, y, (long) m * n);
                            }
                            b.download(y, 0, out, 0, out.length);
                            return out;
                        }
                    }));
                }
                for (Future<float[]> f : futures) {
                    // tanh of a dot product of k terms: the gemm's sum tolerance carried through tanh' <= 1
                    assertClose("concurrent gemm + tanh", new int[] {m, n}, f.get(), refTanh,
                            Tolerance.sums(refTanh, ref.abs(), k));
                }
            } finally {
                pool.shutdown();
            }
            s.assertInputsUnchanged("concurrent gemm");
        }
    }
}
