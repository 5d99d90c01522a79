package dev.kiln.cuda;

import dev.kiln.core.Device;
import dev.kiln.suites.AutogradSuite;
import org.junit.jupiter.api.BeforeEach;

/** The shared AutogradSuite on the GPU; every test is skipped, with the reason, when there is none. */
class CudaAutogradTest extends AutogradSuite {

    @BeforeEach
    void requireGpu() {
        CudaTestSupport.requireCuda();
    }

    @Override
    protected Device device() {
        return CudaTestSupport.cuda();
    }
}
