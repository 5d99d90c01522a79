package dev.kiln.spark;

import dev.kiln.core.Device;
import dev.kiln.core.Generator;
import dev.kiln.core.Tensor;
import dev.kiln.core.TensorScope;
import dev.kiln.data.Normalization;
import dev.kiln.models.LeNet5;
import dev.kiln.nn.CrossEntropyLoss;
import dev.kiln.optim.SGD;
import dev.kiln.train.ModelFiles;

import java.util.SplittableRandom;

/** Small deterministic inputs and a briefly trained LeNet-5 for the Spark tests. */
final class TestModels {

    private TestModels() {
    }

    /** {@code count} images of 28x28 uint8 pixels: a class-dependent bar plus noise. */
    static byte[][] images(int count, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        byte[][] out = new byte[count][784];
        for (int i = 0; i < count; i++) {
            int label = label(i);
            for (int p = 0; p < 784; p++) {
                int bar = (p % 28) / 3 == label ? 200 : 0;
                out[i][p] = (byte) Math.min(255, bar + rnd.nextInt(56));
            }
        }
        return out;
    }

    static int label(int i) {
        return i % 10;
    }

    /** LeNet-5 after 40 SGD steps on {@link #images}, as self-contained bytes (MNIST normalisation). */
    static byte[] trainedLeNetBytes() {
        Device cpu = Device.cpu();
        byte[][] imgs = images(64, 5);
        float[] x = new float[64 * 784];
        float[] y = new float[64];
        for (int i = 0; i < 64; i++) {
            for (int p = 0; p < 784; p++) {
                x[i * 784 + p] = Normalization.MNIST.apply(imgs[i][p] & 0xFF);
            }
            y[i] = label(i);
        }
        try (LeNet5 model = new LeNet5(cpu, new Generator(3));
             SGD sgd = new SGD(model.parameters(), 0.1f, 0.9f, 0f, false, 0f)) {
            CrossEntropyLoss loss = new CrossEntropyLoss();
            for (int s = 0; s < 40; s++) {
                try (TensorScope scope = TensorScope.open()) {
                    sgd.zeroGrad();
                    loss.forward(model.forward(Tensor.of(cpu, x, 64, 1, 28, 28)), Tensor.of(cpu, y, 64)).backward();
                    sgd.step();
                }
            }
            return ModelFiles.toBytes(model, Normalization.MNIST);
        }
    }
}
