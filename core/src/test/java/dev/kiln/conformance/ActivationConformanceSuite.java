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

/** Conformance of activations (forward, backward, fused with a bias); see {@link ConformanceSuite}. */
public class ActivationConformanceSuite extends ConformanceSuite {

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

    /**
     * Distinct values in (-8, 8), each at least 0.01 from every integer: piecewise activations have their kinks at
     * integers (ReLU at 0), where the derivative is a convention and finite differences disagree with it.
     */
    static float[] activationInput(Activation a, Inputs in, int n) {
        float[] x = in.distinct(n);
        for (int i = 0; i < n; i++) {
            float v = 8 * x[i];
            float frac = v - (float) Math.floor(v);
            if (frac < 0.01f) {
                v += 0.01f - frac;
            } else if (frac > 0.99f) {
                v -= frac - 0.99f;
            }
            x[i] = v;
        }
        return x;
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
                tol[i] = ATOL + RTOL * (Math.abs(dx[i]) + Math.abs(dy[i]));
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

    static Stream<Arguments> addActivationCases() {
        List<Arguments> l = new ArrayList<>();
        for (Activation a : Activation.values()) {
            for (int n : new int[] {0, 1, 7, 1000, 3 * 8192 + 5}) {
                l.add(Arguments.of(a, n));
            }
        }
        return l.stream();
    }

    @ParameterizedTest(name = "{0} n={1}")
    @MethodSource("addActivationCases")
    @DisplayName("addActivation: a(x1 + x2), bitwise binary ADD then activationForward, also in place on either input")
    void addActivation(Activation a, int n) {
        Inputs in = new Inputs(2380 + a.ordinal() * 53 + n);
        float[] x1 = in.uniform(n, -4, 4);
        float[] x2 = in.uniform(n, -4, 4);
        double[] z = new double[n];
        for (int i = 0; i < n; i++) {
            z[i] = (double) x1[i] + x2[i];
        }
        double[] y = Reference.activationForward(a, z);
        // x1 + x2 rounds once (u |z|), carried through a slope of at most 1, plus the activation's relative error
        double[] tol = new double[n];
        for (int i = 0; i < n; i++) {
            tol[i] = ATOL + RTOL * (Math.abs(y[i]) + Math.abs(z[i]));
        }
        String op = "addActivation " + a + " n=" + n;
        int len = Math.max(n, 1);
        try (Scope s = scope()) {
            Buffer yb = s.out(len);
            b.addActivation(a, s.in(x1), s.in(x2), yb, n);
            float[] got = Arrays.copyOf(s.down(yb), n);
            assertClose(op, new int[] {n}, got, y, tol);
            s.assertInputsUnchanged(op);
            Buffer sum = s.out(len);
            Buffer unfused = s.out(len);
            b.binary(BinaryOp.ADD, s.in(x1), new int[] {n}, s.in(x2), new int[] {n}, sum, new int[] {n});
            b.activationForward(a, sum, unfused, n);
            assertExact(op + " vs binary ADD then activationForward", new int[] {n}, got,
                    Arrays.copyOf(s.down(unfused), n));
            Buffer first = s.up(x1);
            b.addActivation(a, first, s.in(x2), first, n);
            assertExact(op + " in place on x1", new int[] {n}, Arrays.copyOf(s.down(first), n), got);
            Buffer second = s.up(x2);
            b.addActivation(a, s.in(x1), second, second, n);
            assertExact(op + " in place on x2", new int[] {n}, Arrays.copyOf(s.down(second), n), got);
        }
    }
}
