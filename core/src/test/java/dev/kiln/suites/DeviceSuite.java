package dev.kiln.suites;

import dev.kiln.core.Device;
import dev.kiln.core.Generator;
import dev.kiln.core.Tensor;
import dev.kiln.core.TensorScope;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.params.Parameter;
import org.junit.jupiter.params.ParameterizedClass;
import org.junit.jupiter.params.provider.MethodSource;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Base of the backend-generic suites in this package: each suite runs once per backend of {@link TestBackends}
 * (a parameterized class; each backend module's build scans core's test-jar for {@code *Suite} classes; in core,
 * with no backend on the class path, they run zero times). Helpers here
 * are small on purpose: references are written out in each test.
 */
@ParameterizedClass(name = "{0}", allowZeroInvocations = true)
@MethodSource("dev.kiln.suites.TestBackends#names")
public abstract class DeviceSuite {

    /** The name of the backend under test ("cpu", "cuda"). */
    @Parameter
    protected String backendName;

    /** Closes what a test leaves open, so that tensors a test does not close are not reported as leaks. */
    private TensorScope testScope;

    @BeforeEach
    void requireBackend() {
        TestBackends.require(backendName);
        testScope = TensorScope.open();
    }

    @AfterEach
    void closeTestScope() {
        if (testScope != null) {
            testScope.close();
            testScope = null;
        }
    }

    /** The device under test. */
    protected Device device() {
        return TestBackends.device(backendName);
    }

    protected Tensor tensor(float[] data, int... shape) {
        return Tensor.of(device(), data, shape);
    }

    protected Tensor randn(long seed, int... shape) {
        return Tensor.randn(device(), new Generator(seed), shape);
    }

    /** |got - want| <= atol + rtol * |want| element by element, naming the first failing index. */
    protected static void assertClose(double[] want, float[] got, double rtol, double atol, String what) {
        if (want.length != got.length) {
            fail(what + ": length " + got.length + ", expected " + want.length);
        }
        for (int i = 0; i < want.length; i++) {
            double err = Math.abs(got[i] - want[i]);
            if (!(err <= atol + rtol * Math.abs(want[i]))) {
                fail(what + ": index " + i + ": got " + got[i] + ", expected " + want[i]
                        + " (|err| " + err + " > " + (atol + rtol * Math.abs(want[i])) + ")");
            }
        }
    }

    protected static void assertClose(float[] want, float[] got, double rtol, double atol, String what) {
        double[] w = new double[want.length];
        for (int i = 0; i < w.length; i++) {
            w[i] = want[i];
        }
        assertClose(w, got, rtol, atol, what);
    }

    protected static double[] toDouble(float[] a) {
        double[] d = new double[a.length];
        for (int i = 0; i < a.length; i++) {
            d[i] = a[i];
        }
        return d;
    }

    protected static void assertMessageContains(Throwable t, String... parts) {
        for (String p : parts) {
            assertTrue(t.getMessage() != null && t.getMessage().contains(p),
                    "message should contain '" + p + "' but was: " + t.getMessage());
        }
    }
}
