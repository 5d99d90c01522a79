package dev.kiln.suites;

import dev.kiln.core.Generator;
import dev.kiln.data.DataLoader;
import dev.kiln.data.ImageSplit;
import dev.kiln.data.Normalization;
import dev.kiln.models.LeNet5;
import dev.kiln.nn.CrossEntropyLoss;
import dev.kiln.nn.StateDict;
import dev.kiln.optim.SGD;
import dev.kiln.train.EpochMetrics;
import dev.kiln.train.ModelFiles;
import dev.kiln.train.Trainer;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The trainer, checkpoints and model files on any backend, with a small synthetic image set. */
public class TrainerSuite extends DeviceSuite {

    private static ImageSplit synthetic(int count, long seed) {
        java.util.SplittableRandom r = new java.util.SplittableRandom(seed);
        byte[] images = new byte[count * 784];
        byte[] labels = new byte[count];
        for (int i = 0; i < count; i++) {
            int label = r.nextInt(10);
            labels[i] = (byte) label;
            // A bright square whose position encodes the label, plus noise: learnable in a few steps.
            for (int p = 0; p < 784; p++) {
                images[i * 784 + p] = (byte) r.nextInt(40);
            }
            int row = 2 + (label / 5) * 12;
            int col = 2 + (label % 5) * 5;
            for (int y = row; y < row + 8; y++) {
                for (int x = col; x < col + 4; x++) {
                    images[i * 784 + y * 28 + x] = (byte) 230;
                }
            }
        }
        return new ImageSplit(count, 28, 28, images, labels);
    }

    private List<EpochMetrics> train(int epochs, Path checkpoint, Path resume, StateDict[] finalState) throws Exception {
        ImageSplit train = synthetic(320, 1);
        ImageSplit test = synthetic(100, 2);
        try (DataLoader tl = DataLoader.builder(train).batchSize(32).seed(5).normalization(Normalization.MNIST).build();
             DataLoader vl = DataLoader.builder(test).batchSize(50).shuffle(false).normalization(Normalization.MNIST).build();
             LeNet5 model = new LeNet5(device(), new Generator(9));
             SGD sgd = new SGD(model.parameters(), 0.05f, 0.9f, 0f, false, 0f)) {
            Trainer t = Trainer.builder().model(model).loss(new CrossEntropyLoss()).optimizer(sgd).device(device())
                    .epochs(epochs).seed(9).checkpoint(checkpoint).build();
            if (resume != null) {
                t.resumeFrom(resume);
            }
            List<EpochMetrics> history = t.fit(tl, vl);
            finalState[0] = model.stateDict();
            return history;
        }
    }

    @Test
    @DisplayName("resuming from an epoch-1 checkpoint gives bit-for-bit the same model as training straight through")
    void resumeIsExact(@TempDir Path tmp) throws Exception {
        StateDict[] straight = new StateDict[1];
        List<EpochMetrics> full = train(2, null, null, straight);
        Path ckpt = tmp.resolve("c.safetensors");
        StateDict[] ignored = new StateDict[1];
        train(1, ckpt, null, ignored);
        StateDict[] resumed = new StateDict[1];
        List<EpochMetrics> continued = train(2, null, ckpt, resumed);
        assertEquals(2, continued.size());
        assertEquals(full.get(1).trainLoss(), continued.get(1).trainLoss());
        for (String k : straight[0].entries().keySet()) {
            assertArrayEquals(straight[0].get(k).data(), resumed[0].get(k).data(), k);
        }
        assertEquals(20L, resumed[0].get("bn1.num_batches_tracked").longValue());
        assertTrue(full.get(1).trainAccuracy() > 0.5, "synthetic task should be learnt: " + full.get(1));
    }

    @Test
    @DisplayName("a saved model loads back into a fresh model with identical state")
    void modelFiles(@TempDir Path tmp) throws Exception {
        StateDict[] state = new StateDict[1];
        train(1, null, null, state);
        Path file = tmp.resolve("m.safetensors");
        try (LeNet5 a = new LeNet5(device(), new Generator(1)); LeNet5 b = new LeNet5(device(), new Generator(2))) {
            a.loadStateDict(state[0]);
            ModelFiles.save(file, a, java.util.Map.of("seed", 1));
            ModelFiles.load(file, b);
            StateDict sb = b.stateDict();
            for (String k : state[0].entries().keySet()) {
                assertArrayEquals(state[0].get(k).data(), sb.get(k).data(), k);
            }
        }
        assertTrue(java.nio.file.Files.readString(ModelFiles.sidecar(file)).contains("\"kiln_version\""));
    }

    @Test
    @DisplayName("a model file that does not fit the model is a KilnFormatException naming the file and both sides, and changes nothing")
    void modelFileOfAnotherModel(@TempDir Path tmp) throws Exception {
        Path file = tmp.resolve("lenet.safetensors");
        try (LeNet5 a = new LeNet5(device(), new Generator(1));
             dev.kiln.nn.Sequential other = new dev.kiln.nn.Sequential(new dev.kiln.nn.Linear(device(), new Generator(3), 4, 2))) {
            ModelFiles.save(file, a, java.util.Map.of("seed", 1));
            StateDict before = other.stateDict();
            dev.kiln.io.KilnFormatException e = org.junit.jupiter.api.Assertions.assertThrows(
                    dev.kiln.io.KilnFormatException.class, () -> ModelFiles.load(file, other));
            assertTrue(e.getMessage().contains(file.toString()), e.getMessage());
            assertTrue(e.getMessage().contains("missing key(s): 0.weight") && e.getMessage().contains("conv1.weight"),
                    e.getMessage());
            StateDict after = other.stateDict();
            for (String k : before.entries().keySet()) {
                assertArrayEquals(before.get(k).data(), after.get(k).data(), k);
            }
        }
    }
}
