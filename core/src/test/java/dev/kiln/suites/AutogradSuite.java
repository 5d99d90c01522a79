package dev.kiln.suites;

import dev.kiln.core.Generator;
import dev.kiln.core.GradMode;
import dev.kiln.core.Tensor;
import dev.kiln.core.TensorScope;
import dev.kiln.nn.functional.BatchNormOp;
import dev.kiln.nn.functional.Conv2dOp;
import dev.kiln.nn.functional.LinearOp;
import dev.kiln.nn.functional.LossOps;
import dev.kiln.nn.functional.PoolOps;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Autograd through the public tensor API: every differentiable op's gradient against central finite differences
 * of the same float32 forward. With h = 1e-2 the truncation error is O(h^2) and the rounding error about
 * 1e-7 * |L| / h, so the tolerance is |analytic - numeric| <= 2e-2 * max(1, |numeric|).
 */
public class AutogradSuite extends DeviceSuite {

    private static final float H = 1e-2f;

    /** Checks d(sum(w * f(inputs)))/d(inputs) for every input, with a random fixed w. */
    private void check(String name, Function<Tensor[], Tensor> f, Tensor... inputs) {
        try (TensorScope scope = TensorScope.open()) {
            for (Tensor t : inputs) {
                t.requiresGrad(true);
            }
            Tensor out = f.apply(inputs);
            Tensor w = Tensor.randn(device(), new Generator(999), out.shape());
            Tensor loss = out.mul(w).sum();
            loss.backward();
            float[] wv = w.toArray();
            for (int k = 0; k < inputs.length; k++) {
                Tensor in = inputs[k];
                float[] analytic = in.grad().toArray();
                float[] x = in.toArray();
                int stride = Math.max(1, x.length / 40);
                for (int i = 0; i < x.length; i += stride) {
                    float saved = x[i];
                    x[i] = saved + H;
                    in.copyFrom(x);
                    double plus = weighted(f, inputs, wv);
                    x[i] = saved - H;
                    in.copyFrom(x);
                    double minus = weighted(f, inputs, wv);
                    x[i] = saved;
                    in.copyFrom(x);
                    double numeric = (plus - minus) / (2 * H);
                    if (!(Math.abs(analytic[i] - numeric) <= 2e-2 * Math.max(1, Math.abs(numeric)))) {
                        fail(name + ": input " + k + " index " + i + ": autograd " + analytic[i] + ", finite difference " + numeric);
                    }
                }
            }
            for (Tensor t : inputs) {
                t.zeroGrad();
            }
        }
    }

    private double weighted(Function<Tensor[], Tensor> f, Tensor[] inputs, float[] w) {
        try (GradMode ignored = GradMode.noGrad(); TensorScope scope = TensorScope.open()) {
            float[] y = f.apply(inputs).toArray();
            double s = 0;
            for (int i = 0; i < y.length; i++) {
                s += (double) w[i] * y[i];
            }
            return s;
        }
    }

    private Tensor positive(long seed, int... shape) {
        return randn(seed, shape).abs().add(0.5f);
    }

    @Test
    @DisplayName("element-wise arithmetic with broadcasting")
    void arithmetic() {
        check("add broadcast", t -> t[0].add(t[1]), randn(1, 3, 4), randn(2, 4));
        check("sub broadcast", t -> t[0].sub(t[1]), randn(1, 3, 1), randn(2, 1, 5));
        check("mul broadcast", t -> t[0].mul(t[1]), randn(3, 2, 3, 4), randn(4, 3, 1));
        check("div", t -> t[0].div(t[1]), randn(5, 3, 4), positive(6, 3, 4));
        check("scalar ops", t -> t[0].mul(3f).add(1f).rsub(2f).div(4f), randn(7, 6));
        check("pow", t -> t[0].pow(3f), positive(8, 5));
    }

    @Test
    @DisplayName("unary functions and activations")
    void unary() {
        check("neg/exp", t -> t[0].neg().exp(), randn(1, 7));
        check("log", t -> t[0].log(), positive(2, 7));
        check("sqrt", t -> t[0].sqrt(), positive(3, 7));
        check("abs", t -> t[0].abs(), positive(4, 7).mul(-1f));
        check("square", t -> t[0].square(), randn(5, 7));
        check("reciprocal", t -> t[0].reciprocal(), positive(6, 7));
        check("sigmoid", t -> t[0].sigmoid(), randn(7, 9));
        check("tanh", t -> t[0].tanh(), randn(8, 9));
        // Values at least 0.15 from the kink, so x +- h never crosses it.
        check("relu", t -> t[0].relu(), tensor(new float[]{-1.5f, -0.7f, -0.2f, 0.3f, 0.8f, 1.4f, -2.1f, 2.5f, 0.15f}, 9));
        // every declared activation through Tensor.activation; values at least 0.15 from every integer (where
        // piecewise activations have their kinks), across (-8, 8)
        float[] awayFromKinks = {-7.5f, -5.3f, -2.4f, -0.7f, 0.3f, 1.6f, 3.2f, 5.5f, 5.8f, 6.2f, 7.7f};
        for (dev.kiln.backend.Activation a : dev.kiln.backend.Activation.values()) {
            check("activation " + a, t -> t[0].activation(a), tensor(awayFromKinks.clone(), awayFromKinks.length));
        }
    }

    @Test
    @DisplayName("reductions, reshape, matmul, softmax")
    void reductions() {
        check("sum", t -> t[0].sum(), randn(1, 3, 4));
        check("sum dim", t -> t[0].sum(1, false), randn(2, 3, 4, 2));
        check("mean dim keep", t -> t[0].mean(0, true), randn(3, 3, 4));
        check("var unbiased", t -> t[0].var(1, true, false), randn(4, 3, 5));
        check("var biased all", t -> t[0].var(false), randn(5, 4, 3));
        check("reshape/flatten", t -> t[0].reshape(4, -1).flatten().mul(t[0].flatten()), randn(6, 2, 3, 2));
        check("matmul", t -> t[0].matmul(t[1]), randn(7, 3, 5), randn(8, 5, 4));
        check("softmax", t -> LossOps.softmax(t[0]), randn(9, 4, 6));
    }

    @Test
    @DisplayName("layers: conv2d, linear, batch norm (train and eval), pooling, losses")
    void layers() {
        check("conv2d", t -> Conv2dOp.conv2d(t[0], t[1], t[2], 2, 1, 1, 0, 1, 2), randn(1, 2, 3, 7, 6), randn(2, 4, 3, 3, 2), randn(3, 4));
        check("linear", t -> LinearOp.linear(t[0], t[1], t[2]), randn(4, 5, 7), randn(5, 3, 7), randn(6, 3));
        check("batch norm train", t -> BatchNormOp.batchNorm(t[0], null, null, t[1], t[2], true, 0, 1e-5f),
                randn(7, 4, 3, 2, 2), randn(8, 3), randn(9, 3));
        Tensor rm = randn(10, 3);
        Tensor rv = positive(11, 3);
        check("batch norm eval", t -> BatchNormOp.batchNorm(t[0], rm, rv, t[1], t[2], false, 0, 1e-5f),
                randn(12, 4, 3, 5), randn(13, 3), randn(14, 3));
        check("avg pool", t -> PoolOps.avgPool2d(t[0], 3, 3, 2, 2, 1, 1), randn(15, 2, 2, 7, 6));
        check("max pool", t -> PoolOps.maxPool2d(t[0], 2, 2, 2, 2, 0, 0), randn(16, 2, 3, 6, 4));
        Tensor targets = tensor(new float[]{3, 0, 4, 1}, 4);
        check("cross entropy", t -> LossOps.crossEntropy(t[0], targets), randn(17, 4, 5));
        Tensor target = randn(18, 4, 3);
        check("mse", t -> LossOps.mse(t[0], target), randn(19, 4, 3));
    }

    @Test
    @DisplayName("gradients accumulate across backward calls; a shared input sums both paths")
    void accumulation() {
        Tensor x = tensor(new float[]{1, 2, 3}, 3).requiresGrad(true);
        x.mul(x).sum().backward();
        assertArrayEquals(new float[]{2, 4, 6}, x.grad().toArray());
        x.mul(3f).sum().backward();
        assertArrayEquals(new float[]{5, 7, 9}, x.grad().toArray());
        x.zeroGrad();
        assertNull(x.grad());
    }

    @Test
    @DisplayName("no-grad scope records nothing; detach cuts the graph")
    void noGrad() {
        Tensor x = randn(1, 3).requiresGrad(true);
        try (GradMode ignored = GradMode.noGrad()) {
            Tensor y = x.mul(2f);
            assertFalse(y.requiresGrad());
            assertTrue(y.isLeaf());
        }
        Tensor y = x.mul(2f);
        assertTrue(y.requiresGrad());
        assertFalse(y.detach().requiresGrad());
        assertThrows(IllegalStateException.class, () -> y.detach().sum().backward());
    }

    @Test
    @DisplayName("scopes close the step's tensors and keep what is kept")
    void scopes() {
        Tensor kept;
        Tensor dropped;
        try (TensorScope s = TensorScope.open()) {
            dropped = randn(1, 4).mul(2f);
            kept = s.keep(randn(2, 4).add(1f));
        }
        assertTrue(dropped.isClosed());
        assertFalse(kept.isClosed());
        assertThrows(IllegalStateException.class, dropped::toArray);
        assertEquals(4, kept.toArray().length);
        kept.close();
    }

    @Test
    @DisplayName("forward values of basic ops and reductions")
    void forwardValues() {
        Tensor a = tensor(new float[]{1, 2, 3, 4, 5, 6}, 2, 3);
        assertArrayEquals(new float[]{21}, a.sum().toArray());
        assertArrayEquals(new float[]{5, 7, 9}, a.sum(0, false).toArray());
        assertArrayEquals(new float[]{2, 5}, a.mean(1, false).toArray());
        assertArrayEquals(new float[]{1, 1}, a.var(1, true, false).toArray(), 1e-6f);
        assertArrayEquals(new float[]{2f / 3, 2f / 3}, a.var(1, false, false).toArray(), 1e-6f);
        assertArrayEquals(new float[]{2, 2}, a.argmax(1).toArray());
        assertArrayEquals(new float[]{11, 12, 13, 14, 15, 16}, a.add(tensor(new float[]{10}, 1)).toArray());
        assertArrayEquals(new int[]{3, 2}, a.reshape(3, -1).shape());
        assertEquals("tensor([[1., 2., 3.],\n        [4., 5., 6.]])", a.toString());
        assertEquals("tensor([0.5000, 1.2500])", tensor(new float[]{0.5f, 1.25f}, 2).toString());
    }
}
