package dev.kiln.cpu;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Whether the CPU kernels use the JDK's Vector API ({@link VectorSgemm}). The API is an incubator module on Java 17:
 * it is present only when the JVM was started with {@code --add-modules jdk.incubator.vector} (the {@code ./kiln}
 * launcher and the test runs do this). The system property {@code kiln.cpu.simd} chooses: {@code auto} (default:
 * use it when the module is present and a vector holds at least 8 floats, i.e. AVX2 or better), {@code true} (use it
 * when present, whatever the width) or {@code false} (the scalar kernels). Classes that touch the module are never
 * loaded when this says no.
 */
final class SimdSupport {

    private static final Logger LOG = LoggerFactory.getLogger(SimdSupport.class);
    static final String PROPERTY = "kiln.cpu.simd";

    /** Whether {@link VectorSgemm} runs in this JVM. */
    static final boolean ENABLED = decide();

    private SimdSupport() {
    }

    static boolean modulePresent() {
        return ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent();
    }

    private static boolean decide() {
        String mode = System.getProperty(PROPERTY, "auto").trim().toLowerCase(java.util.Locale.ROOT);
        if (!mode.equals("auto") && !mode.equals("true") && !mode.equals("false")) {
            throw new IllegalArgumentException("cpu backend: -D" + PROPERTY + " must be auto, true or false, got '"
                    + mode + "'");
        }
        if (mode.equals("false")) {
            return false;
        }
        if (!modulePresent()) {
            LOG.info("CPU backend: scalar kernels; start the JVM with --add-modules jdk.incubator.vector (as ./kiln does)"
                    + " for the SIMD ones");
            return false;
        }
        int lanes = VectorSgemm.L;
        if (mode.equals("auto") && lanes < 8) {
            LOG.debug("scalar CPU kernels: vectors of {} floats are too narrow to win", lanes);
            return false;
        }
        return true;
    }

    /** What the kernels use, for descriptions and benchmarks. */
    static String describe() {
        return ENABLED ? "SIMD " + VectorSgemm.L * 32 + "-bit" : "scalar";
    }
}
