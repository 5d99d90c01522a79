package dev.kiln.cpu;

import dev.kiln.core.Device;
import dev.kiln.core.Generator;
import dev.kiln.data.Normalization;
import dev.kiln.io.SafeTensors;
import dev.kiln.models.LeNet5;
import dev.kiln.train.ModelFiles;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Hostile model files under a small heap: each test starts a JVM with {@code -Xmx256m} and this test class path,
 * so the heap bound holds however the suite itself is run.
 */
class ModelFileMutationTest {

    private static final String HEAP = "-Xmx256m";

    @Test
    void everyMutantOfASavedModelLoadsOrThrowsKilnFormatException() throws Exception {
        int mutants = ModelFileMutants.mutants(ModelFileMutants.savedModel()).values().stream().mapToInt(List::size).sum();
        assertTrue(mutants >= 300, mutants + " mutants");
        String out = runSmallHeap(ModelFileMutants.class.getName());
        assertTrue(out.contains("total " + mutants + " mutants, 0 findings"), out);
        assertSmallHeap(out);
        assertTrue(!out.contains("FINDING"), out);
        // the mutants reach past the header parser: name, shape and metadata edits are refused by what loads them
        assertTrue(out.contains("tensor name edit: 30 mutants, 30 rejected"), out);
    }

    @Test
    void aRenamedTensorIsNamedWithBothSides() {
        byte[] model = ModelFileMutants.savedModel();
        byte[] renamed = new String(model, StandardCharsets.ISO_8859_1).replace("\"dense1.weight\"", "\"dense1.weighQ\"")
                .getBytes(StandardCharsets.ISO_8859_1);
        dev.kiln.io.KilnFormatException e = org.junit.jupiter.api.Assertions.assertThrows(
                dev.kiln.io.KilnFormatException.class, () -> dev.kiln.inference.Predictor.load(renamed,
                        dev.kiln.inference.Predictor.Options.defaults().device(Device.cpu())));
        String m = e.getMessage();
        assertTrue(m.startsWith("model bytes (" + renamed.length + " bytes): tensors do not fit LeNet5: "), m);
        assertTrue(m.contains("unexpected key(s): dense1.weighQ") && m.contains("missing key(s): dense1.weight"), m);
        assertTrue(m.contains("the file holds [") && m.contains("dense1.weighQ") && m.contains("the model expects [")
                && m.contains("conv1.weight"), m);
    }

    @Test
    void aModelWithA50MegabyteMetadataStringLoadsIn256Megabytes(@TempDir Path dir) throws Exception {
        LeNet5 model = new LeNet5(Device.cpu(), new Generator(1));
        Path file = dir.resolve("notes.safetensors");
        String notes = "n".repeat(50_000_000);
        SafeTensors.write(file, model.stateDict(), Map.of(ModelFiles.ARCHITECTURE_KEY, "LeNet5",
                ModelFiles.NORMALIZATION_KEY, "255.0 0.1307 0.3081", "notes", notes));
        model.close();
        String out = runSmallHeap(ModelFileMutants.class.getName(), "load", file.toString());
        assertTrue(out.matches("(?s).*loaded: 10 classes, metadata of 5000\\d{4} characters.*"), out);
        assertSmallHeap(out);
    }

    private static void assertSmallHeap(String out) {
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("max heap (\\d+) MiB").matcher(out);
        assertTrue(m.find(), out);
        assertTrue(Integer.parseInt(m.group(1)) <= 256, out);
    }

    private static String runSmallHeap(String mainClass, String... args) throws IOException, InterruptedException {
        List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                HEAP, "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-cp", System.getProperty("java.class.path"),
                mainClass));
        command.addAll(List.of(args));
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        byte[] output = p.getInputStream().readAllBytes();
        assertTrue(p.waitFor(5, TimeUnit.MINUTES), "small-heap JVM did not finish");
        String out = new String(output, StandardCharsets.UTF_8);
        assertEquals(0, p.exitValue(), out);
        return out;
    }
}
