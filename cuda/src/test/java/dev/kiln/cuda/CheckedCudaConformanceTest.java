package dev.kiln.cuda;

import dev.kiln.backend.Backend;
import dev.kiln.conformance.ActivationConformanceSuite;
import dev.kiln.conformance.BatchNormConformanceSuite;
import dev.kiln.conformance.ContractConformanceSuite;
import dev.kiln.conformance.DenseConformanceSuite;
import dev.kiln.conformance.ElementwiseConformanceSuite;
import dev.kiln.conformance.MemoryConformanceSuite;
import dev.kiln.conformance.OptimizerConformanceSuite;
import dev.kiln.conformance.PoolingConformanceSuite;
import dev.kiln.conformance.ShapeConformanceSuite;
import dev.kiln.conformance.SoftmaxConformanceSuite;
import dev.kiln.cpu.CpuBackendProvider;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Nested;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The whole conformance suite, family by family, with every call also made on a {@link CudaBackend} over the
 * {@link CheckingCudaApi} (no GPU): the suite's value assertions check the CPU backend's results, while each of its
 * calls drives the CUDA backend's host code with the same arguments, and the stand-in checks every pointer, launch and
 * descriptor that host code produces. When a family's last case has run its CUDA backend is closed and must have
 * released everything; after the last family every SPI method must have reached a CUDA backend.
 */
class CheckedCudaConformanceTest {

    /** Calls whose rejection depends on device data the stand-in does not compute (a target read by a kernel). */
    private static final List<String> VALUE_DEPENDENT = List.of("softmaxCrossEntropyForward");

    private static final Logger LOG = LoggerFactory.getLogger(CheckedCudaConformanceTest.class);
    private static final Set<String> CALLED = Collections.synchronizedSet(new TreeSet<>());
    private static final List<String> DIVERGENCES = Collections.synchronizedList(new ArrayList<>());
    private static final AtomicInteger LAUNCHES = new AtomicInteger();

    /** The CPU backend shadowed by a checked CUDA backend; what it saw is kept when it is closed. */
    static Backend checked() {
        CheckingCudaApi api = new CheckingCudaApi();
        CudaBackend cuda = CheckedCudaBackends.create(api);
        Backend cpu = new CpuBackendProvider().create(Map.of());
        ShadowedBackend[] shadowed = new ShadowedBackend[1];
        shadowed[0] = ShadowedBackend.create(cpu, cuda, () -> {
            api.assertAllReleased();
            CALLED.addAll(shadowed[0].called());
            DIVERGENCES.addAll(shadowed[0].divergences());
            LAUNCHES.addAndGet((int) api.calls("cuLaunchKernel"));
        });
        return shadowed[0].backend();
    }

    @Nested
    class Memory extends MemoryConformanceSuite {
        @Override
        protected Backend backend() {
            return checked();
        }
    }

    @Nested
    class Elementwise extends ElementwiseConformanceSuite {
        @Override
        protected Backend backend() {
            return checked();
        }
    }

    @Nested
    class Dense extends DenseConformanceSuite {
        @Override
        protected Backend backend() {
            return checked();
        }
    }

    @Nested
    class BatchNorm extends BatchNormConformanceSuite {
        @Override
        protected Backend backend() {
            return checked();
        }
    }

    @Nested
    class Pooling extends PoolingConformanceSuite {
        @Override
        protected Backend backend() {
            return checked();
        }
    }

    @Nested
    class Shape extends ShapeConformanceSuite {
        @Override
        protected Backend backend() {
            return checked();
        }
    }

    @Nested
    class Activation extends ActivationConformanceSuite {
        @Override
        protected Backend backend() {
            return checked();
        }
    }

    @Nested
    class Softmax extends SoftmaxConformanceSuite {
        @Override
        protected Backend backend() {
            return checked();
        }
    }

    @Nested
    class Optimizer extends OptimizerConformanceSuite {
        @Override
        protected Backend backend() {
            return checked();
        }
    }

    @Nested
    class Contract extends ContractConformanceSuite {
        @Override
        protected Backend backend() {
            return checked();
        }
    }

    @AfterAll
    static void everyOpReachedTheCudaBackend() {
        Set<String> ops = new TreeSet<>();
        for (Method m : Backend.class.getMethods()) {
            if (!Modifier.isStatic(m.getModifiers())) {
                ops.add(m.getName());
            }
        }
        ops.removeAll(Set.of("name", "description", "close", "beginCapture"));
        Set<String> missing = new TreeSet<>(ops);
        missing.removeAll(CALLED);
        assertEquals(Set.of(), missing, "Backend methods the conformance suite never called");
        // Different exception types for the same bad call are reported, not failed: the SPI's exception contract is
        // enforced by the misuse table; here only a call the CUDA backend accepted and the CPU backend refused fails.
        DIVERGENCES.forEach(d -> LOG.info("cuda vs cpu: {}", d));
        for (String d : DIVERGENCES) {
            assertTrue(VALUE_DEPENDENT.stream().anyMatch(d::startsWith) || d.contains(" threw ") && d.contains(", the shadow ")
                    && !d.contains("accepted"), "CUDA backend accepted what the CPU backend rejected: " + d);
        }
        assertTrue(LAUNCHES.get() > 100, "kernel launches checked: " + LAUNCHES.get());
    }
}
