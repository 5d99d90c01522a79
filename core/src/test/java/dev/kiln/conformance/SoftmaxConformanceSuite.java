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

/** Conformance of softmax and softmax cross-entropy, forward and backward, invalid targets; see {@link ConformanceSuite}. */
public class SoftmaxConformanceSuite extends ConformanceSuite {

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
}
