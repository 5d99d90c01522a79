package com.example.consumer;

import dev.kiln.core.Device;
import dev.kiln.core.GradMode;
import dev.kiln.core.Tensor;
import dev.kiln.core.TensorScope;
import dev.kiln.inference.Prediction;
import dev.kiln.inference.Predictor;
import dev.kiln.models.LeNet5;
import dev.kiln.nn.CrossEntropyLoss;
import dev.kiln.optim.SGD;
import dev.kiln.train.Evaluation;
import dev.kiln.train.ModelFiles;
import dev.kiln.train.Trainer;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class PredictorFromBytesTest {

    @Test
    @DisplayName("a Predictor loaded from bytes gives the same classes as the trainer's evaluation, batch sizes 0..n")
    void bytesMatchTrainerEvaluation(@TempDir Path dir) throws Exception {
        try (LeNet5 model = Fixtures.trained(1, 4); SGD unused = new SGD(model.parameters(), 0f)) {
            int[] testLabels = new int[200];
            byte[][] test = Fixtures.images(2, testLabels);
            float[][] testFloats = Fixtures.normalised(test);
            Trainer trainer = Trainer.builder().model(model).loss(new CrossEntropyLoss()).optimizer(unused)
                    .device(Device.cpu()).build();
            Evaluation eval = trainer.evaluate(Fixtures.batches(testFloats, testLabels, 64));
            assertTrue(eval.accuracy() > 0.5, "the model learnt something: " + eval);

            // the classes the evaluation counted: the eval-mode model's argmax
            int[] evaluated = new int[test.length];
            model.eval();
            try (GradMode g = GradMode.noGrad(); TensorScope s = TensorScope.open()) {
                float[] flat = new float[test.length * 784];
                for (int i = 0; i < test.length; i++) {
                    System.arraycopy(testFloats[i], 0, flat, i * 784, 784);
                }
                float[] logits = model.forward(Tensor.of(Device.cpu(), flat, test.length, 1, 28, 28)).toArray();
                for (int i = 0; i < test.length; i++) {
                    int best = 0;
                    for (int c = 1; c < 10; c++) {
                        best = logits[i * 10 + c] > logits[i * 10 + best] ? c : best;
                    }
                    evaluated[i] = best;
                }
            }
            model.train();

            byte[] bytes = ModelFiles.toBytes(model, Fixtures.NORMALIZATION);
            try (Predictor p = Predictor.load(bytes)) {
                int[] classes = p.classes(test);
                assertArrayEquals(evaluated, classes);
                long correct = 0;
                for (int i = 0; i < classes.length; i++) {
                    correct += classes[i] == testLabels[i] ? 1 : 0;
                }
                assertEquals(eval.accuracy(), (double) correct / test.length, 0.0);
                assertEquals(0, p.classes(new byte[0][]).length);
                Prediction[] top = p.topK(new byte[][]{test[0]}, 3);
                assertEquals(classes[0], top[0].best());
            }
            // the same model through a file and its sidecar, written with the usual permissions
            Path file = dir.resolve("model.safetensors");
            ModelFiles.save(file, model, Fixtures.NORMALIZATION, Map.of("purpose", "consumer test"));
            try (Predictor p = Predictor.load(file); var in = Files.newInputStream(file); Predictor q = Predictor.load(in)) {
                assertArrayEquals(evaluated, p.classes(test));
                assertArrayEquals(evaluated, q.classes(test));
            }
            Path reference = Files.createFile(dir.resolve("reference"));
            if (Files.getFileStore(dir).supportsFileAttributeView("posix")) {
                assertEquals(Files.getPosixFilePermissions(reference), Files.getPosixFilePermissions(file), "umask, not 0600");
                assertEquals(Files.getPosixFilePermissions(reference), Files.getPosixFilePermissions(ModelFiles.sidecar(file)));
            }
        }
    }
}
