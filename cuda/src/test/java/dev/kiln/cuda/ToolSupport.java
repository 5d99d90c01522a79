package dev.kiln.cuda;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** Running external tools (nvcc, ptxas, gcc, readelf, nm) from tests, skipping with the reason when one is absent. */
final class ToolSupport {

    /**
     * The repository root: {@code -Dkiln.repo.root}, else the nearest directory at or above the working directory
     * holding tools/build-ptx.sh (surefire runs in cuda/, bench/gpu-run in the root). Tests that need the sources
     * call {@link #requireSources()}.
     */
    static final Path ROOT = findRoot();

    private static Path findRoot() {
        String prop = System.getProperty("kiln.repo.root");
        if (prop != null) {
            return Path.of(prop).toAbsolutePath();
        }
        for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
            if (Files.isRegularFile(p.resolve("tools/build-ptx.sh"))) {
                return p;
            }
        }
        return Path.of("").toAbsolutePath();
    }

    static void requireSources() {
        assumeTrue(Files.isRegularFile(ROOT.resolve("cuda/src/main/native/cublas12_shim/symbols.txt")),
                "the Kiln sources are not here (run from the repository, or set -Dkiln.repo.root)");
    }

    private ToolSupport() {
    }

    static boolean onPath(String tool) {
        for (String dir : System.getenv().getOrDefault("PATH", "").split(":")) {
            if (!dir.isEmpty() && Files.isExecutable(Path.of(dir, tool))) {
                return true;
            }
        }
        return false;
    }

    static void requireTool(String tool) {
        assumeTrue(onPath(tool), tool + " is not on the PATH");
    }

    record Result(int exit, String out) {
    }

    static Result run(Path dir, List<String> cmd) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true).start();
        byte[] out = p.getInputStream().readAllBytes();
        if (!p.waitFor(300, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            fail("timed out: " + cmd);
        }
        return new Result(p.exitValue(), new String(out, StandardCharsets.UTF_8));
    }

    static String check(Path dir, String... cmd) throws IOException, InterruptedException {
        Result r = run(dir, List.of(cmd));
        if (r.exit() != 0) {
            fail(String.join(" ", cmd) + " exited " + r.exit() + ":\n" + r.out());
        }
        return r.out();
    }
}
