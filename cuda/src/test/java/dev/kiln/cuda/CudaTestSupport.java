package dev.kiln.cuda;

import dev.kiln.core.Device;
import dev.kiln.core.Devices;

import java.util.Optional;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** Shared by the CUDA tests: skip (never pass) with the provider's reason when there is no usable GPU. */
final class CudaTestSupport {

    private CudaTestSupport() {
    }

    static Optional<String> unavailableReason() {
        return new CudaBackendProvider().unavailableReason();
    }

    /** Aborts the calling test, naming why, when the CUDA backend cannot run here. */
    static void requireCuda() {
        Optional<String> reason = unavailableReason();
        assumeTrue(reason.isEmpty(), () -> "no GPU: " + reason.orElse(""));
    }

    /** The default registry's "cuda" device (TF32 off by default), after {@link #requireCuda()}. */
    static Device cuda() {
        requireCuda();
        return Devices.defaults().get("cuda");
    }

    /** The CPU backend for equivalence checks; a GPU run without it is a failure, not a skip. */
    static Device cpu() {
        if (!Devices.defaults().backendNames().contains("cpu")) {
            throw new IllegalStateException("the CPU backend (dev.kiln.cpu.CpuBackendProvider, kiln-cpu-fallback) is not "
                    + "on the test class path; found " + Devices.defaults().backendNames());
        }
        return Devices.defaults().get("cpu");
    }
}
