package dev.kiln.cuda;

import dev.kiln.core.Device;
import dev.kiln.suites.GraphCaptureSuite;
import org.junit.jupiter.api.BeforeEach;

/** The shared GraphCaptureSuite on the GPU; every test is skipped, with the reason, when there is none. */
class CudaGraphCaptureTest extends GraphCaptureSuite {

    @BeforeEach
    void requireGpu() {
        CudaTestSupport.requireCuda();
    }

    @Override
    protected Device device() {
        return CudaTestSupport.cuda();
    }
}
