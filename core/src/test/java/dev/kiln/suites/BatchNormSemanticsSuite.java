package dev.kiln.suites;

import dev.kiln.core.Generator;
import dev.kiln.core.GradMode;
import dev.kiln.core.Tensor;
import dev.kiln.core.TensorScope;
import dev.kiln.nn.BatchNorm;
import dev.kiln.nn.BatchNorm1d;
import dev.kiln.nn.BatchNorm2d;
import dev.kiln.nn.Linear;
import dev.kiln.nn.MSELoss;
import dev.kiln.nn.Sequential;
import dev.kiln.nn.StateDict;
import dev.kiln.optim.SGD;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** PyTorch's batch-norm semantics, module level, on any backend. */
public class BatchNormSemanticsSuite extends DeviceSuite {

    private static final float EPS = 1e-5f;

    /** Per channel biased/unbiased statistics of an (N, C, S) array, in double. */
    private static double[][] stats(float[] x, int n, int c, int s) {
        double[] mean = new double[c];
        double[] biased = new double[c];
        double[] unbiased = new double[c];
        int m = n * s;
        for (int ch = 0; ch < c; ch++) {
            double sum = 0;
            for (int i = 0; i < n; i++) {
                for (int k = 0; k < s; k++) {
                    sum += x[(i * c + ch) * s + k];
                }
            }
            mean[ch] = sum / m;
            double sq = 0;
            for (int i = 0; i < n; i++) {
                for (int k = 0; k < s; k++) {
                    double d = x[(i * c + ch) * s + k] - mean[ch];
                    sq += d * d;
                }
            }
            biased[ch] = sq / m;
            unbiased[ch] = sq / (m - 1);
        }
        return new double[][]{mean, biased, unbiased};
    }

    private static float[] normalFloats(long seed, int count, double mean, double std) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] out = new float[count];
        for (int i = 0; i < count; i++) {
            double u1 = Math.max(r.nextDouble(), 1e-300);
            double u2 = r.nextDouble();
            out[i] = (float) (mean + std * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2));
        }
        return out;
    }

    @Test
    @DisplayName("BN from scratch: gamma*(x-mean)/sqrt(var+eps)+beta on 20 2-d points equals BatchNorm1d(2), rtol 1e-4")
    void batchNormFromScratch() {
        float[] points = normalFloats(42, 40, 5, 2);
        try (BatchNorm1d bn = new BatchNorm1d(device(), 2)) {
            float[] gamma = {1.5f, -0.7f};
            float[] beta = {0.25f, 3f};
            bn.weight().copyFrom(gamma);
            bn.bias().copyFrom(beta);
            float[] y = bn.forward(tensor(points, 20, 2)).toArray();
            double[][] st = stats(points, 20, 2, 1);
            double[] manual = new double[40];
            for (int i = 0; i < 20; i++) {
                for (int c = 0; c < 2; c++) {
                    manual[i * 2 + c] = gamma[c] * (points[i * 2 + c] - st[0][c]) / Math.sqrt(st[1][c] + EPS) + beta[c];
                }
            }
            // rtol 1e-4 as the seed's check; atol 1e-5 covers outputs that land near zero.
            assertClose(manual, y, 1e-4, 1e-5, "BatchNorm1d(2) vs manual");
        }
    }

    @ParameterizedTest(name = "momentum {0}")
    @ValueSource(strings = {"0.1", "0.3", "null"})
    @DisplayName("running stats after k steps equal the closed form (exponential or cumulative, unbiased var)")
    void runningStatisticsClosedForm(String momentumText) {
        Float momentum = momentumText.equals("null") ? null : Float.parseFloat(momentumText);
        int n = 6;
        int c = 3;
        int h = 2;
        int w = 3;
        int steps = 7;
        try (BatchNorm2d bn = new BatchNorm2d(device(), c, EPS, momentum, true, true)) {
            double[] expMean = new double[c];
            double[] expVar = {1, 1, 1};
            double[] sumMean = new double[c];
            double[] sumVar = new double[c];
            for (int k = 1; k <= steps; k++) {
                float[] x = normalFloats(100 + k, n * c * h * w, k, 1 + 0.5 * k);
                bn.forward(tensor(x, n, c, h, w));
                double[][] st = stats(x, n, c, h * w);
                for (int ch = 0; ch < c; ch++) {
                    sumMean[ch] += st[0][ch];
                    sumVar[ch] += st[2][ch];
                    if (momentum != null) {
                        expMean[ch] = (1 - momentum) * expMean[ch] + momentum * st[0][ch];
                        expVar[ch] = (1 - momentum) * expVar[ch] + momentum * st[2][ch];
                    } else {
                        expMean[ch] = sumMean[ch] / k;
                        expVar[ch] = sumVar[ch] / k;
                    }
                }
            }
            assertEquals(steps, bn.numBatchesTracked());
            // float32 running buffers updated 7 times: rtol 1e-5 plus a small atol for means near 0.
            assertClose(expMean, bn.runningMean().toArray(), 1e-5, 1e-5, "running_mean");
            assertClose(expVar, bn.runningVar().toArray(), 1e-5, 1e-5, "running_var (unbiased)");
        }
    }

    @Test
    @DisplayName("eval uses running statistics and never changes them")
    void evalUsesAndKeepsRunningStats() {
        try (BatchNorm1d bn = new BatchNorm1d(device(), 4)) {
            for (int k = 0; k < 3; k++) {
                bn.forward(randn(k, 16, 4));
            }
            float[] rm = bn.runningMean().toArray();
            float[] rv = bn.runningVar().toArray();
            long tracked = bn.numBatchesTracked();
            bn.eval();
            float[] x = randn(99, 5, 4).toArray();
            float[] y = bn.forward(tensor(x, 5, 4)).toArray();
            bn.forward(tensor(x, 5, 4));
            assertArrayEquals(rm, bn.runningMean().toArray(), "eval changed running_mean");
            assertArrayEquals(rv, bn.runningVar().toArray(), "eval changed running_var");
            assertEquals(tracked, bn.numBatchesTracked(), "eval changed num_batches_tracked");
            double[] want = new double[x.length];
            for (int i = 0; i < 5; i++) {
                for (int c = 0; c < 4; c++) {
                    want[i * 4 + c] = (x[i * 4 + c] - rm[c]) / Math.sqrt(rv[c] + EPS);
                }
            }
            assertClose(want, y, 1e-5, 1e-5, "eval output");
            // One sample per channel is fine in eval.
            assertEquals(4, bn.forward(randn(3, 1, 4)).numel());
        }
    }

    @Test
    @DisplayName("trackRunningStats=false: no buffers, batch statistics in eval too")
    void noTrackingUsesBatchStatsInEval() {
        try (BatchNorm1d bn = new BatchNorm1d(device(), 3, EPS, 0.1f, true, false)) {
            assertNull(bn.runningMean());
            assertFalse(bn.stateDict().entries().containsKey("num_batches_tracked"));
            assertEquals(2, bn.stateDict().size());
            float[] x = randn(5, 8, 3, 5).toArray();
            float[] trainOut = bn.forward(tensor(x, 8, 3, 5)).toArray();
            bn.eval();
            float[] evalOut = bn.forward(tensor(x, 8, 3, 5)).toArray();
            assertArrayEquals(trainOut, evalOut);
            double[][] st = stats(x, 8, 3, 5);
            double[] want = new double[x.length];
            for (int i = 0; i < x.length; i++) {
                int c = (i / 5) % 3;
                want[i] = (x[i] - st[0][c]) / Math.sqrt(st[1][c] + EPS);
            }
            assertClose(want, evalOut, 1e-4, 1e-5, "eval with batch statistics");
        }
    }

    @Test
    @DisplayName("affine=false: no weight or bias, plain normalisation")
    void nonAffine() {
        try (BatchNorm2d bn = new BatchNorm2d(device(), 2, EPS, 0.1f, false, true)) {
            assertTrue(bn.parameters().isEmpty());
            assertEquals(java.util.List.of("running_mean", "running_var", "num_batches_tracked"),
                    java.util.List.copyOf(bn.stateDict().entries().keySet()));
            float[] x = randn(8, 3, 2, 2, 3).toArray();
            float[] y = bn.forward(tensor(x, 3, 2, 2, 3)).toArray();
            double[][] st = stats(x, 3, 2, 6);
            double[] want = new double[x.length];
            for (int i = 0; i < x.length; i++) {
                int c = (i / 6) % 2;
                want[i] = (x[i] - st[0][c]) / Math.sqrt(st[1][c] + EPS);
            }
            assertClose(want, y, 1e-4, 1e-5, "non-affine BN2d");
        }
    }

    @Test
    @DisplayName("BatchNorm1d accepts (N,C,L): statistics over N and L")
    void batchNorm1dThreeDimensional() {
        try (BatchNorm1d bn = new BatchNorm1d(device(), 3)) {
            float[] x = randn(11, 4, 3, 7).toArray();
            float[] y = bn.forward(tensor(x, 4, 3, 7)).toArray();
            double[][] st = stats(x, 4, 3, 7);
            double[] want = new double[x.length];
            for (int i = 0; i < x.length; i++) {
                int c = (i / 7) % 3;
                want[i] = (x[i] - st[0][c]) / Math.sqrt(st[1][c] + EPS);
            }
            assertClose(want, y, 1e-4, 1e-5, "BN1d (N,C,L)");
            assertClose(st[2], scaleBack(bn.runningVar().toArray()), 1e-5, 1e-5, "running_var after one step");
        }
    }

    /** Undoes one momentum-0.1 step from the initial running_var of 1. */
    private static float[] scaleBack(float[] rv) {
        float[] out = new float[rv.length];
        for (int i = 0; i < rv.length; i++) {
            out[i] = (float) ((rv[i] - 0.9) / 0.1);
        }
        return out;
    }

    @Test
    @DisplayName("training with one value per channel throws, naming the layer and shape, and changes nothing")
    void oneValuePerChannelIsAnError() {
        try (BatchNorm1d bn = new BatchNorm1d(device(), 2); BatchNorm2d bn2 = new BatchNorm2d(device(), 3)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> bn.forward(randn(1, 1, 2)));
            assertMessageContains(e, "BatchNorm1d", "more than 1 value per channel", "(1, 2)");
            e = assertThrows(IllegalArgumentException.class, () -> bn.forward(randn(1, 1, 2, 1)));
            assertMessageContains(e, "(1, 2, 1)");
            e = assertThrows(IllegalArgumentException.class, () -> bn2.forward(randn(1, 1, 3, 1, 1)));
            assertMessageContains(e, "BatchNorm2d", "(1, 3, 1, 1)");
            assertEquals(0, bn.numBatchesTracked());
            assertArrayEquals(new float[]{0, 0}, bn.runningMean().toArray());
        }
    }

    @Test
    @DisplayName("wrong channel count or rank names expected and found")
    void wrongShapes() {
        try (BatchNorm2d bn = new BatchNorm2d(device(), 6); BatchNorm1d bn1 = new BatchNorm1d(device(), 4)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> bn.forward(randn(1, 2, 3, 4, 4)));
            assertMessageContains(e, "expected 6 channels", "found 3", "(2, 3, 4, 4)");
            e = assertThrows(IllegalArgumentException.class, () -> bn.forward(randn(1, 2, 6)));
            assertMessageContains(e, "4D", "(2, 6)");
            e = assertThrows(IllegalArgumentException.class, () -> bn1.forward(randn(1, 2, 4, 2, 2)));
            assertMessageContains(e, "2D", "3D", "(2, 4, 2, 2)");
        }
    }

    @Test
    @DisplayName("state dict uses PyTorch's keys, num_batches_tracked as int64, round trip")
    void stateDictKeys() {
        try (BatchNorm2d bn = new BatchNorm2d(device(), 2); BatchNorm2d other = new BatchNorm2d(device(), 2)) {
            bn.forward(randn(1, 4, 2, 3, 3));
            StateDict sd = bn.stateDict();
            assertEquals(java.util.List.of("weight", "bias", "running_mean", "running_var", "num_batches_tracked"),
                    java.util.List.copyOf(sd.entries().keySet()));
            assertEquals(StateDict.DType.I64, sd.get("num_batches_tracked").dtype());
            assertEquals(1L, sd.get("num_batches_tracked").longValue());
            other.loadStateDict(sd);
            assertArrayEquals(bn.runningMean().toArray(), other.runningMean().toArray());
            assertEquals(1L, other.numBatchesTracked());
        }
    }

    @Test
    @DisplayName("the seed's SimpleModel: Linear(3,2)+BN1d(2), MSE, SGD 0.1, batch 4, 3 epochs; running stats as closed form; eval leaves them")
    void simpleModelDemonstration() {
        Generator gen = new Generator(7);
        float[] xs = normalFloats(3, 16 * 3, 0, 1);
        float[] ys = normalFloats(4, 16 * 2, 1, 1);
        Linear linear = new Linear(device(), gen, 3, 2);
        BatchNorm1d bn = new BatchNorm1d(device(), 2);
        try (Sequential model = new Sequential(linear, bn); SGD sgd = new SGD(model.parameters(), 0.1f)) {
            MSELoss mse = new MSELoss();
            double[] expMean = {0, 0};
            double[] expVar = {1, 1};
            for (int epoch = 0; epoch < 3; epoch++) {
                float[] before = bn.runningMean().toArray();
                for (int b = 0; b < 4; b++) {
                    float[] xb = java.util.Arrays.copyOfRange(xs, b * 12, b * 12 + 12);
                    float[] yb = java.util.Arrays.copyOfRange(ys, b * 8, b * 8 + 8);
                    float[] z;
                    try (GradMode ignored = GradMode.noGrad()) {
                        z = linear.forward(tensor(xb, 4, 3)).toArray();
                    }
                    double[][] st = stats(z, 4, 2, 1);
                    for (int c = 0; c < 2; c++) {
                        expMean[c] = 0.9 * expMean[c] + 0.1 * st[0][c];
                        expVar[c] = 0.9 * expVar[c] + 0.1 * st[2][c];
                    }
                    model.zeroGrad();
                    try (TensorScope step = TensorScope.open()) {
                        Tensor loss = mse.forward(model.forward(tensor(xb, 4, 3)), tensor(yb, 4, 2));
                        loss.backward();
                        sgd.step();
                    }
                }
                assertFalse(java.util.Arrays.equals(before, bn.runningMean().toArray()), "training must move running_mean");
            }
            assertEquals(12, bn.numBatchesTracked());
            assertClose(expMean, bn.runningMean().toArray(), 1e-4, 1e-5, "running_mean after 3 epochs");
            assertClose(expVar, bn.runningVar().toArray(), 1e-4, 1e-5, "running_var after 3 epochs");
            model.eval();
            float[] rm = bn.runningMean().toArray();
            float[] rv = bn.runningVar().toArray();
            try (GradMode ignored = GradMode.noGrad()) {
                model.forward(tensor(xs, 16, 3));
            }
            assertArrayEquals(rm, bn.runningMean().toArray());
            assertArrayEquals(rv, bn.runningVar().toArray());
        }
    }

    @Test
    @DisplayName("train()/eval() switch propagates to children")
    void modeSwitch() {
        BatchNorm bn = new BatchNorm1d(device(), 2);
        try (Sequential s = new Sequential(bn)) {
            assertTrue(bn.isTraining());
            s.eval();
            assertFalse(bn.isTraining());
            s.train();
            assertTrue(bn.isTraining());
        }
    }
}
