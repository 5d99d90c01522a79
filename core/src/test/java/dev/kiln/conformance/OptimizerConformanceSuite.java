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

/** Conformance of fused SGD (one and many parameters, device rate, loss guard) and Adam/AdamW steps; see {@link ConformanceSuite}. */
public class OptimizerConformanceSuite extends ConformanceSuite {

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
    @DisplayName("sgdStepMany, one parameter: 5 consecutive steps vs PyTorch's rule in float64")
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
                b.sgdStepMany(h, null, null, null, new Buffer[] {pb}, new Buffer[] {gb}, momentum ? new Buffer[] {mb} : null,
                        new long[] {n});
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
    @DisplayName("sgdStepMany: 40 parameters (two launches on CUDA) with the rate on the device match one at a time bit for bit")
    void sgdStepManyMatchesOneAtATime(SgdHyper base) {
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
                    b.sgdStepMany(h, null, null, null, new Buffer[] {each[i]}, new Buffer[] {grads[i]},
                            momentum ? new Buffer[] {eachBuf[i]} : null, new long[] {lengths[i]});
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
}
