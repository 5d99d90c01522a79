package dev.kiln.cuda;

import dev.kiln.core.Device;
import dev.kiln.suites.PredictorSuite;
import org.junit.jupiter.api.BeforeEach;

/** The shared PredictorSuite on the GPU; every test is skipped, with the reason, when there is none. */
class CudaPredictorTest extends PredictorSuite {

    @BeforeEach
    void requireGpu() {
        CudaTestSupport.requireCuda();
    }

    @Override
    protected Device device() {
        return CudaTestSupport.cuda();
    }
}
