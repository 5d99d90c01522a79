package com.example.consumer;

import dev.kiln.core.Device;
import dev.kiln.core.Generator;
import dev.kiln.data.ArrayBatch;
import dev.kiln.data.ArrayDataset;
import dev.kiln.data.Normalization;
import dev.kiln.models.LeNet5;
import dev.kiln.nn.CrossEntropyLoss;
import dev.kiln.optim.SGD;
import dev.kiln.train.Trainer;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/** The application's own data: 28x28 uint8 images whose bright bar position is the class. */
final class Fixtures {

    static final Normalization NORMALIZATION = Normalization.bytes(0.2f, 0.35f);

    private Fixtures() {
    }

    /** {@code n} uint8 images; labels written into {@code labels}. */
    static byte[][] images(long seed, int[] labels) {
        SplittableRandom r = new SplittableRandom(seed);
        byte[][] out = new byte[labels.length][784];
        for (int i = 0; i < labels.length; i++) {
            labels[i] = r.nextInt(10);
            for (int p = 0; p < 784; p++) {
                out[i][p] = (byte) r.nextInt(60);
            }
            int row = 2 + (labels[i] / 5) * 12;
            int col = 2 + (labels[i] % 5) * 5;
            for (int y = row; y < row + 8; y++) {
                for (int x = col; x < col + 4; x++) {
                    out[i][y * 28 + x] = (byte) (200 + r.nextInt(56));
                }
            }
        }
        return out;
    }

    /** The images normalised as the model expects them. */
    static float[][] normalised(byte[][] images) {
        float[][] out = new float[images.length][784];
        for (int i = 0; i < images.length; i++) {
            for (int p = 0; p < 784; p++) {
                out[i][p] = NORMALIZATION.apply(images[i][p] & 0xFF);
            }
        }
        return out;
    }

    static List<ArrayBatch> batches(float[][] xs, int[] ys, int batch) {
        List<ArrayBatch> out = new ArrayList<>();
        for (int s = 0; s < xs.length; s += batch) {
            int e = Math.min(xs.length, s + batch);
            out.add(ArrayBatch.of(java.util.Arrays.copyOfRange(xs, s, e), java.util.Arrays.copyOfRange(ys, s, e), 1, 28, 28));
        }
        return out;
    }

    /** A LeNet trained for {@code epochs} on the application's own data set. */
    static LeNet5 trained(long seed, int epochs) {
        int[] ys = new int[512];
        float[][] xs = normalised(images(seed, ys));
        LeNet5 model = new LeNet5(Device.cpu(), new Generator(seed));
        try (SGD sgd = new SGD(model.parameters(), 0.05f, 0.9f, 0f, false, 0f)) {
            Trainer.builder().model(model).loss(new CrossEntropyLoss()).optimizer(sgd).device(Device.cpu())
                    .epochs(epochs).seed(seed).batchSize(32).build()
                    .fit(new ArrayDataset(xs, ys, 1, 28, 28), null);
        }
        return model;
    }
}
