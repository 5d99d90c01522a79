package dev.kiln.cuda;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Finds and pre-loads, by absolute path and in dependency order, the CUDA libraries JCuda's natives link to, so the
 * dynamic linker satisfies their {@code NEEDED} entries by SONAME whatever the library path:
 * <ul>
 *   <li>{@code libcuda.so.1} (the driver; needed by libJCudaDriver);</li>
 *   <li>cuBLAS: {@code libcublasLt.so.12} + {@code libcublas.so.12} (needed by libJCublas2); on a CUDA-13-only host,
 *       {@code libcublasLt.so.13} + {@code libcublas.so.13} and then the bundled {@code libcublas.so.12}
 *       compatibility shim, which forwards every symbol to libcublas.so.13 (see docs/cuda.md);</li>
 *   <li>cuDNN 9: {@code libcudnn.so.9} after its sub-libraries ({@code libcudnn_graph.so.9}, {@code _ops}, {@code _cnn},
 *       ... from the same directory, best effort), needed by libJCudnn.</li>
 * </ul>
 * {@link #load} runs once per search path and remembers its result (or failure).
 */
public final class CudaLibraries {

    private static final Logger LOG = LoggerFactory.getLogger(CudaLibraries.class);
    static final String SHIM_RESOURCE = "/dev/kiln/cuda/native/linux-x86_64/libcublas.so.12";
    private static final List<String> CUDNN_SUBLIBS = List.of("libcudnn_graph.so.9", "libcudnn_engines_precompiled.so.9",
            "libcudnn_ops.so.9", "libcudnn_cnn.so.9", "libcudnn_adv.so.9", "libcudnn_heuristic.so.9",
            "libcudnn_engines_runtime_compiled.so.9");

    private static Loaded loaded;
    private static RuntimeException failure;

    /** What was loaded from where; {@code cublasShim} says whether libcublas.so.12 is Kiln's forwarding shim. */
    public record Loaded(Map<String, Path> libraries, boolean cublasShim) {
    }

    private CudaLibraries() {
    }

    /** Which cuBLAS major this host offers, without loading anything: "12", "13", or empty. */
    static Optional<String> cublasMajor(LibrarySearchPath path) {
        if (path.find("libcublas.so.12").isPresent()) {
            return Optional.of("12");
        }
        if (path.find("libcublas.so.13").isPresent()) {
            return Optional.of("13");
        }
        return Optional.empty();
    }

    /** Loads everything (once); throws {@link IllegalStateException} naming the missing library and the search path. */
    public static synchronized Loaded load(LibrarySearchPath path) {
        if (loaded != null) {
            return loaded;
        }
        if (failure != null) {
            throw failure;
        }
        try {
            loaded = doLoad(path);
            return loaded;
        } catch (RuntimeException | LinkageError e) {
            failure = e instanceof RuntimeException re ? re : new IllegalStateException(e.toString(), e);
            throw failure;
        }
    }

    /** The result of an earlier {@link #load}, if any. */
    public static synchronized Optional<Loaded> loaded() {
        return Optional.ofNullable(loaded);
    }

    private static Loaded doLoad(LibrarySearchPath path) {
        Map<String, Path> done = new LinkedHashMap<>();
        path.find("libcuda.so.1").ifPresent(p -> systemLoad("libcuda.so.1", p, done));

        boolean shim = false;
        Optional<Path> cublas12 = path.find("libcublas.so.12");
        if (cublas12.isPresent()) {
            path.find("libcublasLt.so.12").ifPresent(p -> systemLoad("libcublasLt.so.12", p, done));
            systemLoad("libcublas.so.12", cublas12.get(), done);
        } else {
            Path cublas13 = path.find("libcublas.so.13").orElseThrow(() -> new IllegalStateException(
                    "cuBLAS not found: neither libcublas.so.12 nor libcublas.so.13 in " + path
                            + " (set KILN_CUDA_LIBS to the directory that holds it)"));
            path.find("libcublasLt.so.13").ifPresent(p -> systemLoad("libcublasLt.so.13", p, done));
            systemLoad("libcublas.so.13", cublas13, done);
            Path shimFile = extractShim();
            systemLoad("libcublas.so.12", shimFile, done);
            shim = true;
            LOG.info("CUDA-13 host: libcublas.so.12 is Kiln's compatibility shim forwarding to {}", cublas13);
        }

        Path cudnn = path.find("libcudnn.so.9").orElseThrow(() -> new IllegalStateException(
                "cuDNN not found: libcudnn.so.9 in " + path + " (set KILN_CUDA_LIBS to the directory that holds it)"));
        for (String nvrtc : List.of("libnvrtc.so.13", "libnvrtc.so.12")) {
            Optional<Path> p = path.find(nvrtc);
            if (p.isPresent()) {
                tryLoad(nvrtc, p.get(), done);
                break;
            }
        }
        for (String sub : CUDNN_SUBLIBS) {
            Path p = cudnn.resolveSibling(sub);
            if (Files.exists(p)) {
                tryLoad(sub, p, done);
            }
        }
        systemLoad("libcudnn.so.9", cudnn, done);
        if (LOG.isDebugEnabled()) {
            // the resolved file names carry the versions (libcudnn.so.9 -> libcudnn.so.9.10.2)
            for (Map.Entry<String, Path> e : done.entrySet()) {
                LOG.debug("CUDA library loaded: {} from {} ({})", e.getKey(), e.getValue(), resolved(e.getValue()));
            }
        }
        return new Loaded(Map.copyOf(done), shim);
    }

    private static String resolved(Path p) {
        try {
            return p.toRealPath().toString();
        } catch (IOException e) {
            return "unresolved: " + e.getMessage();
        }
    }

    private static void systemLoad(String name, Path p, Map<String, Path> done) {
        try {
            System.load(p.toAbsolutePath().toString());
            done.put(name, p.toAbsolutePath());
        } catch (UnsatisfiedLinkError e) {
            throw new IllegalStateException("cannot load " + name + " from " + p + ": " + e.getMessage(), e);
        }
    }

    private static void tryLoad(String name, Path p, Map<String, Path> done) {
        try {
            System.load(p.toAbsolutePath().toString());
            done.put(name, p.toAbsolutePath());
        } catch (UnsatisfiedLinkError e) {
            LOG.debug("optional {} not loaded from {}: {}", name, p, e.getMessage());
        }
    }

    /** Copies the bundled shim to a fresh temporary directory (removed at exit) and returns its path. */
    static Path extractShim() {
        try (InputStream in = CudaLibraries.class.getResourceAsStream(SHIM_RESOURCE)) {
            if (in == null) {
                throw new IllegalStateException("the libcublas.so.12 compatibility shim is missing from the class path ("
                        + SHIM_RESOURCE + "): kiln-cuda was built without it");
            }
            Path dir = Files.createTempDirectory("kiln-cuda-");
            Path file = dir.resolve("libcublas.so.12");
            Files.copy(in, file, StandardCopyOption.REPLACE_EXISTING);
            file.toFile().deleteOnExit();
            dir.toFile().deleteOnExit();
            return file;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot extract the libcublas.so.12 shim: " + e.getMessage(), e);
        }
    }

    /** Lines of /proc/self/maps naming a CUDA library (libcuda, libcudnn, libcublas, JCuda natives, the shim). */
    public static List<String> mappedCudaLibraries() {
        List<String> out = new ArrayList<>();
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/maps"))) {
                int slash = line.indexOf('/');
                if (slash < 0) {
                    continue;
                }
                String file = line.substring(slash);
                String base = file.substring(file.lastIndexOf('/') + 1);
                if ((base.startsWith("libcuda.") || base.startsWith("libcudnn") || base.startsWith("libcublas")
                        || base.startsWith("libJCu") || base.startsWith("libnvrtc")) && !out.contains(file)) {
                    out.add(file);
                }
            }
        } catch (IOException e) {
            out.add("(cannot read /proc/self/maps: " + e.getMessage() + ")");
        }
        return out;
    }
}
