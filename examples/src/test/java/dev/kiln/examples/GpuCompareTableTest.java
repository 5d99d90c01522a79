package dev.kiln.examples;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** {@code bench lenet --json} (eager and --graphs) feeds bench/compare_table.py, the table bench/gpu-compare prints. */
class GpuCompareTableTest {

    private static Path repoRoot() {
        for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
            if (Files.isRegularFile(p.resolve("bench/compare_table.py"))) {
                return p;
            }
        }
        return null;
    }

    @Test
    @DisplayName("bench lenet --json and --graphs write what compare_table.py turns into Kiln/PyTorch ratios")
    void tableFromRealBenchOutput(@TempDir Path dir) throws Exception {
        Path eager = dir.resolve("eager.json");
        Path graphs = dir.resolve("graphs.json");
        java.io.StringWriter out = new java.io.StringWriter();
        String[] common = {"bench", "lenet", "--device", "cpu", "--batch-sizes", "4", "--warmup", "4", "--warmup-cap", "0",
                "--steps", "2", "--rounds", "1", "--pool", "16"};
        assertEquals(0, CliRunner.run(out, concat(common, "--json", eager.toString())), out.toString());
        assertEquals(0, CliRunner.run(out, concat(common, "--graphs", "--json", graphs.toString())), out.toString());
        JsonObject g = JsonParser.parseString(Files.readString(graphs)).getAsJsonObject();
        JsonObject row = g.getAsJsonArray("throughput").get(0).getAsJsonObject();
        assertEquals("graphed", row.get("step").getAsString(), "the CPU records and replays the step");
        double kilnTrain = JsonParser.parseString(Files.readString(eager)).getAsJsonObject().getAsJsonArray("throughput")
                .get(0).getAsJsonObject().get("train_images_per_second").getAsDouble();
        assertTrue(kilnTrain > 0);

        Path root = repoRoot();
        assumeTrue(root != null && ToolCheck.onPath("python3"), "python3 and bench/compare_table.py are needed");
        Path torch = dir.resolve("pytorch.json");
        Files.writeString(torch, "{\"torch_version\": \"2.11\", \"device_name\": \"NVIDIA H100\", \"throughput\": "
                + "[{\"batch\": 4, \"train_images_per_second\": " + (kilnTrain / 2) + ", \"inference_images_per_second\": 1e9}]}");
        Process p = new ProcessBuilder(List.of("python3", root.resolve("bench/compare_table.py").toString(),
                eager.toString(), graphs.toString(), torch.toString(), "--date", "2026-11-24"))
                .redirectErrorStream(true).start();
        String table = new String(p.getInputStream().readAllBytes());
        assertTrue(p.waitFor(30, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), table);
        String line = table.lines().filter(l -> l.startsWith("| 4 |")).findFirst().orElseThrow(() -> new AssertionError(table));
        assertTrue(line.contains("| 2.00x |"), "Kiln eager is twice the made-up PyTorch rate: " + line);
        assertTrue(table.contains("NVIDIA H100") && table.contains("2026-11-24"), table);
    }

    @Test
    @DisplayName("bench bn --json feeds compare_table.py --bn: Kiln/PyTorch time per op and % of copy bandwidth")
    void bnTableFromRealBenchOutput(@TempDir Path dir) throws Exception {
        Path kiln = dir.resolve("bn.json");
        java.io.StringWriter out = new java.io.StringWriter();
        assertEquals(0, CliRunner.run(out, "bench", "bn", "--device", "cpu", "--shape", "4,3,16,16", "--rounds", "1",
                "--warmup-cap", "0", "--json", kiln.toString()), out.toString());
        com.google.gson.JsonArray rows = JsonParser.parseString(Files.readString(kiln)).getAsJsonObject().getAsJsonArray("rows");
        assertEquals(4, rows.size());
        assertEquals("device copy", rows.get(0).getAsJsonObject().get("op").getAsString());
        assertEquals(1.0, rows.get(0).getAsJsonObject().get("fraction_of_copy").getAsDouble(), 1e-12);
        double bothMs = rows.get(3).getAsJsonObject().get("ms").getAsDouble();
        assertEquals(5.0 * 4 * 3 * 16 * 16 * 4, rows.get(3).getAsJsonObject().get("bytes").getAsDouble(), 1e-9,
                "forward + backward moves x, y, x, dy and dx once each");
        assertTrue(bothMs > 0);

        Path root = repoRoot();
        assumeTrue(root != null && ToolCheck.onPath("python3"), "python3 and bench/compare_table.py are needed");
        Path torch = dir.resolve("pytorch-bn.json");
        Files.writeString(torch, "{\"torch_version\": \"2.11\", \"device_name\": \"NVIDIA H100\", \"shape\": [4, 3, 16, 16],"
                + " \"rows\": [{\"op\": \"bn forward + backward\", \"ms\": " + (bothMs * 2) + ", \"gb_per_s\": 1,"
                + " \"fraction_of_copy\": 0.5}]}");
        Process p = new ProcessBuilder(List.of("python3", root.resolve("bench/compare_table.py").toString(), "--bn",
                kiln.toString(), torch.toString())).redirectErrorStream(true).start();
        String table = new String(p.getInputStream().readAllBytes());
        assertTrue(p.waitFor(30, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), table);
        String line = table.lines().filter(l -> l.startsWith("| bn forward + backward |")).findFirst()
                .orElseThrow(() -> new AssertionError(table));
        assertTrue(line.contains("| 0.50x |") && line.contains("| 50% |"), "Kiln takes half the made-up PyTorch time: " + line);
    }

    private static String[] concat(String[] a, String... b) {
        String[] r = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, r, a.length, b.length);
        return r;
    }

    /** Whether a tool is on PATH. */
    static final class ToolCheck {
        static boolean onPath(String tool) {
            for (String d : System.getenv().getOrDefault("PATH", "").split(java.io.File.pathSeparator)) {
                if (Files.isExecutable(Path.of(d, tool))) {
                    return true;
                }
            }
            return false;
        }
    }
}
