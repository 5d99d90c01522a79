package dev.kiln.cuda;

import dev.kiln.core.Device;
import dev.kiln.suites.PyTorchGoldensSuite;
import org.junit.jupiter.api.BeforeEach;

/** Kiln on the GPU against PyTorch's numbers (the shared PyTorchGoldensSuite); every test is skipped, with the reason, when there is none. */
class CudaPyTorchGoldensTest extends PyTorchGoldensSuite {

    @BeforeEach
    void requireGpu() {
        CudaTestSupport.requireCuda();
    }

    @Override
    protected Device device() {
        return CudaTestSupport.cuda();
    }
}
