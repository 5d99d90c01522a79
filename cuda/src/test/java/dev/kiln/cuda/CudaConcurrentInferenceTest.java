package dev.kiln.cuda;

import dev.kiln.core.Device;
import dev.kiln.suites.ConcurrentInferenceSuite;
import org.junit.jupiter.api.BeforeEach;

/** The shared ConcurrentInferenceSuite on the GPU; every test is skipped, with the reason, when there is none. */
class CudaConcurrentInferenceTest extends ConcurrentInferenceSuite {

    @BeforeEach
    void requireGpu() {
        CudaTestSupport.requireCuda();
    }

    @Override
    protected Device device() {
        return CudaTestSupport.cuda();
    }
}
