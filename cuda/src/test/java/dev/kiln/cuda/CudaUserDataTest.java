package dev.kiln.cuda;

import dev.kiln.core.Device;
import dev.kiln.suites.UserDataSuite;
import org.junit.jupiter.api.BeforeEach;

/** The shared UserDataSuite on the GPU; every test is skipped, with the reason, when there is none. */
class CudaUserDataTest extends UserDataSuite {

    @BeforeEach
    void requireGpu() {
        CudaTestSupport.requireCuda();
    }

    @Override
    protected Device device() {
        return CudaTestSupport.cuda();
    }
}
