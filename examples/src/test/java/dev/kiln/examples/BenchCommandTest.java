package dev.kiln.examples;

import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The benchmark commands run and print their tables (tiny settings: this checks wiring, not speed). */
class BenchCommandTest {

    @Test
    @DisplayName("bench lenet prints one row per batch size with images/s and allocation")
    void benchLenet() {
        java.io.StringWriter out = new java.io.StringWriter();
        assertEquals(0, CliRunner.run(out, "bench", "lenet", "--device", "cpu", "--batch-sizes", "4,8",
                "--warmup", "1", "--warmup-cap", "0", "--steps", "2", "--rounds", "1"), out.toString());
        String s = out.toString();
        assertTrue(s.contains("train img/s") && s.contains("alloc B/train step"), s);
        assertTrue(s.lines().anyMatch(l -> l.trim().startsWith("4 ")), s);
        assertTrue(s.lines().anyMatch(l -> l.trim().startsWith("8 ")), s);
    }

    @Test
    @DisplayName("bench resnet times the ResNet; bench ops --resnet lists each of its convolutions with calls per step in the JSON")
    void benchResNetAndItsConvolutions(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) throws Exception {
        java.io.StringWriter out = new java.io.StringWriter();
        assertEquals(0, CliRunner.run(out, "bench", "resnet", "--device", "cpu", "--batch-sizes", "2",
                "--warmup", "1", "--warmup-cap", "0", "--steps", "1", "--rounds", "1", "--pool", "4"), out.toString());
        assertTrue(out.toString().lines().anyMatch(l -> l.trim().startsWith("2 ")), out.toString());
        java.nio.file.Path json = dir.resolve("ops.json");
        out = new java.io.StringWriter();
        assertEquals(0, CliRunner.run(out, "bench", "ops", "--device", "cpu", "--no-lenet", "--no-large",
                "--resnet", "2", "--rounds", "1", "--warmup-cap", "0", "--filter", "layer3", "--json", json.toString()),
                out.toString());
        String doc = java.nio.file.Files.readString(json);
        // layer3: 3x3 stride 2, 1x1 shortcut and 3x3, each forward, backward data and backward weight
        assertEquals(9, doc.split("\"calls_per_step\"", -1).length - 1, doc);
        assertTrue(doc.contains("\"peak_flops\"") && doc.contains("resnet b2 layer3 3x3 backward weight"), doc);
        // the tests' JVM has the Vector API module: the peak is the register-resident vector FMA kernel's
        assertTrue(doc.contains("Vector API FMAs, 16 independent"), doc);
        assertTrue(!out.toString().contains(" b64 conv1"), "--no-lenet leaves LeNet out: " + out);
    }

    @Test
    @DisplayName("bench lenet rejects a batch of 1 with exit code 2; bench ops --help lists its options")
    void badUsageAndHelp() {
        assertEquals(2, CliRunner.run(new java.io.StringWriter(), "bench", "lenet", "--batch-sizes", "1"));
        java.io.StringWriter out = new java.io.StringWriter();
        assertEquals(0, CliRunner.run(out, "bench", "ops", "--help"));
        assertTrue(out.toString().contains("--filter"), out.toString());
    }

    @Test
    @DisplayName("bench memory measures one pass: the no-grad ResNet forward's tensor peak is its live activations")
    void benchMemory(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) throws java.io.IOException {
        java.io.StringWriter out = new java.io.StringWriter();
        java.nio.file.Path json = dir.resolve("eval.json");
        assertEquals(0, CliRunner.run(out, "bench", "memory", "--device", "cpu", "--model", "resnet", "--pass", "eval",
                "--batch", "8", "--json", json.toString()), out.toString());
        String doc = java.nio.file.Files.readString(json);
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("\"tensor_peak_bytes\"\\s*:\\s*(\\d+)").matcher(doc);
        assertTrue(m.find(), doc);
        long activation = 4L * 8 * 16 * 28 * 28;
        long peak = Long.parseLong(m.group(1));
        assertTrue(peak >= activation && peak <= 4 * activation + activation / 2, "tensor peak " + peak + " B: " + doc);
        assertTrue(out.toString().contains("resnet  eval") && out.toString().contains("tensors"), out.toString());
        assertEquals(0, CliRunner.run(out, "bench", "memory", "--device", "cpu", "--model", "lenet", "--pass", "train",
                "--batch", "4"), out.toString());
        assertEquals(2, CliRunner.run(new java.io.StringWriter(), "bench", "memory", "--pass", "infer"));
    }

    @Test
    @DisplayName("bench predictor prints one row per thread count, hand-assembled beside Predictor, and the two agree on the classes")
    void benchPredictor() {
        java.io.StringWriter out = new java.io.StringWriter();
        assertEquals(0, CliRunner.run(out, "bench", "predictor", "--threads", "1,2", "--batch-size", "8",
                "--seconds", "0.05", "--rounds", "1"), out.toString());
        String s = out.toString();
        assertTrue(s.contains("hand-assembled img/s") && s.contains("Predictor img/s"), s);
        assertTrue(s.contains("classes agree on 8/8 images"), s);
        assertTrue(s.lines().anyMatch(l -> l.trim().startsWith("1 ")), s);
        assertTrue(s.lines().anyMatch(l -> l.trim().startsWith("2 ")), s);
    }
}
