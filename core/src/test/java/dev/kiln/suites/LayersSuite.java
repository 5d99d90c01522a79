package dev.kiln.suites;

import dev.kiln.core.Generator;
import dev.kiln.core.GradMode;
import dev.kiln.core.Tensor;
import dev.kiln.core.TensorScope;
import dev.kiln.nn.Conv2d;
import dev.kiln.nn.Dropout;
import dev.kiln.nn.Flatten;
import dev.kiln.nn.Linear;
import dev.kiln.nn.MaxPool2d;
import dev.kiln.nn.ReLU;
import dev.kiln.nn.Sequential;
import dev.kiln.nn.Tanh;
import dev.kiln.optim.Adam;
import dev.kiln.optim.AdamW;
import dev.kiln.optim.SGD;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Layers, initialisation and optimizers at module level, on any backend. */
public class LayersSuite extends DeviceSuite {

    @Test
    @DisplayName("indexSelect gathers rows along dimension 0 (data on the device); bad indices and dims are refused")
    void indexSelect() {
        Tensor x = tensor(new float[]{0, 1, 2, 10, 11, 12, 20, 21, 22, 30, 31, 32}, 4, 3);
        Tensor rows = x.indexSelect(0, 3, 0, 3);
        assertArrayEquals(new int[]{3, 3}, rows.shape());
        assertArrayEquals(new float[]{30, 31, 32, 0, 1, 2, 30, 31, 32}, rows.toArray());
        assertArrayEquals(new int[]{0, 3}, x.indexSelect(0).shape());
        assertThrows(IllegalArgumentException.class, () -> x.indexSelect(0, 4));
        assertThrows(IllegalArgumentException.class, () -> x.indexSelect(1, 0));
        Tensor p = tensor(new float[]{1, 2}, 2, 1).requiresGrad(true);
        assertThrows(UnsupportedOperationException.class, () -> p.indexSelect(0, 1));
        device().synchronize();
    }

    @Test
    @DisplayName("default init: weights and biases uniform within 1/sqrt(fan_in), not constant")
    void initialisationBounds() {
        try (Conv2d conv = new Conv2d(device(), new Generator(1), 6, 16, 5); Linear fc = new Linear(device(), new Generator(2), 400, 120)) {
            checkUniform(conv.weight().toArray(), 1 / Math.sqrt(150));
            checkUniform(conv.bias().toArray(), 1 / Math.sqrt(150));
            checkUniform(fc.weight().toArray(), 1 / Math.sqrt(400));
            checkUniform(fc.bias().toArray(), 1 / Math.sqrt(400));
        }
    }

    private static void checkUniform(float[] v, double bound) {
        double max = 0;
        double sumSq = 0;
        for (float x : v) {
            max = Math.max(max, Math.abs(x));
            sumSq += x * x;
        }
        assertTrue(max <= bound, "max |w| " + max + " > bound " + bound);
        assertTrue(max > 0.8 * bound, "max |w| " + max + " far below bound " + bound);
        // Uniform(-b, b) has variance b^2/3; allow sampling noise.
        double var = sumSq / v.length;
        assertTrue(Math.abs(var - bound * bound / 3) < 0.35 * bound * bound / 3 + 1e-12, "variance " + var);
    }

    @Test
    @DisplayName("Dropout: zeroes about p, scales the rest by 1/(1-p), identity in eval, gradient through the mask")
    void dropout() {
        Dropout d = new Dropout(0.25f, new Generator(4));
        Tensor x = Tensor.ones(device(), 40, 100).requiresGrad(true);
        Tensor y = d.forward(x);
        float[] v = y.toArray();
        int zeros = 0;
        for (float f : v) {
            if (f == 0f) {
                zeros++;
            } else {
                assertEquals(1f / 0.75f, f, 1e-6f);
            }
        }
        assertTrue(Math.abs(zeros / 4000.0 - 0.25) < 0.03, "dropped fraction " + zeros / 4000.0);
        y.sum().backward();
        assertArrayEquals(v, x.grad().toArray());
        d.eval();
        assertArrayEquals(x.toArray(), d.forward(x).toArray());
        assertThrows(IllegalArgumentException.class, () -> new Dropout(1f, new Generator(1)));
    }

    @Test
    @DisplayName("inference fuses BatchNorm+activation and Linear+activation: taken only without gradients, same logits")
    void inferenceFusion() {
        try (dev.kiln.models.LeNet5 net = new dev.kiln.models.LeNet5(device(), new Generator(11))) {
            Generator g = new Generator(12);
            // a few training forwards give the running statistics something other than 0 and 1
            try (GradMode ignored = GradMode.noGrad()) {
                for (int i = 0; i < 3; i++) {
                    net.forward(Tensor.randn(device(), g, 16, 1, 28, 28).mul(2f).add(0.5f));
                }
            }
            net.eval();
            Tensor x = Tensor.randn(device(), g, 16, 1, 28, 28);
            float[] unfused = net.forward(x).toArray();   // parameters require grad: nothing is fused
            float[] fused;
            try (GradMode ignored = GradMode.noGrad()) {
                fused = net.forward(x).toArray();
            }
            for (int i = 0; i < unfused.length; i++) {
                assertEquals(unfused[i], fused[i], 1e-5 + 1e-5 * Math.abs(unfused[i]), "logit " + i);
            }
        }
        try (Sequential bnRelu = new Sequential(new dev.kiln.nn.BatchNorm1d(device(), 4), new ReLU());
             Sequential linearSigmoid = new Sequential(new Linear(device(), new Generator(13), 4, 3), new dev.kiln.nn.Sigmoid())) {
            Tensor x = Tensor.randn(device(), new Generator(15), 6, 4);
            try (GradMode ignored = GradMode.noGrad()) {
                assertEquals("relu", bnRelu.forward(x).op(), "training BatchNorm is not fused");
                bnRelu.eval();
                Tensor fusedBn = bnRelu.forward(x);
                assertEquals(null, fusedBn.op(), "eval BatchNorm + ReLU fused without gradients");
                assertArrayEquals(bnRelu.get(1).forward(bnRelu.get(0).forward(x)).toArray(), fusedBn.toArray());
                Tensor fusedLinear = linearSigmoid.forward(x);
                assertEquals(null, fusedLinear.op(), "Linear + Sigmoid fused without gradients");
                float[] expected = linearSigmoid.get(1).forward(linearSigmoid.get(0).forward(x)).toArray();
                float[] got = fusedLinear.toArray();
                for (int i = 0; i < got.length; i++) {
                    assertEquals(expected[i], got[i], 1e-6 + 1e-5 * Math.abs(expected[i]), "output " + i);
                }
            }
            assertEquals("sigmoid", linearSigmoid.forward(x).op(), "with gradients recorded the layers run one by one");
        }
        // any declared activation is a layer, and fuses into Linear and eval BatchNorm like the named ones
        for (dev.kiln.backend.Activation a : dev.kiln.backend.Activation.values()) {
            try (Sequential linear = new Sequential(new Linear(device(), new Generator(17), 4, 3),
                    new dev.kiln.nn.ActivationLayer(a));
                 Sequential bn = new Sequential(new dev.kiln.nn.BatchNorm1d(device(), 4), new dev.kiln.nn.ActivationLayer(a))) {
                Tensor x = Tensor.randn(device(), new Generator(19), 6, 4).mul(4f);
                bn.forward(x);
                bn.eval();
                for (Sequential s : List.of(linear, bn)) {
                    float[] separate = s.get(1).forward(s.get(0).forward(x)).toArray();
                    float[] fused;
                    try (GradMode ignored = GradMode.noGrad()) {
                        Tensor y = s.forward(x);
                        assertEquals(null, y.op(), a + ": fused without gradients");
                        fused = y.toArray();
                    }
                    for (int i = 0; i < fused.length; i++) {
                        assertEquals(separate[i], fused[i], 1e-6 + 1e-5 * Math.abs(separate[i]), a + " output " + i);
                    }
                }
            }
        }
    }

    @Test
    @DisplayName("Sequential names children 0, 1, ... and prints like PyTorch")
    void sequentialNames() {
        try (Sequential s = new Sequential(new Conv2d(device(), new Generator(1), 1, 2, 3), new ReLU(), new MaxPool2d(2),
                new Flatten(), new Linear(device(), new Generator(1), 2 * 13 * 13, 3), new Tanh())) {
            assertEquals(List.of("0.weight", "0.bias", "4.weight", "4.bias"), List.copyOf(s.namedParameters().keySet()));
            assertTrue(s.toString().contains("(0): Conv2d(1, 2, kernel_size=(3, 3), stride=(1, 1))"), s.toString());
            assertTrue(s.toString().contains("(4): Linear(in_features=338, out_features=3, bias=True)"), s.toString());
            assertArrayEquals(new int[]{4, 3}, s.forward(randn(1, 4, 1, 28, 28)).shape());
        }
    }

    @Test
    @DisplayName("optimizers reduce a quadratic; SGD momentum/nesterov, Adam and AdamW converge")
    void optimizersConverge() {
        float[] target = {1f, -2f, 0.5f};
        for (String kind : List.of("sgd", "nesterov", "adam", "adamw")) {
            Tensor w = Tensor.unscoped(device(), new float[3], 3).requiresGrad(true);
            List<Tensor> params = List.of(w);
            var opt = switch (kind) {
                case "sgd" -> new SGD(params, 0.1f);
                case "nesterov" -> new SGD(params, 0.05f, 0.9f, 0f, true, 0f);
                case "adam" -> new Adam(params, 0.1f);
                default -> new AdamW(params, 0.1f, 0.9f, 0.999f, 1e-8f, 0f);
            };
            Tensor t = tensor(target, 3);
            for (int i = 0; i < 300; i++) {
                opt.zeroGrad();
                try (TensorScope step = TensorScope.open()) {
                    w.sub(t).square().sum().backward();
                }
                opt.step();
            }
            assertArrayEquals(target, w.toArray(), 2e-2f, kind);
            opt.close();
            w.close();
        }
    }

    @Test
    @DisplayName("SGD follows PyTorch's rule exactly for two steps (momentum 0.9, dampening 0.1, weight decay 0.01)")
    void sgdRuleByHand() {
        Tensor w = Tensor.unscoped(device(), new float[]{1f, -1f}, 2).requiresGrad(true);
        try (SGD sgd = new SGD(List.of(w), 0.1f, 0.9f, 0.1f, false, 0.01f)) {
            double[] p = {1, -1};
            double[] buf = new double[2];
            for (int step = 0; step < 2; step++) {
                sgd.zeroGrad();
                w.mul(w).mul(3f).sum().backward(); // grad = 6 w
                for (int i = 0; i < 2; i++) {
                    double g = 6 * p[i] + 0.01 * p[i];
                    buf[i] = step == 0 ? g : 0.9 * buf[i] + 0.9 * g;
                    p[i] -= 0.1 * buf[i];
                }
                sgd.step();
            }
            assertClose(p, w.toArray(), 1e-5, 1e-6, "SGD two steps");
        }
        try (GradMode ignored = GradMode.noGrad()) {
            w.close();
        }
    }
}
