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
import static org.junit.jupiter.api.Assertions.assertFalse;
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
        for (String cmd : new String[]{"lenet", "resnet", "bn-demo", "running-stats-demo", "doctor"}) {
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
    @DisplayName("bn-demo --plot: manual and BatchNorm1d agree; the PNG is written where asked")
    void bnDemo(@TempDir Path tmp) throws Exception {
        Path png = tmp.resolve("bn.png");
        java.io.StringWriter out = new java.io.StringWriter();
        assertEquals(0, CliRunner.run(out, "bn-demo", "--device", "cpu", "--plot", png.toString()), out.toString());
        assertTrue(out.toString().contains("allclose(output, y, rtol=1e-4): True"), out.toString());
        byte[] head = java.util.Arrays.copyOf(Files.readAllBytes(png), 8);
        assertEquals((byte) 0x89, head[0]);
        assertEquals('P', head[1]);
    }

    @Test
    @DisplayName("running-stats-demo: statistics move in training and stay in eval")
    void runningStatsDemo() {
        java.io.StringWriter out = new java.io.StringWriter();
        assertEquals(0, CliRunner.run(out, "running-stats-demo", "--device", "cpu"), out.toString());
        assertTrue(out.toString().contains("Eval mode left the running statistics unchanged"), out.toString());
        assertTrue(out.toString().contains("Epoch 3:"), out.toString());
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
        assertEquals(1, m.getAsJsonArray("history").get(0).getAsJsonObject().get("epoch").getAsInt(), "epochs count from 1, as the log does");
        assertEquals(2, m.getAsJsonArray("history").get(1).getAsJsonObject().get("epoch").getAsInt());
        assertSnakeCase(m, "metrics");
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

    /** One naming style in the metrics file: every key snake_case. */
    private static void assertSnakeCase(com.google.gson.JsonElement e, String path) {
        if (e.isJsonObject()) {
            for (java.util.Map.Entry<String, com.google.gson.JsonElement> kv : e.getAsJsonObject().entrySet()) {
                assertTrue(kv.getKey().matches("[a-z0-9_]+"), path + "." + kv.getKey() + " is not snake_case");
                assertSnakeCase(kv.getValue(), path + "." + kv.getKey());
            }
        } else if (e.isJsonArray()) {
            for (com.google.gson.JsonElement x : e.getAsJsonArray()) {
                assertSnakeCase(x, path + "[]");
            }
        }
    }

    @Test
    @DisplayName("lenet --random-stream accepts kiln or pytorch only: anything else is a usage error (exit 2)")
    void randomStreamOption() {
        java.io.StringWriter out = new java.io.StringWriter();
        assertEquals(2, CliRunner.run(out, "lenet", "--random-stream", "numpy", "--device", "cpu"));
        assertTrue(out.toString().contains("--random-stream must be kiln or pytorch"), out.toString());
    }

    @Test
    @DisplayName("--help of every command: no picocli warnings, command summaries are whole sentences, nothing over 80 columns")
    void helpTextsAreClean() {
        java.io.PrintStream err = System.err;
        java.io.ByteArrayOutputStream warnings = new java.io.ByteArrayOutputStream();
        StringBuilder all = new StringBuilder();
        try {
            System.setErr(new java.io.PrintStream(warnings, true, java.nio.charset.StandardCharsets.UTF_8));
            for (String[] cmd : new String[][]{{}, {"lenet"}, {"bn-demo"}, {"running-stats-demo"}, {"doctor"}, {"bench"},
                    {"bench", "lenet"}, {"bench", "ops"}, {"bench", "bn"}, {"bench", "predictor"}}) {
                java.io.StringWriter out = new java.io.StringWriter();
                String[] args = java.util.Arrays.copyOf(cmd, cmd.length + 1);
                args[cmd.length] = "--help";
                assertEquals(0, CliRunner.run(out, args), String.join(" ", args));
                all.append(out);
            }
        } finally {
            System.setErr(err);
        }
        String text = all.toString();
        assertFalse(text.contains("picocli WARN") || warnings.toString().contains("picocli WARN"),
                "picocli warnings (a '%' in a description must be written '%%'): " + warnings);
        for (String line : text.split("\\R")) {
            assertTrue(line.length() <= 80, "help line over 80 columns: " + line);
        }
        // The command lists show each command's first description line: it must end a sentence, not stop mid-way.
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("(?m)^  ([a-z-]+) {2,}(.*(?:\\R {6,}.*)*)").matcher(text);
        int summaries = 0;
        while (m.find()) {
            String summary = m.group(2).replaceAll("\\s+", " ").trim();
            if (!m.group(1).startsWith("-")) {
                assertTrue(summary.endsWith("."), "summary of '" + m.group(1) + "' is cut off: " + summary);
                summaries++;
            }
        }
        assertTrue(summaries >= 8, "found " + summaries + " command summaries in:\n" + text);
    }
}
