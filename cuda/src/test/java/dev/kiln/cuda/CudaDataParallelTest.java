package dev.kiln.cuda;

import dev.kiln.core.Device;
import dev.kiln.suites.DataParallelSuite;
import org.junit.jupiter.api.BeforeEach;

/** The shared DataParallelSuite (SyncBatchNorm, gradient all-reduce) on the GPU; skipped, with the reason, without one. */
class CudaDataParallelTest extends DataParallelSuite {

    @BeforeEach
    void requireGpu() {
        CudaTestSupport.requireCuda();
    }

    @Override
    protected Device device() {
        return CudaTestSupport.cuda();
    }
}
