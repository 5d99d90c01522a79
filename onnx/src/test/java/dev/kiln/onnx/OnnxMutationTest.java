package dev.kiln.onnx;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Hostile variants of PyTorch's LeNet export under a small heap: {@link OnnxMutants} runs in a JVM started with
 * {@code -Xmx256m} and this test class path, so the heap bound holds however the suite itself is run.
 */
class OnnxMutationTest {

    @Test
    void everyMutantOfTheLeNetExportLoadsOrThrowsKilnFormatException() throws Exception {
        int mutants = OnnxMutants.mutants(Files.readAllBytes(OnnxMutants.lenet())).values().stream().mapToInt(List::size).sum();
        assertTrue(mutants >= 350, mutants + " mutants");
        String out = run(OnnxMutants.class.getName());
        assertTrue(out.contains("total " + mutants + " mutants, 0 findings"), out);
        assertTrue(!out.contains("FINDING"), out);
        java.util.regex.Matcher heap = java.util.regex.Pattern.compile("max heap (\\d+) MiB").matcher(out);
        assertTrue(heap.find() && Integer.parseInt(heap.group(1)) <= 256, out);
        // the mutants reach past the protobuf parser: the reader's and the builder's checks refuse them
        assertTrue(out.contains("initializer type edit: 20 mutants, 20 rejected"), out);
        assertTrue(out.matches("(?s).*graph structure edit: 30 mutants, \\d+ rejected, [1-9]\\d* ran.*"), out);
    }

    private static String run(String mainClass) throws IOException, InterruptedException {
        List<String> command = List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-Xmx256m",
                "--add-modules", "jdk.incubator.vector", "-Dorg.slf4j.simpleLogger.defaultLogLevel=error",
                "-cp", System.getProperty("java.class.path"), mainClass);
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        byte[] output = p.getInputStream().readAllBytes();
        assertTrue(p.waitFor(5, TimeUnit.MINUTES), "small-heap JVM did not finish");
        String out = new String(output, StandardCharsets.UTF_8);
        assertEquals(0, p.exitValue(), out);
        return out;
    }
}
