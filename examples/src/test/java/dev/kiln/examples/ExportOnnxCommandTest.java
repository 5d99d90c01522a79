package dev.kiln.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import dev.kiln.core.Device;
import dev.kiln.core.Generator;
import dev.kiln.data.ImageSplit;
import dev.kiln.data.MnistDirectory;
import dev.kiln.data.Normalization;
import dev.kiln.inference.Predictor;
import dev.kiln.models.LeNet5;
import dev.kiln.train.ModelFiles;

import java.io.StringWriter;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code ./kiln export-onnx}: a saved LeNet as ONNX, scored in ONNX Runtime Java as Kiln's Predictor scores it. */
class ExportOnnxCommandTest {

    @Test
    void aSavedLeNetExportsAndOnnxRuntimeGivesPredictorsLogitsOnRawPixels(@TempDir Path tmp) throws Exception {
        Path model = tmp.resolve("lenet.safetensors");
        try (LeNet5 net = new LeNet5(Device.cpu(), new Generator(3))) {
            ModelFiles.save(model, net, Normalization.MNIST, Map.of());
        }
        Path onnx = tmp.resolve("out/lenet.onnx");
        StringWriter out = new StringWriter();
        assertEquals(0, CliRunner.run(out, "export-onnx", model.toString(), onnx.toString(), "--bake-normalization",
                "--fold-batch-norm"), out.toString());
        assertTrue(out.toString().contains("raw values, normalised in the graph"), out.toString());
        byte[][] images = new byte[32][784];
        Random r = new Random(1);
        for (byte[] image : images) {
            r.nextBytes(image);
        }
        try (Predictor p = Predictor.load(model); OrtScorer ort = new OrtScorer(Files.readAllBytes(onnx))) {
            float[][] kiln = p.logits(images);
            float[][] onnxLogits = ort.logits(images);
            for (int i = 0; i < images.length; i++) {
                for (int c = 0; c < 10; c++) {
                    assertEquals(kiln[i][c], onnxLogits[i][c], 1e-5 + 1e-5 * Math.abs(kiln[i][c]), "image " + i + " class " + c);
                }
            }
        }
    }

    @Test
    void badInputsAreUsageErrorsOrFormatErrorsNamingTheFile(@TempDir Path tmp) throws Exception {
        StringWriter out = new StringWriter();
        assertEquals(2, CliRunner.run(out, "export-onnx", tmp.resolve("missing.safetensors").toString(),
                tmp.resolve("x.onnx").toString()));
        assertTrue(out.toString().contains("missing.safetensors: no such file"), out.toString());

        Path garbage = tmp.resolve("garbage.safetensors");
        Files.write(garbage, new byte[]{1, 2, 3, 4, 5, 6, 7, 8, 9});
        out = new StringWriter();
        assertEquals(1, CliRunner.run(out, "export-onnx", garbage.toString(), tmp.resolve("x.onnx").toString()));
        assertTrue(out.toString().contains("error: " + garbage), out.toString());

        Path bare = tmp.resolve("bare.safetensors");
        try (LeNet5 net = new LeNet5(Device.cpu(), new Generator(3))) {
            dev.kiln.io.SafeTensors.write(bare, net.stateDict(), Map.of());
        }
        out = new StringWriter();
        assertEquals(1, CliRunner.run(out, "export-onnx", bare.toString(), tmp.resolve("x.onnx").toString()));
        assertTrue(out.toString().contains("records no architecture"), out.toString());

        Path noNormalization = tmp.resolve("nonorm.safetensors");
        try (LeNet5 net = new LeNet5(Device.cpu(), new Generator(3))) {
            ModelFiles.save(noNormalization, net, Map.of());
        }
        out = new StringWriter();
        assertEquals(1, CliRunner.run(out, "export-onnx", noNormalization.toString(), tmp.resolve("x.onnx").toString(),
                "--bake-normalization"));
        assertTrue(out.toString().contains("records no input normalisation"), out.toString());
        assertFalse(Files.exists(tmp.resolve("x.onnx")));

        out = new StringWriter();
        assertEquals(2, CliRunner.run(out, "export-onnx", noNormalization.toString(), tmp.toString()));
        assertTrue(out.toString().contains("is a directory"), out.toString());
    }

    /**
     * The acceptance test: a LeNet trained as {@code ./kiln lenet --save} trains it (one epoch on 20,000
     * images), exported with its normalisation baked in, gives Kiln's Predictor's class on >= 99.9% of the 10,000
     * MNIST test images in ONNX Runtime.
     */
    @Test
    void aTrainedLeNetScoresTheMnistTestSetInOnnxRuntimeAsPredictorDoes(@TempDir Path tmp) throws Exception {
        Optional<Path> data = MnistFiles.find();
        assumeTrue(data.isPresent(), MnistFiles.SKIP);
        Path model = tmp.resolve("lenet.safetensors");
        StringWriter out = new StringWriter();
        assertEquals(0, CliRunner.run(out, "lenet", "--data", data.get().toString(), "--epochs", "1", "--limit-train",
                "20000", "--device", "cpu", "--progress", "log", "--save", model.toString()), out.toString());
        ImageSplit test = MnistDirectory.read(data.get(), "MNIST", false).test();
        int n = test.size();
        byte[][] images = new byte[n][];
        for (int i = 0; i < n; i++) {
            images[i] = java.util.Arrays.copyOfRange(test.images(), i * 784, (i + 1) * 784);
        }
        for (boolean fold : new boolean[]{true, false}) {
            Path onnx = tmp.resolve(fold ? "folded.onnx" : "plain.onnx");
            out = new StringWriter();
            assertEquals(0, fold ? CliRunner.run(out, "export-onnx", model.toString(), onnx.toString(),
                    "--bake-normalization", "--fold-batch-norm")
                    : CliRunner.run(out, "export-onnx", model.toString(), onnx.toString(), "--bake-normalization"),
                    out.toString());
            int same = 0;
            int correct = 0;
            try (Predictor p = Predictor.load(model); OrtScorer ort = new OrtScorer(Files.readAllBytes(onnx))) {
                for (int from = 0; from < n; from += 500) {
                    byte[][] batch = java.util.Arrays.copyOfRange(images, from, Math.min(n, from + 500));
                    int[] kiln = p.classes(batch);
                    int[] onnxClasses = ort.classes(batch);
                    for (int i = 0; i < batch.length; i++) {
                        same += kiln[i] == onnxClasses[i] ? 1 : 0;
                        correct += onnxClasses[i] == test.label(from + i) ? 1 : 0;
                    }
                }
            }
            double agreement = 100.0 * same / n;
            System.out.printf("export-onnx%s: ONNX Runtime and Kiln's Predictor give the same class on %d of %d MNIST"
                    + " test images (%.2f%%); ONNX Runtime accuracy %.2f%%%n", fold ? " --fold-batch-norm" : "", same, n,
                    agreement, 100.0 * correct / n);
            assertTrue(agreement >= 99.9, "agreement " + agreement + "% < 99.9%");
        }
    }

    /** Scores raw MNIST bytes with an ONNX model whose normalisation is baked in. */
    static final class OrtScorer implements AutoCloseable {
        private final OrtEnvironment env = OrtEnvironment.getEnvironment();
        private final OrtSession session;

        OrtScorer(byte[] model) throws Exception {
            session = env.createSession(model, new OrtSession.SessionOptions());
        }

        float[][] logits(byte[][] images) throws Exception {
            float[] x = new float[images.length * 784];
            for (int i = 0; i < images.length; i++) {
                for (int j = 0; j < 784; j++) {
                    x[i * 784 + j] = images[i][j] & 0xff;
                }
            }
            try (OnnxTensor t = OnnxTensor.createTensor(env, FloatBuffer.wrap(x), new long[]{images.length, 1, 28, 28});
                 OrtSession.Result r = session.run(Map.of("input", t))) {
                return (float[][]) r.get(0).getValue();
            }
        }

        int[] classes(byte[][] images) throws Exception {
            float[][] logits = logits(images);
            int[] c = new int[logits.length];
            for (int i = 0; i < logits.length; i++) {
                for (int k = 1; k < logits[i].length; k++) {
                    if (logits[i][k] > logits[i][c[i]]) {
                        c[i] = k;
                    }
                }
            }
            return c;
        }

        @Override
        public void close() throws Exception {
            session.close();
        }
    }
}
