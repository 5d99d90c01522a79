package dev.kiln.cuda;

import dev.kiln.backend.Backend;
import dev.kiln.conformance.BackendConformanceSuite;
import org.junit.jupiter.api.BeforeEach;

/**
 * The shared conformance suite against the CUDA backend. Compiled only when core's test-jar has
 * dev.kiln.conformance.BackendConformanceSuite (Maven profile "conformance-suite" in cuda/pom.xml).
 */
class CudaBackendConformanceTest extends BackendConformanceSuite {

    @BeforeEach
    void requireGpu() {
        CudaTestSupport.requireCuda();
    }

    @Override
    protected Backend backend() {
        return CudaTestSupport.cuda().backend();
    }
}
