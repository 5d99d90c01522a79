package dev.kiln.cpu;

import dev.kiln.backend.Backend;
import dev.kiln.conformance.BackendConformanceSuite;

import java.util.Map;

import org.junit.jupiter.api.DisplayName;

/** The shared backend conformance suite run against the pure-Java CPU backend. */
@DisplayName("CPU backend conformance")
class CpuBackendConformanceTest extends BackendConformanceSuite {

    @Override
    protected Backend backend() {
        return new CpuBackendProvider().create(Map.of());
    }
}
