package dev.kiln.cuda;

import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The pip layout of CUDA 13 wheels (nvidia-cublas puts libcublas.so.13 in nvidia/cu13/lib, nvidia-cudnn-cu13 puts
 * libcudnn.so.9 in nvidia/cudnn/lib; {@code nvidia} is a namespace package) is found through the interpreter on the
 * PATH with no setting, as on a GPU host whose {@code python3} is a virtual environment with PyTorch.
 */
class LibrarySearchPathPipTest {

    private static Path touch(Path p) throws IOException {
        Files.createDirectories(p.getParent());
        return Files.write(p, new byte[0]);
    }

    @Test
    @DisplayName("nvidia/*/lib of the python3 on the PATH (namespace package, CUDA 13 wheel layout) is searched")
    void findsCuda13Wheels(@TempDir Path site) throws IOException {
        ToolSupport.requireTool("python3");
        Path cublas = touch(site.resolve("nvidia/cu13/lib/libcublas.so.13"));
        Path cudnn = touch(site.resolve("nvidia/cudnn/lib/libcudnn.so.9"));
        LibrarySearchPath path = new LibrarySearchPath(List.of(), true, true,
                List.of("env", "PYTHONPATH=" + site, "python3"));
        List<Path> pip = path.pipDirectories();
        assertTrue(pip.contains(site.resolve("nvidia/cu13/lib")) && pip.contains(site.resolve("nvidia/cudnn/lib")),
                "pip directories: " + pip);
        assertEquals(Optional.of(cublas), path.find("libcublas.so.13"));
        assertEquals(Optional.of(cudnn), path.find("libcudnn.so.9"));
    }

    @Test
    @DisplayName("the interpreter's own site-packages count even when nvidia is not importable from it")
    void sitePackagesWithoutImport() {
        ToolSupport.requireTool("python3");
        Optional<String> out = LibrarySearchPath.run(List.of("python3", "-c", LibrarySearchPath.SITE_PACKAGES_SCRIPT), 10);
        assertTrue(out.isPresent() && out.get().lines().anyMatch(l -> l.contains("-packages")),
                "site-packages printed: " + out);
    }

    @Test
    @DisplayName("a probe command that hangs (its child too) is killed at its timeout instead of hanging the JVM")
    void hangingProbeTimesOut() {
        ToolSupport.requireTool("sh");
        long t0 = System.nanoTime();
        Optional<String> out = LibrarySearchPath.run(List.of("sh", "-c", "sleep 30 & echo started; exec sleep 30"), 1);
        long seconds = (System.nanoTime() - t0) / 1_000_000_000L;
        assertEquals(Optional.empty(), out);
        assertTrue(seconds < 10, "returned after " + seconds + " s");
    }

    @Test
    @DisplayName("the search path includes /usr/local/nvidia/lib64, where NVIDIA's container runtime puts the driver")
    void containerDriverDirectory() {
        assertTrue(LibrarySearchPath.fromEnvironment().directories().contains(Path.of("/usr/local/nvidia/lib64")));
    }
}
