package dev.kiln.cuda;

import dev.kiln.backend.Backend;
import dev.kiln.conformance.BackendConformanceSuite;

import java.util.Map;

/** The shared conformance suite against a fresh CUDA backend; every case is skipped, with the reason, without a GPU. */
class CudaBackendConformanceTest extends BackendConformanceSuite {

    @Override
    protected Backend backend() {
        CudaTestSupport.requireCuda();
        return new CudaBackendProvider().create(Map.of());
    }
}
