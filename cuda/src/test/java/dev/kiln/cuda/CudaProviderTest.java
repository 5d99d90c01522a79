package dev.kiln.cuda;

import dev.kiln.backend.BackendProvider;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.ServiceLoader;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Probing and discovery: these run everywhere, GPU or not. */
class CudaProviderTest {

    @Test
    @DisplayName("the provider is found by ServiceLoader as 'cuda' with priority 100")
    void serviceLoader() {
        BackendProvider found = null;
        for (BackendProvider p : ServiceLoader.load(BackendProvider.class)) {
            if (p.name().equals("cuda")) {
                found = p;
            }
        }
        assertTrue(found instanceof CudaBackendProvider, "cuda provider not registered");
        assertEquals(100, found.priority());
    }

    @Test
    @DisplayName("unavailableReason is cached, quick, one line, and consistent with create()")
    void probeIsCheapAndConsistent() {
        CudaBackendProvider p = new CudaBackendProvider();
        Optional<String> first = p.unavailableReason();
        long t0 = System.nanoTime();
        Optional<String> second = p.unavailableReason();
        long micros = (System.nanoTime() - t0) / 1000;
        assertEquals(first, second);
        assertTrue(micros < 50_000, "cached probe took " + micros + " us");
        if (first.isPresent()) {
            assertFalse(first.get().contains("\n"), "reason must be one line: " + first.get());
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> p.create(java.util.Map.of()));
            assertTrue(e.getMessage().contains(first.get()), e.getMessage());
        }
    }

    @Test
    @DisplayName("no libcuda.so.1 on the search path: 'no libcuda.so.1 (no NVIDIA driver)'")
    void noDriver(@TempDir Path dir) {
        assertEquals(Optional.of("no libcuda.so.1 (no NVIDIA driver)"), CudaProbe.probe(LibrarySearchPath.only(List.of(dir))));
    }

    @Test
    @DisplayName("driver present but no cuDNN / no cuBLAS: the missing library is named")
    void missingLibraries(@TempDir Path dir) throws IOException {
        Files.createFile(dir.resolve("libcuda.so.1"));
        LibrarySearchPath path = LibrarySearchPath.only(List.of(dir));
        String r = CudaProbe.probe(path).orElseThrow();
        assertTrue(r.startsWith("cuDNN not found: libcudnn.so.9"), r);
        Files.createFile(dir.resolve("libcudnn.so.9"));
        r = CudaProbe.probe(path).orElseThrow();
        assertTrue(r.startsWith("cuBLAS not found: libcublas.so.12 or libcublas.so.13"), r);
    }

    @Test
    @DisplayName("the search path honours KILN_CUDA_LIBS-style directories first and finds files there")
    void searchPathOrder(@TempDir Path a, @TempDir Path b) throws IOException {
        Files.createFile(a.resolve("libcublas.so.13"));
        Files.createFile(b.resolve("libcublas.so.13"));
        Files.createFile(b.resolve("libcublas.so.12"));
        LibrarySearchPath path = LibrarySearchPath.only(List.of(a, b));
        assertEquals(Optional.of(a.resolve("libcublas.so.13")), path.find("libcublas.so.13"));
        assertEquals(Optional.of("12"), CudaLibraries.cublasMajor(path));
        assertEquals(Optional.of("13"), CudaLibraries.cublasMajor(LibrarySearchPath.only(List.of(a))));
    }

    @Test
    @DisplayName("options: tf32 off by default, index and workspace parsed, bad values named")
    void options() {
        CudaOptions o = CudaOptions.from(java.util.Map.of());
        assertFalse(o.tf32());
        assertEquals(0, o.deviceIndex());
        assertEquals(512L << 20, o.workspaceLimitBytes());
        CudaOptions p = CudaOptions.from(java.util.Map.of("index", "1", "tf32", "true", "workspaceMiB", "64"));
        assertTrue(p.tf32());
        assertEquals(1, p.deviceIndex());
        assertEquals(64L << 20, p.workspaceLimitBytes());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> CudaOptions.from(java.util.Map.of("index", "x")));
        assertTrue(e.getMessage().contains("index"), e.getMessage());
    }

    @Test
    @DisplayName("allocator size classes: 512-byte grain up to 1 MiB, 2 MiB above")
    void sizeClasses() {
        assertEquals(512, CachingAllocator.sizeClass(1));
        assertEquals(512, CachingAllocator.sizeClass(512));
        assertEquals(1024, CachingAllocator.sizeClass(513));
        assertEquals(1L << 20, CachingAllocator.sizeClass(1L << 20));
        assertEquals(2L << 20, CachingAllocator.sizeClass((1L << 20) + 1));
        assertEquals(4L << 20, CachingAllocator.sizeClass((2L << 20) + 1));
    }

    @Test
    @DisplayName("broadcast struct: strides are 0 along broadcast dimensions")
    void broadcastStruct() {
        int[] g = CudaBackend.broadcastStruct(new int[]{2, 3, 4}, new int[]{2, 1, 4}, new int[]{1, 3, 1});
        assertEquals(3, g[0]);
        assertEquals(List.of(2, 3, 4), List.of(g[1], g[2], g[3]));
        assertEquals(List.of(4, 0, 1), List.of(g[9], g[10], g[11]));
        assertEquals(List.of(0, 1, 0), List.of(g[17], g[18], g[19]));
    }
}
