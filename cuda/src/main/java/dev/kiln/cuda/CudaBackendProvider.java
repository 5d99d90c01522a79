package dev.kiln.cuda;

import dev.kiln.backend.Backend;
import dev.kiln.backend.BackendProvider;

import java.util.Map;
import java.util.Optional;

/**
 * The "cuda" backend (priority 100, above the CPU's 0). Options: {@code index} (GPU ordinal, default 0),
 * {@code tf32} ("true" allows TF32 tensor cores in cuBLAS/cuDNN; default false, also {@code -Dkiln.cuda.tf32}),
 * {@code workspaceMiB} (cuDNN workspace limit per convolution, default 512).
 */
public final class CudaBackendProvider implements BackendProvider {

    @Override
    public String name() {
        return "cuda";
    }

    @Override
    public int priority() {
        return 100;
    }

    @Override
    public Optional<String> unavailableReason() {
        try {
            return CudaProbe.unavailableReason();
        } catch (RuntimeException | LinkageError e) {
            return Optional.of("cuda probe failed: " + e);
        }
    }

    @Override
    public Backend create(Map<String, String> options) {
        Optional<String> reason = unavailableReason();
        if (reason.isPresent()) {
            throw new IllegalStateException("cuda backend unavailable: " + reason.get());
        }
        return new CudaBackend(CudaOptions.from(options));
    }
}
