package dev.kiln.examples;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** The user's main job, end to end on the CPU: real MNIST, full 60k, one epoch, batch 64. */
class LeNetMnistEndToEndTest {

    @Test
    @DisplayName("LeNet-BN on real MNIST, CPU, 1 epoch, batch 64: test accuracy >= 98%")
    void oneEpochReaches98Percent(@TempDir Path tmp) throws Exception {
        Optional<Path> data = MnistFiles.find();
        assumeTrue(data.isPresent(), MnistFiles.SKIP);
        Path metrics = tmp.resolve("metrics.json");
        Path model = tmp.resolve("lenet.safetensors");
        StringWriter out = new StringWriter();
        int code = CliRunner.run(out, "lenet", "--data", data.get().toString(), "--epochs", "1", "--batch-size", "64",
                "--device", "cpu", "--progress", "log", "--metrics-json", metrics.toString(), "--save", model.toString());
        assertEquals(0, code, out.toString());
        JsonObject m = JsonParser.parseString(Files.readString(metrics)).getAsJsonObject();
        double accuracy = m.get("test_accuracy").getAsDouble();
        System.out.printf("LeNet-BN 1 epoch on CPU: test accuracy %.4f, %.0f images/s, %.1f s%n", accuracy,
                m.get("train_images_per_second").getAsDouble(), m.get("train_seconds").getAsDouble());
        assertTrue(accuracy >= 0.98, "test accuracy " + accuracy + " < 0.98");
        assertEquals(1, m.get("epochs").getAsInt());
        assertEquals("cpu", m.get("device").getAsString());
        assertTrue(m.get("data_source").getAsString().contains("canonical"), m.get("data_source").getAsString());
        JsonObject provenance = JsonParser.parseString(Files.readString(tmp.resolve("lenet.safetensors.json"))).getAsJsonObject();
        assertEquals(42, provenance.get("seed").getAsLong());
        assertTrue(provenance.getAsJsonObject("data").getAsJsonObject("md5").size() == 4);
    }
}
