package dev.kiln.cuda;

import dev.kiln.core.Device;
import dev.kiln.suites.BadInputSuite;
import org.junit.jupiter.api.BeforeEach;

/** The shared BadInputSuite on the GPU; every test is skipped, with the reason, when there is none. */
class CudaBadInputTest extends BadInputSuite {

    @BeforeEach
    void requireGpu() {
        CudaTestSupport.requireCuda();
    }

    @Override
    protected Device device() {
        return CudaTestSupport.cuda();
    }
}
