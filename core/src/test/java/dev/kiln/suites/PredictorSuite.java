package dev.kiln.suites;

import dev.kiln.core.Generator;
import dev.kiln.core.GradMode;
import dev.kiln.core.Tensor;
import dev.kiln.core.TensorScope;
import dev.kiln.data.Normalization;
import dev.kiln.inference.HotSwapPredictor;
import dev.kiln.inference.Prediction;
import dev.kiln.inference.Predictor;
import dev.kiln.inference.PredictorClosedException;
import dev.kiln.models.LeNet5;
import dev.kiln.nn.StateDict;
import dev.kiln.train.ModelFiles;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@link Predictor} on any backend: loading, folding, every input and output form, threads and hot swap. */
public class PredictorSuite extends DeviceSuite {

    /** A LeNet whose batch norms hold non-trivial running statistics (a few training forwards). */
    protected LeNet5 trainedLeNet(long seed) {
        LeNet5 model = new LeNet5(device(), new Generator(seed));
        try (TensorScope s = TensorScope.open()) {
            for (int i = 0; i < 4; i++) {
                model.forward(randn(seed * 10 + i, 16, 1, 28, 28).mul(2f).add(0.5f));
            }
        }
        return model;
    }

    protected static byte[][] images(int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        byte[][] out = new byte[n][784];
        for (byte[] img : out) {
            for (int i = 0; i < img.length; i++) {
                img[i] = (byte) r.nextInt(256);
            }
        }
        return out;
    }

    /** The hand-assembled path: eval, no grad, a scope, normalisation by hand, the unfolded model. */
    protected float[] referenceLogits(LeNet5 model, byte[][] images) {
        float[] x = new float[images.length * 784];
        for (int i = 0; i < images.length; i++) {
            for (int j = 0; j < 784; j++) {
                x[i * 784 + j] = Normalization.MNIST.apply(images[i][j] & 0xFF);
            }
        }
        boolean training = model.isTraining();
        model.eval();
        try (GradMode g = GradMode.noGrad(); TensorScope s = TensorScope.open()) {
            return model.forward(tensor(x, images.length, 1, 28, 28)).toArray();
        } finally {
            model.train(training);
        }
    }

    private Predictor.Options options() {
        return Predictor.Options.defaults().device(device());
    }

    private static float[] flat(float[][] rows) {
        int n = rows.length == 0 ? 0 : rows[0].length;
        float[] out = new float[rows.length * n];
        for (int i = 0; i < rows.length; i++) {
            System.arraycopy(rows[i], 0, out, i * n, n);
        }
        return out;
    }

    @Test
    @DisplayName("folded predictor from a file equals the unfolded eval model within 1e-4 relative + 1e-4 absolute")
    void foldedMatchesUnfolded(@TempDir Path dir) throws IOException {
        try (LeNet5 model = trainedLeNet(1)) {
            Path file = dir.resolve("lenet.safetensors");
            ModelFiles.save(file, model, Normalization.MNIST, java.util.Map.of());
            byte[][] imgs = images(37, 2);
            float[] want = referenceLogits(model, imgs);
            try (Predictor p = Predictor.load(file, options());
                 Predictor unfolded = Predictor.load(file, options().foldBatchNorm(false))) {
                assertEquals(4, p.foldedBatchNorms());
                assertEquals(0, unfolded.foldedBatchNorms());
                assertEquals(10, p.numClasses());
                assertEquals(784, p.inputSize());
                assertArrayEquals(new int[]{1, 28, 28}, p.inputShape());
                assertEquals(Normalization.MNIST, p.normalization());
                assertClose(want, flat(p.logits(imgs)), 1e-4, 1e-4, "folded logits");
                assertArrayEquals(want, flat(unfolded.logits(imgs)), "unfolded predictor = hand-assembled path");
            }
        }
    }

    @Test
    @DisplayName("bytes, stream, file and float[] inputs agree; the model itself is left untouched")
    void everyFormAgrees(@TempDir Path dir) throws IOException {
        try (LeNet5 model = trainedLeNet(3)) {
            StateDict before = model.stateDict();
            boolean wasTraining = model.isTraining();
            byte[] bytes = ModelFiles.toBytes(model, Normalization.MNIST);
            byte[][] imgs = images(9, 4);
            float[][] floats = new float[imgs.length][784];
            for (int i = 0; i < imgs.length; i++) {
                for (int j = 0; j < 784; j++) {
                    floats[i][j] = imgs[i][j] & 0xFF;
                }
            }
            try (Predictor fromBytes = Predictor.load(bytes, options());
                 Predictor fromStream = Predictor.load(new ByteArrayInputStream(bytes), options());
                 Predictor fromModel = Predictor.of(model, Normalization.MNIST, options())) {
                float[][] a = fromBytes.logits(imgs);
                assertArrayEquals(flat(a), flat(fromStream.logits(imgs)));
                assertArrayEquals(flat(a), flat(fromModel.logits(imgs)));
                assertArrayEquals(flat(a), flat(fromBytes.logits(floats)), "float[] raw pixels = byte[] pixels");
                float[] x = new float[imgs.length * 784];
                for (int i = 0; i < imgs.length; i++) {
                    for (int j = 0; j < 784; j++) {
                        x[i * 784 + j] = Normalization.MNIST.apply(imgs[i][j] & 0xFF);
                    }
                }
                try (TensorScope s = TensorScope.open()) {
                    Tensor out = fromBytes.logits(tensor(x, imgs.length, 1, 28, 28));
                    assertArrayEquals(new int[]{imgs.length, 10}, out.shape());
                    assertArrayEquals(flat(a), out.toArray(), "tensor input = normalised byte input");
                }
                int[] classes = fromBytes.classes(imgs);
                float[][] probs = fromBytes.probabilities(imgs);
                Prediction[] top = fromBytes.topK(imgs, 3);
                for (int i = 0; i < imgs.length; i++) {
                    float sum = 0;
                    int best = 0;
                    for (int c = 0; c < 10; c++) {
                        sum += probs[i][c];
                        if (a[i][c] > a[i][best]) {
                            best = c;
                        }
                    }
                    assertEquals(1f, sum, 1e-5f);
                    assertEquals(best, classes[i]);
                    assertEquals(best, top[i].best());
                    assertEquals(3, top[i].classes().length);
                    assertTrue(top[i].probabilities()[0] >= top[i].probabilities()[1]
                            && top[i].probabilities()[1] >= top[i].probabilities()[2]);
                    assertEquals(probs[i][top[i].classes()[1]], top[i].probabilities()[1]);
                }
            }
            assertEquals(wasTraining, model.isTraining());
            StateDict after = model.stateDict();
            for (String k : before.entries().keySet()) {
                assertArrayEquals(before.get(k).data(), after.get(k).data(), k);
            }
        }
    }

    @Test
    @DisplayName("batches of 0, 1 and more than maxBatchSize; bad images are named")
    void batchSizes() throws IOException {
        try (LeNet5 model = trainedLeNet(5);
             Predictor p = Predictor.load(ModelFiles.toBytes(model, Normalization.MNIST), options().maxBatchSize(16))) {
            assertEquals(0, p.classes(new byte[0][]).length);
            assertEquals(0, p.topK(new float[0][], 2).length);
            try (TensorScope s = TensorScope.open()) {
                assertArrayEquals(new int[]{0, 10}, p.logits(tensor(new float[0], 0, 1, 28, 28)).shape());
            }
            byte[][] imgs = images(40, 6);
            float[] all = flat(p.logits(imgs));
            float[] one = flat(p.logits(new byte[][]{imgs[39]}));
            assertClose(java.util.Arrays.copyOfRange(all, 390, 400), one, 1e-5, 1e-5, "image 39 alone vs in a chunked batch");
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> p.classes(new byte[][]{imgs[0], new byte[783]}));
            assertMessageContains(e, "image 1", "783", "784");
            e = assertThrows(IllegalArgumentException.class, () -> p.topK(imgs, 11));
            assertMessageContains(e, "11");
        }
    }

    @Test
    @DisplayName("a file without architecture or normalisation is refused with the reason")
    void incompleteModelFile(@TempDir Path dir) throws IOException {
        try (LeNet5 model = trainedLeNet(7)) {
            Path file = dir.resolve("plain.safetensors");
            ModelFiles.save(file, model, java.util.Map.of());
            IOException e = assertThrows(IOException.class, () -> Predictor.load(file, options()));
            assertMessageContains(e, "plain.safetensors", "normalisation");
            try (Predictor p = Predictor.load(file, options().normalization(Normalization.MNIST))) {
                assertEquals(10, p.numClasses());
            }
            dev.kiln.io.SafeTensors.write(file, model.stateDict(), java.util.Map.of());
            e = assertThrows(IOException.class, () -> Predictor.load(file, options()));
            assertMessageContains(e, "architecture");
        }
    }

    @Test
    @DisplayName("close waits for calls in flight; 8 threads score through hot swaps without a failed request")
    void hotSwap() throws Exception {
        try (LeNet5 a = trainedLeNet(11); LeNet5 b = trainedLeNet(12)) {
            byte[] bytesA = ModelFiles.toBytes(a, Normalization.MNIST);
            byte[] bytesB = ModelFiles.toBytes(b, Normalization.MNIST);
            byte[][] imgs = images(8, 13);
            int[] classesA;
            int[] classesB;
            try (Predictor pa = Predictor.load(bytesA, options()); Predictor pb = Predictor.load(bytesB, options())) {
                classesA = pa.classes(imgs);
                classesB = pb.classes(imgs);
            }
            HotSwapPredictor swap = new HotSwapPredictor(Predictor.load(bytesA, options()));
            AtomicBoolean stop = new AtomicBoolean();
            AtomicInteger served = new AtomicInteger();
            ExecutorService pool = Executors.newFixedThreadPool(8);
            try {
                List<Future<Integer>> workers = new ArrayList<>();
                for (int t = 0; t < 8; t++) {
                    workers.add(pool.submit(() -> {
                        int calls = 0;
                        while (!stop.get() || calls < 5) {
                            int[] got = swap.classes(imgs);
                            if (!java.util.Arrays.equals(got, classesA) && !java.util.Arrays.equals(got, classesB)) {
                                throw new AssertionError("a result from neither model: " + java.util.Arrays.toString(got));
                            }
                            calls++;
                            served.incrementAndGet();
                        }
                        return calls;
                    }));
                }
                for (int i = 0; i < 6; i++) {
                    Thread.sleep(30);
                    Predictor old = swap.current();
                    swap.swap(Predictor.load(i % 2 == 0 ? bytesB : bytesA, options()));
                    assertTrue(old.isClosed());
                    assertThrows(PredictorClosedException.class, () -> old.classes(imgs));
                }
                stop.set(true);
                for (Future<Integer> w : workers) {
                    assertTrue(w.get(60, TimeUnit.SECONDS) >= 5);
                }
            } finally {
                pool.shutdownNow();
                swap.close();
            }
            assertTrue(served.get() >= 40);
        }
    }

    @Test
    @DisplayName("an application's own architecture (Sequential with Linear+BatchNorm1d) round-trips through bytes, folded")
    void customArchitecture() throws IOException {
        dev.kiln.models.Architecture arch = new dev.kiln.models.Architecture("TinyMlp", new int[]{4}, d -> new dev.kiln.nn.Sequential(
                new dev.kiln.nn.Linear(d, new Generator(1), 4, 8), new dev.kiln.nn.BatchNorm1d(d, 8), new dev.kiln.nn.ReLU(),
                new dev.kiln.nn.Linear(d, new Generator(2), 8, 3)));
        try (dev.kiln.nn.Module mlp = arch.factory().apply(device())) {
            try (TensorScope s = TensorScope.open()) {
                mlp.forward(randn(5, 16, 4).mul(3f).add(1f));
            }
            byte[] bytes = ModelFiles.toBytes(mlp, arch, Normalization.NONE);
            IOException unknown = assertThrows(IOException.class, () -> Predictor.load(bytes, options()));
            assertMessageContains(unknown, "TinyMlp", "Options.architecture");
            float[][] x = new float[6][4];
            SplittableRandom r = new SplittableRandom(9);
            for (float[] row : x) {
                for (int j = 0; j < 4; j++) {
                    row[j] = (float) r.nextGaussian();
                }
            }
            float[] want;
            mlp.eval();
            try (GradMode g = GradMode.noGrad(); TensorScope s = TensorScope.open()) {
                want = mlp.forward(tensor(flat(x), 6, 4)).toArray();
            }
            try (Predictor p = Predictor.load(bytes, options().architecture(arch))) {
                assertEquals(1, p.foldedBatchNorms());
                assertEquals(3, p.numClasses());
                assertClose(want, flat(p.logits(x)), 1e-4, 1e-4, "folded MLP logits");
            }
        }
    }
}
