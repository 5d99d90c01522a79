package dev.kiln.cuda;

import dev.kiln.core.Device;
import dev.kiln.suites.TrainerSuite;
import org.junit.jupiter.api.BeforeEach;

/** The shared TrainerSuite on the GPU; every test is skipped, with the reason, when there is none. */
class CudaTrainerTest extends TrainerSuite {

    @BeforeEach
    void requireGpu() {
        CudaTestSupport.requireCuda();
    }

    @Override
    protected Device device() {
        return CudaTestSupport.cuda();
    }
}
