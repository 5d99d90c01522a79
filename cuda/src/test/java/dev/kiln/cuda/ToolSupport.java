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

    /** The repository root (surefire runs in the module directory, cuda/). */
    static final Path ROOT = Path.of("").toAbsolutePath().getParent();

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
