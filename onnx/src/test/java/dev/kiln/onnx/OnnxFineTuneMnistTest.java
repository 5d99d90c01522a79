package dev.kiln.onnx;

import dev.kiln.core.Device;
import dev.kiln.core.GradMode;
import dev.kiln.core.Tensor;
import dev.kiln.core.TensorScope;
import dev.kiln.data.DataLoader;
import dev.kiln.data.ImageDataset;
import dev.kiln.data.MnistDirectory;
import dev.kiln.data.Normalization;
import dev.kiln.nn.CrossEntropyLoss;
import dev.kiln.optim.SGD;
import dev.kiln.train.EpochMetrics;
import dev.kiln.train.Trainer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The import's end to end: the batch-norm post's LeNetModel, exported by PyTorch, imports, fine-tunes one epoch
 * of MNIST in Kiln (SGD, lr 0.05, momentum 0.9, batch 64, on the CPU backend) and exports again with
 * {@link OnnxExporter}; the exported file loads back with the same logits. Needs the four MNIST files in
 * {@code KILN_MNIST_DIR}; skipped, saying so, without them.
 */
class OnnxFineTuneMnistTest {

    private static final Logger LOG = LoggerFactory.getLogger(OnnxFineTuneMnistTest.class);

    static Path mnist() {
        String dir = System.getenv("KILN_MNIST_DIR");
        return dir == null || dir.isBlank() || !Files.isDirectory(Path.of(dir)) ? null : Path.of(dir);
    }

    @Test
    void pytorchsLeNetImportsFineTunesOneEpochOfMnistAndExportsAgain(@TempDir Path out) throws Exception {
        Path dir = mnist();
        assumeTrue(dir != null, "KILN_MNIST_DIR is not set to a directory with the four MNIST files (CI sets it to"
                + " ../shared/data/mnist): the fine-tuning test needs real MNIST");
        ImageDataset mnist = MnistDirectory.read(dir, "KILN_MNIST_DIR", false);
        Device cpu = Device.cpu();
        long start = System.nanoTime();
        try (OnnxModule model = Onnx.load(OnnxImportGoldensTest.resource("lenet.onnx"), cpu);
             SGD sgd = SGD.builder().params(model.parameters()).lr(0.05f).momentum(0.9f).build();
             DataLoader train = DataLoader.builder(mnist.train()).batchSize(64).shuffle(true).seed(1)
                     .normalization(Normalization.MNIST).build();
             DataLoader test = DataLoader.builder(mnist.test()).batchSize(1000).shuffle(false)
                     .normalization(Normalization.MNIST).build()) {
            Trainer trainer = Trainer.builder().model(model).loss(new CrossEntropyLoss()).optimizer(sgd).device(cpu)
                    .epochs(1).seed(1).build();
            double before = trainer.evaluate(test).accuracy();
            List<EpochMetrics> history = trainer.fit(train, test);
            assertEquals(1, history.size());
            double after = history.get(0).testAccuracy();
            LOG.info("LeNetModel from PyTorch's ONNX export: test accuracy {} before, {} after one epoch in Kiln ({} s)",
                    before, after, String.format("%.1f", (System.nanoTime() - start) / 1e9));
            assertTrue(before < 0.5, "the exported model is untrained: " + before);
            assertTrue(after > 0.96, "one epoch of fine-tuning reaches over 96%: " + after);

            // and exports again: the file loads back with the same logits on test images
            Path exported = out.resolve("lenet-fine-tuned.onnx");
            OnnxExporter.of(model, 1, 28, 28).write(exported);
            int n = 500;
            float[] images = new float[n * 28 * 28];
            byte[] pixels = mnist.test().images();
            for (int i = 0; i < images.length; i++) {
                images[i] = pixels[i] & 0xff;
            }
            Normalization.MNIST.applyInPlace(images, 0, images.length);
            try (OnnxModule reloaded = Onnx.load(exported, cpu); TensorScope s = TensorScope.open();
                 GradMode ng = GradMode.noGrad()) {
                model.eval();
                float[] want = model.forward(Tensor.of(cpu, images, n, 1, 28, 28)).toArray();
                float[] got = reloaded.forward(Tensor.of(cpu, images, n, 1, 28, 28)).toArray();
                OnnxImportGoldensTest.assertClose("fine-tuned LeNet exported and imported again", want, got,
                        OnnxRoundTripTest.ATOL, OnnxRoundTripTest.RTOL);
                assertEquals(model.stateDict().entries().keySet(), reloaded.stateDict().entries().keySet());
            }
        }
    }
}
