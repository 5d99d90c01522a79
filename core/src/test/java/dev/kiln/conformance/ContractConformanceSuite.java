package dev.kiln.conformance;

import static dev.kiln.conformance.Inputs.narrow;
import static dev.kiln.conformance.Inputs.widen;
import static dev.kiln.conformance.Tolerance.ATOL;
import static dev.kiln.conformance.Tolerance.RTOL;
import static dev.kiln.conformance.Tolerance.SUM_COEFF;
import static dev.kiln.conformance.Tolerance.assertClose;
import static dev.kiln.conformance.Tolerance.assertExact;
import static dev.kiln.conformance.Tolerance.shape;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.backend.Activation;
import dev.kiln.backend.AdamHyper;
import dev.kiln.backend.Backend;
import dev.kiln.backend.BatchNormGeometry;
import dev.kiln.backend.BinaryOp;
import dev.kiln.backend.Buffer;
import dev.kiln.backend.ConvGeometry;
import dev.kiln.backend.PoolGeometry;
import dev.kiln.backend.ScalarOp;
import dev.kiln.backend.SgdHyper;
import dev.kiln.backend.UnaryOp;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.Consumer;
import java.util.stream.Stream;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeEach;
import dev.kiln.suites.TestBackends;
import org.junit.jupiter.params.Parameter;
import org.junit.jupiter.params.ParameterizedClass;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Named;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/** Conformance of the SPI contract: argument validation (directly and while recording) and concurrent use; see {@link ConformanceSuite}. */
public class ContractConformanceSuite extends ConformanceSuite {

    // ==================================================================================================== validation

    /** An op called with one buffer too short; must throw IllegalArgumentException before touching memory. */
    static Stream<Arguments> misuses() {
        return MisuseCases.all().stream().map(m -> Arguments.of(named(m.name(), m)));
    }

    @Test
    @DisplayName("the misuse table has a valid call of every op, and each of those calls succeeds")
    void everyOpHasAValidCall() {
        java.util.Set<String> ops = new java.util.TreeSet<>();
        for (java.lang.reflect.Method m : Backend.class.getMethods()) {
            if (m.getDeclaringClass() == Backend.class && !MisuseCases.NOT_OPS.contains(m.getName())) {
                ops.add(m.getName());
            }
        }
        assertEquals(ops, new java.util.TreeSet<>(MisuseCases.validCalls().keySet()));
        List<Object[]> calls = new ArrayList<>();
        MisuseCases.validCalls().forEach((name, args) -> {
            Object[] a = args.apply(b);
            calls.add(a);
            MisuseCases.call(b, name, a);
        });
        b.synchronize();
        calls.forEach(MisuseCases::releaseBuffers);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("misuses")
    @DisplayName("argument validation while a graph is recorded: the same IllegalArgumentException, at the call")
    void rejectsMisuseWhileRecording(MisuseCases.Misuse misuse) {
        dev.kiln.backend.GraphCapture capture = b.beginCapture();
        org.junit.jupiter.api.Assumptions.assumeTrue(capture != null, b.name() + " does not record graphs");
        try {
            Backend recorder = capture.recorder();
            Throwable t = org.junit.jupiter.api.Assertions.assertThrows(RuntimeException.class,
                    () -> misuse.call().accept(recorder), misuse.name());
            // host transfers are refused whole while recording; everything else is checked as the backend checks it
            if (!(t instanceof dev.kiln.backend.GraphCaptureException)) {
                assertTrue(t instanceof IllegalArgumentException, misuse.name() + ": " + t);
            }
        } finally {
            capture.abort();
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("misuses")
    @DisplayName("argument validation: IllegalArgumentException")
    void rejectsMisuse(MisuseCases.Misuse misuse) {
        // every buffer the case allocates is freed after it, so the leak detector has nothing to report
        List<Buffer> allocated = new ArrayList<>();
        Backend tracking = (Backend) java.lang.reflect.Proxy.newProxyInstance(Backend.class.getClassLoader(),
                new Class<?>[]{Backend.class}, (proxy, method, args) -> {
                    try {
                        Object r = method.invoke(b, args);
                        if (r instanceof Buffer buffer && method.getName().startsWith("allocate")) {
                            allocated.add(buffer);
                        }
                        return r;
                    } catch (java.lang.reflect.InvocationTargetException e) {
                        throw e.getCause();
                    }
                });
        try {
            assertThrows(IllegalArgumentException.class, () -> misuse.call().accept(tracking), misuse.name());
        } finally {
            allocated.forEach(Buffer::close);
        }
    }

    // ==================================================================================================== threads

    @Test
    @DisplayName("concurrent ops on independent buffers from 4 threads give the single-threaded results")
    void concurrentIndependentBuffers() throws Exception {
        int m = 33;
        int n = 29;
        int k = 41;
        Inputs in = new Inputs(2900);
        float[] a = in.uniform(m * k, -1, 1);
        float[] bm = in.uniform(k * n, -1, 1);
        Reference.Sum ref = Reference.gemm(false, false, m, n, k, 1, widen(a), widen(bm), 0, null);
        double[] refTanh = Reference.activationForward(Activation.TANH, ref.v());
        try (Scope s = scope()) {
            Buffer ab = s.in(a); // shared read-only inputs, as a model's parameters
            Buffer bb = s.in(bm);
            ExecutorService pool = Executors.newFixedThreadPool(4);
            try {
                List<Future<float[]>> futures = new ArrayList<>();
                for (int t = 0; t < 8; t++) {
                    futures.add(pool.submit(() -> {
                        try (Buffer c = b.allocate((long) m * n); Buffer y = b.allocate((long) m * n)) {
                            float[] out = new float[m * n];
                            for (int rep = 0; rep < 5; rep++) {
                                b.gemm(false, false, m, n, k, 1f, ab, bb, 0f, c);
                                b.activationForward(Activation.TANH, c, y, (long) m * n);
                            }
                            b.download(y, 0, out, 0, out.length);
                            return out;
                        }
                    }));
                }
                for (Future<float[]> f : futures) {
                    // tanh of a dot product of k terms: the gemm's sum tolerance carried through tanh' <= 1
                    assertClose("concurrent gemm + tanh", new int[] {m, n}, f.get(), refTanh,
                            Tolerance.sums(refTanh, ref.abs(), k));
                }
            } finally {
                pool.shutdown();
            }
            s.assertInputsUnchanged("concurrent gemm");
        }
    }
}
