package dev.kiln.examples;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.kiln.core.Device;
import dev.kiln.inference.Predictor;
import dev.kiln.train.ModelFiles;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code ./kiln resnet} end to end on small synthetic MNIST files: train, save, serve back with every batch norm folded. */
class ResNetCommandTest {

    @Test
    @DisplayName("kiln resnet trains, saves a model the Predictor serves with 15 batch norms folded and the trainer's test accuracy, writes metrics and a plot")
    void trainsSavesAndServes(@TempDir Path tmp) throws Exception {
        Path data = SyntheticMnist.write(tmp.resolve("mnist"), 64, 40);
        Path model = tmp.resolve("resnet.safetensors");
        Path metrics = tmp.resolve("metrics.json");
        Path plot = tmp.resolve("resnet.png");
        StringWriter out = new StringWriter();
        int code = CliRunner.run(out, "resnet", "--data", data.toString(), "--epochs", "1", "--batch-size", "16",
                "--eval-batch-size", "20", "--device", "cpu", "--progress", "none", "--save", model.toString(),
                "--metrics-json", metrics.toString(), "--plot", plot.toString());
        assertEquals(0, code, out.toString());
        assertTrue(out.toString().contains("15 of 15 batch norms folded"), out.toString());
        JsonObject m = JsonParser.parseString(Files.readString(metrics)).getAsJsonObject();
        assertEquals(15, m.get("folded_batch_norms").getAsInt());
        // The Predictor's folded model and the trainer's unfolded one differ by float rounding only: on 40 images
        // that may flip a near tie at most.
        assertEquals(m.get("test_accuracy").getAsDouble(), m.get("served_test_accuracy").getAsDouble(), 1.0 / 40 + 1e-9);
        assertTrue(Files.size(plot) > 0);
        assertTrue(Files.exists(ModelFiles.sidecar(model)));
        try (Predictor p = Predictor.load(model, Predictor.Options.defaults().device(Device.cpu()))) {
            assertEquals("ResNet", p.architecture().name());
            assertEquals(10, p.numClasses());
        }
    }

    @Test
    @DisplayName("kiln resnet refuses bad options before loading anything")
    void badOptions() {
        StringWriter out = new StringWriter();
        assertEquals(2, CliRunner.run(out, "resnet", "--batch-size", "1"));
        assertTrue(out.toString().contains("--batch-size must be in [2, 65536]"), out.toString());
        assertEquals(2, CliRunner.run(out, "resnet", "--label-smoothing", "2"));
        assertEquals(2, CliRunner.run(out, "resnet", "--weight-decay", "-1"));
    }
}
