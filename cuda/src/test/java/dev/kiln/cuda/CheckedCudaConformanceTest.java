package dev.kiln.cuda;

import dev.kiln.backend.Backend;
import dev.kiln.conformance.BackendConformanceSuite;
import dev.kiln.cpu.CpuBackendProvider;
import org.junit.jupiter.api.AfterAll;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The whole conformance suite with every call also made on a {@link CudaBackend} over the {@link CheckingCudaApi}
 * (no GPU): the suite's value assertions check the CPU backend's results, while each of its calls drives the CUDA
 * backend's host code with the same arguments, and the stand-in checks every pointer, launch and descriptor that
 * host code produces. When the last case has run the CUDA backend is closed and must have released everything.
 */
class CheckedCudaConformanceTest extends BackendConformanceSuite {

    /** Calls whose rejection depends on device data the stand-in does not compute (a target read by a kernel). */
    private static final List<String> VALUE_DEPENDENT = List.of("softmaxCrossEntropyForward");

    private static final Logger LOG = LoggerFactory.getLogger(CheckedCudaConformanceTest.class);
    private ShadowedBackend shadowed;
    private CheckingCudaApi api;

    @Override
    protected Backend backend() {
        api = new CheckingCudaApi();
        CudaBackend cuda = CheckedCudaBackends.create(api);
        Backend cpu = new CpuBackendProvider().create(Map.of());
        CheckingCudaApi checking = api;
        shadowed = ShadowedBackend.create(cpu, cuda, checking::assertAllReleased);
        return shadowed.backend();
    }

    @AfterAll
    void everyOpReachedTheCudaBackend() {
        Set<String> ops = new TreeSet<>();
        for (Method m : Backend.class.getMethods()) {
            if (!Modifier.isStatic(m.getModifiers())) {
                ops.add(m.getName());
            }
        }
        ops.removeAll(Set.of("name", "description", "close", "beginCapture"));
        Set<String> missing = new TreeSet<>(ops);
        missing.removeAll(shadowed.called());
        assertEquals(Set.of(), missing, "Backend methods the conformance suite never called");
        // Different exception types for the same bad call are reported, not failed: the SPI's exception contract is
        // enforced by the misuse table; here only a call the CUDA backend accepted and the CPU backend refused fails.
        shadowed.divergences().forEach(d -> LOG.info("cuda vs cpu: {}", d));
        for (String d : shadowed.divergences()) {
            assertTrue(VALUE_DEPENDENT.stream().anyMatch(d::startsWith) || d.contains(" threw ") && d.contains(", the shadow ")
                    && !d.contains("accepted"), "CUDA backend accepted what the CPU backend rejected: " + d);
        }
        assertTrue(api.calls("cuLaunchKernel") > 100, "kernel launches checked: " + api.calls("cuLaunchKernel"));
    }
}
