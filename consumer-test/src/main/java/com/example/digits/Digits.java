package com.example.digits;

import dev.kiln.core.Device;
import dev.kiln.core.Generator;
import dev.kiln.data.ArrayDataset;
import dev.kiln.data.IdxImages;
import dev.kiln.data.IdxLabels;
import dev.kiln.data.IdxReader;
import dev.kiln.data.Normalization;
import dev.kiln.inference.Predictor;
import dev.kiln.models.LeNet5;
import dev.kiln.nn.CrossEntropyLoss;
import dev.kiln.optim.SGD;
import dev.kiln.train.ModelFiles;
import dev.kiln.train.Trainer;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;

/** Trains LeNet-5 on the IDX files in a directory (MNIST's four files), saves it, and classifies the test images. */
public final class Digits {

    public static void main(String[] args) throws IOException {
        Path dir = Path.of(args.length > 0 ? args[0] : System.getenv("KILN_MNIST_DIR"));
        double accuracy = trainAndClassify(dir, Path.of("digits.safetensors"), 60_000, 1);
        System.out.printf("test accuracy: %.2f%%%n", 100 * accuracy);
    }

    public static double trainAndClassify(Path dir, Path modelFile, int trainImages, int epochs) throws IOException {
        // Kiln's IDX reader: any IDX image/label file (MNIST, Fashion-MNIST, EMNIST...), gzip-compressed or raw
        IdxImages images = IdxReader.readImages(idx(dir, "train-images-idx3-ubyte"));
        IdxLabels labels = IdxReader.readLabels(idx(dir, "train-labels-idx1-ubyte"));

        // training on the application's own arrays: one float[] per sample, one int label per sample
        int n = Math.min(trainImages, images.count());
        int pixels = images.rows() * images.cols();
        float[][] samples = new float[n][pixels];
        int[] classes = new int[n];
        for (int i = 0; i < n; i++) {
            for (int p = 0; p < pixels; p++) {
                samples[i][p] = Normalization.MNIST.apply(images.pixels()[i * pixels + p] & 0xFF);
            }
            classes[i] = labels.label(i);
        }
        Device device = Device.auto();                        // a GPU when one works, else the CPU
        try (LeNet5 model = new LeNet5(device, new Generator(42));
             SGD sgd = new SGD(model.parameters(), 0.1f, 0.9f, 0f, false, 0f)) {
            Trainer trainer = Trainer.builder().model(model).loss(new CrossEntropyLoss()).optimizer(sgd)
                    .device(device).epochs(epochs).batchSize(64).build();
            trainer.fit(new ArrayDataset(samples, classes, 1, images.rows(), images.cols()), null);
            // the file names its architecture and input normalisation: a Predictor needs nothing else
            ModelFiles.save(modelFile, model, Normalization.MNIST, Map.of("train_images", n, "epochs", epochs));
        }

        // scoring raw uint8 images; a Predictor is thread-safe and never changes the model
        IdxImages test = IdxReader.readImages(idx(dir, "t10k-images-idx3-ubyte"));
        IdxLabels testLabels = IdxReader.readLabels(idx(dir, "t10k-labels-idx1-ubyte"));
        byte[][] digits = new byte[test.count()][];
        for (int i = 0; i < digits.length; i++) {
            digits[i] = Arrays.copyOfRange(test.pixels(), i * pixels, (i + 1) * pixels);
        }
        try (Predictor predictor = Predictor.load(modelFile)) {
            int[] predicted = predictor.classes(digits);      // also topK(digits, 3), probabilities(digits)
            int correct = 0;
            for (int i = 0; i < digits.length; i++) {
                correct += predicted[i] == testLabels.label(i) ? 1 : 0;
            }
            return (double) correct / digits.length;
        }
    }

    /** The file as MNIST's site names it, gzip-compressed, or uncompressed without ".gz". */
    private static Path idx(Path dir, String name) {
        Path gz = dir.resolve(name + ".gz");
        return Files.exists(gz) ? gz : dir.resolve(name);
    }
}
