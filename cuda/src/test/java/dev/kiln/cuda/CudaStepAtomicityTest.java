package dev.kiln.cuda;

import dev.kiln.core.Device;
import dev.kiln.suites.StepAtomicitySuite;
import org.junit.jupiter.api.BeforeEach;

/** The shared StepAtomicitySuite on the GPU; every test is skipped, with the reason, when there is none. */
class CudaStepAtomicityTest extends StepAtomicitySuite {

    @BeforeEach
    void requireGpu() {
        CudaTestSupport.requireCuda();
    }

    @Override
    protected Device device() {
        return CudaTestSupport.cuda();
    }
}
