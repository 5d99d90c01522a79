package dev.kiln.cuda;

import dev.kiln.core.Device;
import dev.kiln.suites.BatchNormSemanticsSuite;
import org.junit.jupiter.api.BeforeEach;

/** The shared BatchNormSemanticsSuite on the GPU; every test is skipped, with the reason, when there is none. */
class CudaBatchNormSemanticsTest extends BatchNormSemanticsSuite {

    @BeforeEach
    void requireGpu() {
        CudaTestSupport.requireCuda();
    }

    @Override
    protected Device device() {
        return CudaTestSupport.cuda();
    }
}
