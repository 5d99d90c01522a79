package dev.kiln.examples;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

class CommandLineTest {

    @Test
    @DisplayName("a bad option gives a one-line error, the usage, and exit code 2")
    void badOption() {
        java.io.StringWriter out = new java.io.StringWriter();
        assertEquals(2, CliRunner.run(out, "lenet", "--bogus"));
        assertTrue(out.toString().startsWith("kiln: Unknown option: '--bogus'"), out.toString());
        assertTrue(out.toString().contains("Usage: kiln lenet"), out.toString());
        out = new java.io.StringWriter();
        assertEquals(2, CliRunner.run(out, "lenet", "--epochs", "0"));
        assertTrue(out.toString().contains("--epochs must be >= 1"), out.toString());
        assertEquals(2, CliRunner.run(new java.io.StringWriter(), "no-such-command"));
    }

    @Test
    @DisplayName("--help of every sub-command exits 0 and lists its options")
    void help() {
        for (String cmd : new String[]{"lenet", "bn-demo", "running-stats-demo", "doctor"}) {
            java.io.StringWriter out = new java.io.StringWriter();
            assertEquals(0, CliRunner.run(out, cmd, "--help"), cmd);
            assertTrue(out.toString().contains("Usage: kiln " + cmd), out.toString());
        }
        java.io.StringWriter out = new java.io.StringWriter();
        assertEquals(0, CliRunner.run(out, "--help"));
        assertTrue(out.toString().contains("running-stats-demo"));
    }

    @Test
    @DisplayName("--data pointing at a directory without MNIST fails naming the missing files, exit 1")
    void authoritativeDataDir(@TempDir Path empty) {
        java.io.StringWriter out = new java.io.StringWriter();
        assertEquals(1, CliRunner.run(out, "lenet", "--data", empty.toString(), "--device", "cpu"));
        assertTrue(out.toString().contains("train-images-idx3-ubyte"), out.toString());
    }

    @Test
    @DisplayName("bn-demo: manual and BatchNorm1d agree; a PNG is written")
    void bnDemo(@TempDir Path tmp) throws Exception {
        Path png = tmp.resolve("bn.png");
        java.io.StringWriter out = new java.io.StringWriter();
        assertEquals(0, CliRunner.run(out, "bn-demo", "--device", "cpu", "--plot", png.toString()), out.toString());
        assertTrue(out.toString().contains("AGREE"), out.toString());
        byte[] head = java.util.Arrays.copyOf(Files.readAllBytes(png), 8);
        assertEquals((byte) 0x89, head[0]);
        assertEquals('P', head[1]);
    }

    @Test
    @DisplayName("running-stats-demo: statistics move in training and stay in eval")
    void runningStatsDemo() {
        java.io.StringWriter out = new java.io.StringWriter();
        assertEquals(0, CliRunner.run(out, "running-stats-demo", "--device", "cpu"), out.toString());
        assertTrue(out.toString().contains("eval mode left the running statistics unchanged"), out.toString());
        assertTrue(out.toString().contains("num_batches_tracked 15"), out.toString());
    }

    @Test
    @DisplayName("doctor reports the CPU backend and says when there is no GPU")
    void doctor() {
        java.io.StringWriter out = new java.io.StringWriter();
        assertEquals(0, CliRunner.run(out, "doctor"));
        assertTrue(out.toString().contains("cpu: OK"), out.toString());
    }

    @Test
    @DisplayName("lenet on 512 images: checkpoint, resume continues the history, metrics JSON, model + provenance, plot")
    void shortRunWithArtifacts(@TempDir Path tmp) throws Exception {
        Optional<Path> data = MnistFiles.find();
        assumeTrue(data.isPresent(), MnistFiles.SKIP);
        Path ckpt = tmp.resolve("ckpt.safetensors");
        Path first = tmp.resolve("first.json");
        Path metrics = tmp.resolve("m.json");
        java.io.StringWriter out = new java.io.StringWriter();
        int code = CliRunner.run(out, "lenet", "--data", data.get().toString(), "--limit-train", "512", "--epochs", "1",
                "--device", "cpu", "--progress", "none", "--checkpoint", ckpt.toString(), "--metrics-json", first.toString());
        assertEquals(0, code, out.toString());
        assertTrue(Files.exists(ckpt));
        out = new java.io.StringWriter();
        code = CliRunner.run(out, "lenet", "--data", data.get().toString(), "--limit-train", "512", "--epochs", "2",
                "--device", "cpu", "--progress", "none", "--resume", ckpt.toString(), "--metrics-json", metrics.toString(),
                "--plot", tmp.resolve("p.png").toString(), "--save", tmp.resolve("model.safetensors").toString());
        assertEquals(0, code, out.toString());
        JsonObject m = JsonParser.parseString(Files.readString(metrics)).getAsJsonObject();
        JsonObject f = JsonParser.parseString(Files.readString(first)).getAsJsonObject();
        assertEquals(2, m.get("epochs").getAsInt(), "resumed run continues the history");
        assertEquals(f.getAsJsonArray("history").get(0), m.getAsJsonArray("history").get(0),
                "epoch 1 of the resumed run is the checkpointed one");
        double acc = m.get("test_accuracy").getAsDouble();
        assertTrue(acc >= 0 && acc <= 1, m.toString());
        assertTrue(Files.size(tmp.resolve("p.png")) > 1000);
        assertTrue(Files.exists(tmp.resolve("model.safetensors.json")));
        assertEquals(2, JsonParser.parseString(Files.readString(tmp.resolve("model.safetensors.json"))).getAsJsonObject()
                .getAsJsonObject("hyperparameters").get("epochs").getAsInt());
        // the saved file alone scores MNIST: the Predictor's accuracy on the test set is the run's (folded batch
        // norm may flip an exact near-tie, hence 2 images of slack)
        dev.kiln.data.ImageSplit test = dev.kiln.data.MnistDirectory.read(data.get(), "test", false).test();
        byte[][] images = new byte[test.size()][];
        for (int i = 0; i < images.length; i++) {
            images[i] = java.util.Arrays.copyOfRange(test.images(), i * 784, (i + 1) * 784);
        }
        try (dev.kiln.inference.Predictor p = dev.kiln.inference.Predictor.load(tmp.resolve("model.safetensors"),
                dev.kiln.inference.Predictor.Options.defaults().device(dev.kiln.core.Device.cpu()))) {
            int[] classes = p.classes(images);
            int correct = 0;
            for (int i = 0; i < classes.length; i++) {
                correct += classes[i] == test.label(i) ? 1 : 0;
            }
            assertEquals(acc, (double) correct / classes.length, 2.0 / classes.length);
        }
    }
}
