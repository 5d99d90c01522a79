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

/** Conformance of batch norm: training forward, inference (with each activation), backward, running statistics; see {@link ConformanceSuite}. */
public class BatchNormConformanceSuite extends ConformanceSuite {

    // ==================================================================================================== batch norm

    static final BatchNormGeometry[] BNS = {
        new BatchNormGeometry(64, 6, 28 * 28),  // LeNet BN2d (64,6,28,28)
        new BatchNormGeometry(64, 120, 1),      // LeNet BN1d (64,120)
        new BatchNormGeometry(8, 5, 7 * 7),     // ResNet layer3's 7x7 planes: short rows, vectors and a tail
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
    @DisplayName("batchNormForwardInference: inference BN then each activation (identity too) in one pass, also in place")
    void batchNormForwardInference(BatchNormGeometry g, boolean affine) {
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
            String op = "batchNormForwardInference " + a + " " + describe(g) + (affine ? " affine" : "");
            try (Scope s = scope()) {
                Buffer yb = s.out(g.length());
                b.batchNormForwardInference(g, a, s.in(x), affine ? s.in(gamma) : null, affine ? s.in(beta) : null,
                        s.in(rm), s.in(rv), BN_EPS, yb);
                assertClose(op, new int[] {g.n(), g.channels(), g.spatial()}, s.down(yb), y, tol);
                s.assertInputsUnchanged(op);
                Buffer inPlace = s.up(x);
                b.batchNormForwardInference(g, a, inPlace, affine ? s.in(gamma) : null, affine ? s.in(beta) : null,
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
    @MethodSource("bnBackwardCases")
    @DisplayName("batchNormActivationForwardTraining and batchNormActivationBackward: bitwise the batch norm and each"
            + " activation in turn (y, saved statistics, dx, dGamma, dBeta; null outputs)")
    void batchNormActivationTraining(BatchNormGeometry g, boolean affine, String wanted) {
        Inputs in = new Inputs(1750 + g.hashCode() + wanted.hashCode() + (affine ? 1 : 0));
        float[] x = bnInput(in, g);
        float[] dy = in.uniform((int) g.length(), -1, 1);
        float[] gamma = in.uniform(g.channels(), 0.5, 2);
        float[] beta = in.uniform(g.channels(), -1, 1);
        boolean wantDx = !wanted.equals("params");
        boolean wantParams = !wanted.equals("dx");
        int[] shape = {g.n(), g.channels(), g.spatial()};
        int[] perChannel = {g.channels()};
        long n = g.length();
        for (Activation a : Activation.values()) {
            String op = "batchNormActivation " + a + " " + describe(g) + (affine ? " affine" : "");
            try (Scope s = scope()) {
                Buffer xb = s.in(x);
                Buffer gb = affine ? s.in(gamma) : null;
                Buffer bb = affine ? s.in(beta) : null;
                Buffer dyb = s.in(dy);
                // the ops in turn
                Buffer z = s.out(n);
                Buffer mean = s.out(g.channels());
                Buffer invStd = s.out(g.channels());
                Buffer yRef = s.out(n);
                b.batchNormForwardTraining(g, xb, gb, bb, BN_EPS, z, mean, invStd);
                b.activationForward(a, z, yRef, n);
                Buffer dz = s.out(n);
                b.activationBackward(a, z, yRef, dyb, dz, n);
                Buffer dxRef = s.out(n);
                Buffer dGammaRef = s.out(g.channels());
                Buffer dBetaRef = s.out(g.channels());
                b.batchNormBackward(g, xb, dz, gb, mean, invStd, dxRef, dGammaRef, dBetaRef);
                // fused
                Buffer y = s.out(n);
                Buffer mean2 = s.out(g.channels());
                Buffer invStd2 = s.out(g.channels());
                b.batchNormActivationForwardTraining(g, a, xb, gb, bb, BN_EPS, y, mean2, invStd2);
                assertExact(op + " y", shape, s.down(y), s.down(yRef));
                assertExact(op + " saveMean", perChannel, s.down(mean2), s.down(mean));
                assertExact(op + " saveInvStd", perChannel, s.down(invStd2), s.down(invStd));
                Buffer dx = wantDx ? s.out(n) : null;
                Buffer dGamma = wantParams ? s.out(g.channels()) : null;
                Buffer dBeta = wantParams ? s.out(g.channels()) : null;
                b.batchNormActivationBackward(g, a, xb, y, dyb, gb, mean2, invStd2, dx, dGamma, dBeta);
                if (wantDx) {
                    assertExact(op + " dx", shape, s.down(dx), s.down(dxRef));
                }
                if (wantParams) {
                    assertExact(op + " dGamma", perChannel, s.down(dGamma), s.down(dGammaRef));
                    assertExact(op + " dBeta", perChannel, s.down(dBeta), s.down(dBetaRef));
                }
                s.assertInputsUnchanged(op);
            }
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
}
