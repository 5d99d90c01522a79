package dev.kiln.cuda;

import jcuda.CudaException;
import jcuda.driver.JCudaDriver;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.Locale;
import java.util.Optional;

/**
 * Decides, once per process, whether the CUDA backend can run here, cheaply and without risking the JVM: file checks
 * for libcuda.so.1 first, JCuda classes only after that. The verdict is a memo of facts about this machine (it cannot
 * change while the process runs), so it is cached.
 */
final class CudaProbe {

    private static final Logger LOG = LoggerFactory.getLogger(CudaProbe.class);
    private static volatile Optional<String> verdict;

    private CudaProbe() {
    }

    /** Empty when usable; otherwise the one-line reason. */
    static Optional<String> unavailableReason() {
        Optional<String> v = verdict;
        if (v == null) {
            synchronized (CudaProbe.class) {
                v = verdict;
                if (v == null) {
                    long t0 = System.nanoTime();
                    v = probe(LibrarySearchPath.fromEnvironment());
                    verdict = v;
                    LOG.debug("cuda probe took {} ms: {}", (System.nanoTime() - t0) / 1_000_000, v.orElse("available"));
                }
            }
        }
        return v;
    }

    static Optional<String> probe(LibrarySearchPath path) {
        String os = System.getProperty("os.name", "").toLowerCase(Locale.ROOT);
        String arch = System.getProperty("os.arch", "").toLowerCase(Locale.ROOT);
        if (!os.contains("linux") || !(arch.equals("amd64") || arch.equals("x86_64"))) {
            return Optional.of("unsupported platform " + os + "/" + arch + " (kiln-cuda ships JCuda natives for linux-x86_64)");
        }
        if (path.findInDirectories("libcuda.so.1").isEmpty() && path.find("libcuda.so.1").isEmpty()) {
            return Optional.of("no libcuda.so.1 (no NVIDIA driver)");
        }
        if (path.find("libcudnn.so.9").isEmpty()) {
            return Optional.of("cuDNN not found: libcudnn.so.9 (set KILN_CUDA_LIBS; searched " + path + ")");
        }
        if (CudaLibraries.cublasMajor(path).isEmpty()) {
            return Optional.of("cuBLAS not found: libcublas.so.12 or libcublas.so.13 (set KILN_CUDA_LIBS; searched " + path + ")");
        }
        try {
            CudaLibraries.load(path);
        } catch (RuntimeException | LinkageError e) {
            return Optional.of(firstLine(e.getMessage()));
        }
        try {
            JCudaDriver.setExceptionsEnabled(true);
            JCudaDriver.cuInit(0);
            int[] count = new int[1];
            JCudaDriver.cuDeviceGetCount(count);
            if (count[0] < 1) {
                return Optional.of("no CUDA device");
            }
        } catch (CudaException e) {
            String m = String.valueOf(e.getMessage());
            return Optional.of(m.contains("NO_DEVICE") ? "no CUDA device (" + m + ")" : "CUDA driver failed to initialise: " + m);
        } catch (LinkageError e) {
            return Optional.of("JCuda driver natives failed to load: " + firstLine(e.toString()));
        }
        return Optional.empty();
    }

    private static String firstLine(String s) {
        if (s == null) {
            return "unknown error";
        }
        int nl = s.indexOf('\n');
        return nl < 0 ? s : s.substring(0, nl);
    }
}
