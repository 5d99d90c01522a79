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

/**
 * The conformance suite of the {@link Backend} SPI, split by op family (the {@code *ConformanceSuite} classes of this
 * package), each run once per backend of
 * {@link dev.kiln.suites.TestBackends} (each backend module's build scans core's test-jar for it): a new backend
 * instance for the run, closed after its last test.
 *
 * <p>For every op the backend's float32 result is compared with a plain float64 computation in {@link Reference}
 * (naive loops written from the SPI's javadoc), and every reference backward is itself verified by central finite
 * differences of the reference forward ({@link Gradcheck}). Inputs are seeded ({@link Inputs}); tolerances are
 * explained in {@link Tolerance} and next to each assertion. Outputs are pre-filled with NaN so an element an op
 * forgets to write is caught, and inputs are checked to be unchanged.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@ParameterizedClass(name = "{0}", allowZeroInvocations = true)
@MethodSource("dev.kiln.suites.TestBackends#names")
public abstract class ConformanceSuite {

    /** The name of the backend under test ("cpu", "cuda"); one instance of this class per backend. */
    @Parameter
    String backendName;

    Backend b;

    /** The backend is created at the first test of a run (the parameter is injected after construction). */
    @BeforeEach
    void requireBackend() {
        if (b == null) {
            // throws TestAbortedException with the reason (no GPU): every test is reported skipped, never absent
            b = backend();
        }
    }

    /** A new instance of the backend under test, closed after the class's last test (a test may supply another). */
    protected Backend backend() {
        return TestBackends.newBackend(backendName);
    }

    @AfterAll
    void closeBackend() {
        if (b != null) {
            b.close();
        }
    }

    Scope scope() {
        return new Scope(b);
    }

    /** Wraps a value with a readable name for parameterized test names. */
    static <T> Named<T> named(String name, T value) {
        return Named.of(name, value);
    }
}
