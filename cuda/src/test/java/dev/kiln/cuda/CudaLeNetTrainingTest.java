package dev.kiln.cuda;

import dev.kiln.core.Device;
import dev.kiln.suites.LeNetTrainingSuite;
import org.junit.jupiter.api.BeforeEach;

/** The shared LeNetTrainingSuite on the GPU; every test is skipped, with the reason, when there is none. */
class CudaLeNetTrainingTest extends LeNetTrainingSuite {

    @BeforeEach
    void requireGpu() {
        CudaTestSupport.requireCuda();
    }

    @Override
    protected Device device() {
        return CudaTestSupport.cuda();
    }
}
