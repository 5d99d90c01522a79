package dev.kiln.cuda;

import dev.kiln.core.Device;
import dev.kiln.suites.LayersSuite;
import org.junit.jupiter.api.BeforeEach;

/** The shared LayersSuite on the GPU; every test is skipped, with the reason, when there is none. */
class CudaLayersTest extends LayersSuite {

    @BeforeEach
    void requireGpu() {
        CudaTestSupport.requireCuda();
    }

    @Override
    protected Device device() {
        return CudaTestSupport.cuda();
    }
}
