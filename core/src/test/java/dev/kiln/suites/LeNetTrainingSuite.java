package dev.kiln.suites;

import dev.kiln.core.Generator;
import dev.kiln.core.Tensor;
import dev.kiln.core.TensorScope;
import dev.kiln.models.LeNet5;
import dev.kiln.nn.CrossEntropyLoss;
import dev.kiln.optim.SGD;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** LeNet-5-BN training steps on random data, on any backend. */
public class LeNetTrainingSuite extends DeviceSuite {

    private static final int BATCH = 32;

    private record Run(float[] losses, Map<String, float[]> params) {
    }

    private Run train(long seed, int steps) {
        Generator gen = new Generator(seed);
        float[] images = new float[BATCH * 28 * 28];
        gen.fillNormal(images, 0f, 1f);
        float[] labels = new float[BATCH];
        for (int i = 0; i < BATCH; i++) {
            labels[i] = gen.nextInt(10);
        }
        float[] losses = new float[steps];
        try (LeNet5 net = new LeNet5(device(), gen); SGD sgd = new SGD(net.parameters(), 0.1f)) {
            Tensor x = tensor(images, BATCH, 1, 28, 28);
            Tensor y = tensor(labels, BATCH);
            CrossEntropyLoss ce = new CrossEntropyLoss();
            for (int s = 0; s < steps; s++) {
                try (TensorScope step = TensorScope.open()) {
                    net.zeroGrad();
                    Tensor loss = ce.forward(net.forward(x), y);
                    loss.backward();
                    if (s == 0) {
                        for (Map.Entry<String, Tensor> p : net.namedParameters().entrySet()) {
                            assertNotNull(p.getValue().grad(), p.getKey() + " got no gradient");
                            double norm = 0;
                            for (float v : p.getValue().grad().toArray()) {
                                norm += v * v;
                            }
                            assertTrue(norm > 0 && Double.isFinite(norm), p.getKey() + " gradient norm " + norm);
                        }
                    }
                    sgd.step();
                    losses[s] = loss.item();
                }
            }
            Map<String, float[]> params = new java.util.LinkedHashMap<>();
            net.stateDict().entries().forEach((k, v) -> params.put(k, v.data()));
            x.close();
            y.close();
            return new Run(losses, params);
        }
    }

    @Test
    @DisplayName("50 SGD steps on a fixed random batch: every parameter gets a gradient and the loss falls")
    void lossDecreases() {
        Run run = train(1234, 50);
        float first = run.losses[0];
        float last = run.losses[49];
        // Random labels on 32 images can be memorised: the loss must at least halve from about ln(10).
        assertTrue(first > 1.5f && first < 4f, "initial loss " + first + " should be near ln(10)");
        assertTrue(last < 0.5f * first, "loss went from " + first + " to " + last);
    }

    @Test
    @DisplayName("a training step is deterministic for a fixed seed (bit for bit)")
    void deterministic() {
        Run a = train(77, 5);
        Run b = train(77, 5);
        assertArrayEquals(a.losses, b.losses);
        assertEquals(a.params.keySet(), b.params.keySet());
        for (String k : a.params.keySet()) {
            assertArrayEquals(a.params.get(k), b.params.get(k), k);
        }
        Run c = train(78, 5);
        assertTrue(c.losses[0] != a.losses[0], "another seed should give another loss");
    }

    @Test
    @DisplayName("LeNet state dict has PyTorch-style keys and 61,706 trainable parameters")
    void stateDictKeys() {
        try (LeNet5 net = new LeNet5(device(), new Generator(1))) {
            var keys = net.stateDict().entries().keySet();
            assertTrue(keys.contains("conv1.weight"));
            assertTrue(keys.contains("bn1.running_mean"));
            assertTrue(keys.contains("bn1.num_batches_tracked"));
            assertTrue(keys.contains("bn4.running_var"));
            assertTrue(keys.contains("dense3.bias"));
            // conv 156 + 2416, fc 48120 + 10164 + 850, BN affine 2*(6+16+120+84).
            assertEquals(156 + 2416 + 48120 + 10164 + 850 + 2 * (6 + 16 + 120 + 84), net.parameterCount());
        }
    }
}
