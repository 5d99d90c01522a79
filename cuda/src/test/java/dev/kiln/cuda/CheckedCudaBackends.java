package dev.kiln.cuda;

import dev.kiln.backend.Backend;
import dev.kiln.core.Device;

/** CUDA backends whose driver, cuBLAS and cuDNN calls go to a {@link CheckingCudaApi}: no GPU needed. */
final class CheckedCudaBackends {

    private CheckedCudaBackends() {
    }

    static CudaBackend create(CheckingCudaApi api) {
        return new CudaBackend(new CudaOptions(0, false, 512L << 20), api);
    }

    static CudaBackend create(CheckingCudaApi api, long workspaceLimitBytes) {
        return new CudaBackend(new CudaOptions(0, false, workspaceLimitBytes), api);
    }

    static Device device(Backend backend) {
        return Device.of("cuda", backend);
    }
}
