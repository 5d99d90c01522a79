package dev.kiln.cpu;

import dev.kiln.core.Device;
import dev.kiln.core.Generator;
import dev.kiln.core.GradMode;
import dev.kiln.core.Tensor;
import dev.kiln.core.TensorScope;
import dev.kiln.models.LeNet5;
import dev.kiln.nn.CrossEntropyLoss;
import dev.kiln.optim.SGD;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Whichever kernels run (SIMD or scalar: this class runs under both, see the scalar-kernels surefire execution), a
 * LeNet-5-BN training run and its inference are bit-for-bit the same with 1 and 3 backend threads.
 */
class CpuSimdKernelsTest {

    @Test
    void leNetTrainingAndInferenceDoNotDependOnThreadCount() {
        List<float[]> one = trainAndInfer(1);
        List<float[]> three = trainAndInfer(3);
        assertEquals(one.size(), three.size());
        for (int i = 0; i < one.size(); i++) {
            assertArrayEquals(one.get(i), three.get(i), "tensor " + i + " (" + SimdSupport.describe() + " kernels)");
        }
    }

    /** Parameters after 3 SGD steps at batch 37 (odd: uneven chunks and vector tails), then eval logits. */
    private static List<float[]> trainAndInfer(int threads) {
        Generator data = new Generator(5);
        float[] images = new float[37 * 28 * 28];
        data.fillUniform(images, -1f, 1f);
        float[] labels = new float[37];
        for (int i = 0; i < labels.length; i++) {
            labels[i] = data.nextInt(10);
        }
        List<float[]> out = new ArrayList<>();
        try (CpuBackend backend = new CpuBackend(threads)) {
            Device dev = Device.of("cpu", backend);
            try (LeNet5 model = new LeNet5(dev, new Generator(42));
                 SGD sgd = new SGD(model.parameters(), 0.1f, 0.9f, 0f, false, 0f)) {
                CrossEntropyLoss loss = new CrossEntropyLoss();
                for (int step = 0; step < 3; step++) {
                    try (TensorScope s = TensorScope.open()) {
                        sgd.zeroGrad();
                        Tensor l = loss.forward(model.forward(Tensor.of(dev, images, 37, 1, 28, 28)),
                                Tensor.of(dev, labels, 37));
                        l.backward();
                        sgd.step();
                    }
                }
                for (Tensor p : model.parameters()) {
                    out.add(p.toArray());
                }
                model.eval();
                try (GradMode g = GradMode.noGrad(); TensorScope s = TensorScope.open()) {
                    out.add(model.forward(Tensor.of(dev, images, 37, 1, 28, 28)).toArray());
                }
            }
        }
        return out;
    }
}
