package dev.kiln.examples;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The demos against what the batch-norm post's scripts print under PyTorch 1.13 ({@code goldens/post-demos.json},
 * written by {@code tools/pytorch_goldens.py}, which runs the post's code verbatim).
 */
class PostDemosTest {

    private static JsonObject goldens() throws IOException {
        try (InputStream in = PostDemosTest.class.getResourceAsStream("/goldens/post-demos.json")) {
            assertNotNull(in, "goldens/post-demos.json is missing: run /usr/bin/python3 tools/pytorch_goldens.py");
            return JsonParser.parseReader(new InputStreamReader(in, StandardCharsets.UTF_8)).getAsJsonObject();
        }
    }

    private static String run(String... args) {
        StringWriter out = new StringWriter();
        int code = CliRunner.run(out, args);
        assertEquals(0, code, out.toString());
        return out.toString().replace("\r\n", "\n");
    }

    @Test
    @DisplayName("running-stats-demo --seed 0 prints, character for character, what the post's script prints under PyTorch")
    void runningStatsDemoPrintsPyTorchsNumbers() throws IOException {
        String torch = goldens().get("running_stats_seed0").getAsString();
        String kiln = run("running-stats-demo", "--seed", "0", "--device", "cpu");
        // Values are printed to 4 decimals, as PyTorch prints them; Kiln's own float32 differences (1e-7) are far
        // below that, so the text is compared exactly.
        assertEquals(torch, kiln.substring(0, Math.min(kiln.length(), torch.length())));
        assertTrue(kiln.substring(torch.length()).contains("Eval mode left the running statistics unchanged"), kiln);
    }

    @Test
    @DisplayName("running-stats-demo --no-track-running-stats: no statistics (None), batch statistics in eval, PyTorch's output")
    void runningStatsDemoWithoutTracking() throws IOException {
        String torch = goldens().get("running_stats_seed0_untracked").getAsString();
        String kiln = run("running-stats-demo", "--seed", "0", "--no-track-running-stats", "--device", "cpu");
        assertEquals(torch, kiln.substring(0, Math.min(kiln.length(), torch.length())));
        assertTrue(kiln.contains("track_running_stats=False"), kiln);
    }

    @Test
    @DisplayName("bn-demo --seed 0: the post's x = (randn(20, 2) + 5) * 2, mean, variance, y and allclose True; no file without --plot")
    void bnDemoFollowsThePost() throws IOException {
        JsonObject g = goldens().getAsJsonObject("bn_demo_seed0");
        Path cwd = Path.of("").toAbsolutePath();
        List<Path> pngsBefore = pngs(cwd);
        String out = run("bn-demo", "--seed", "0", "--device", "cpu");
        assertEquals(pngsBefore, pngs(cwd), "bn-demo without --plot wrote a file");
        assertTrue(out.contains("torch.allclose(output, y, rtol=1e-4): True"), out);
        assertEquals(g.get("allclose").getAsBoolean(), true);
        JsonArray x = g.getAsJsonArray("x");
        JsonArray y = g.getAsJsonArray("y");
        List<String> rows = new ArrayList<>();
        for (String line : out.split("\n")) {
            if (line.matches("\\s*\\d+ \\|.*")) {
                rows.add(line);
            }
        }
        assertEquals(20, rows.size(), out);
        for (int i = 0; i < 20; i++) {
            String[] f = rows.get(i).replace("|", " ").trim().split("\\s+");
            // Printed to 4 decimals: within half a unit of the 4th decimal of PyTorch's values.
            for (int c = 0; c < 2; c++) {
                assertEquals(x.get(2 * i + c).getAsDouble(), Double.parseDouble(f[1 + c]), 5.001e-5, "x[" + i + ", " + c + "]");
                assertEquals(y.get(2 * i + c).getAsDouble(), Double.parseDouble(f[3 + c]), 5.001e-5, "y[" + i + ", " + c + "]");
            }
        }
        String mean = String.format(java.util.Locale.ROOT, "mean      feature 1 %8.4f   feature 2 %8.4f",
                g.getAsJsonArray("mean").get(0).getAsDouble(), g.getAsJsonArray("mean").get(1).getAsDouble());
        assertTrue(out.contains(mean), out + "\nexpected: " + mean);
    }

    private static List<Path> pngs(Path dir) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.filter(p -> p.toString().endsWith(".png")).sorted().toList();
        }
    }
}
