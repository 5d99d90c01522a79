package dev.kiln.cpu;

import dev.kiln.backend.Activation;
import dev.kiln.backend.Buffer;
import dev.kiln.backend.ConvGeometry;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What only the CPU backend promises: results independent of its thread count, and its provider's options. The ops
 * themselves are checked for every backend by the conformance suite (core's test-jar, dev.kiln.conformance).
 */
class CpuKernelsTest {

    private final CpuBackend be = new CpuBackend(2);
    private final Random rnd = new Random(7);

    @AfterEach
    void close() {
        be.close();
    }

    @Test
    void convBackwardWeightDoesNotDependOnThreadCount() {
        ConvGeometry g = new ConvGeometry(37, 3, 12, 12, 4, 3, 3, 1, 1, 1, 1, 1, 1);
        float[] x = SgemmTest.random(rnd, (int) g.inputLength());
        float[] dy = SgemmTest.random(rnd, (int) g.outputLength());
        try (CpuBackend one = new CpuBackend(1)) {
            Buffer dw1 = one.allocate(g.weightLength());
            one.conv2dBackwardWeight(g, one.upload(x, 0, x.length), one.upload(dy, 0, dy.length), dw1);
            Buffer dw2 = be.allocate(g.weightLength());
            be.conv2dBackwardWeight(g, be.upload(x, 0, x.length), be.upload(dy, 0, dy.length), dw2);
            float[] a = new float[(int) g.weightLength()];
            float[] b = new float[(int) g.weightLength()];
            one.download(dw1, 0, a, 0, a.length);
            be.download(dw2, 0, b, 0, b.length);
            assertArrayEquals(a, b);
        }
    }

    /**
     * Every activation in place ({@code y == x}, as the fused layer kernels run it) gives what it gives into another
     * buffer, also for the inputs the sigmoid treats apart: below -1.5 (the scalar kernel's exact path), below -87
     * (subnormal outputs, the vector kernel's scalar lanes), NaN and infinities.
     */
    @Test
    void activationInPlaceIsOutOfPlace() {
        float[] special = {-100f, -90f, -87.5f, -87f, -50f, -3f, -1.6f, -1.5f, -1.4f, 0f, -0f, 0.5f, 5f, 6f, 88f, 100f,
                Float.NaN, Float.NEGATIVE_INFINITY, Float.POSITIVE_INFINITY, -1e-40f};
        int n = 301;
        float[] x = SgemmTest.random(rnd, n);
        for (int i = 0; i < n; i++) {
            x[i] = i < special.length * 7 ? special[i % special.length] : 20f * x[i];
        }
        for (Activation a : Activation.values()) {
            Buffer in = be.upload(x, 0, n);
            Buffer out = be.allocate(n);
            be.activationForward(a, in, out, n);
            be.activationForward(a, in, in, n);
            float[] expected = down(be, out);
            float[] got = down(be, in);
            assertArrayEquals(expected, got, a + " in place");
            if (a == Activation.SIGMOID) {
                for (int i = 0; i < n; i++) {
                    double exact = 1.0 / (1.0 + Math.exp(-(double) x[i]));
                    if (Double.isNaN(exact)) {
                        assertTrue(Float.isNaN(got[i]), "sigmoid(NaN) = " + got[i]);
                    } else {
                        assertEquals(exact, got[i], 4 * Math.ulp((float) exact) + 1e-45, "sigmoid(" + x[i] + ")");
                    }
                }
            }
        }
    }

    private static float[] down(CpuBackend b, Buffer buf) {
        float[] out = new float[(int) buf.length()];
        b.download(buf, 0, out, 0, out.length);
        return out;
    }

    @Test
    void providerResolvesThreads() {
        CpuBackendProvider p = new CpuBackendProvider();
        assertEquals("cpu", p.name());
        assertEquals(0, p.priority());
        assertTrue(p.unavailableReason().isEmpty());
        try (CpuBackend b = (CpuBackend) p.create(Map.of("threads", "3"))) {
            assertEquals(3, b.threads());
            assertTrue(b.description().startsWith("cpu (3 threads, "), b.description());
        }
        assertThrows(IllegalArgumentException.class, () -> p.create(Map.of("threads", "zero")));
        assertTrue(java.util.ServiceLoader.load(dev.kiln.backend.BackendProvider.class).stream()
                .anyMatch(pr -> pr.type() == CpuBackendProvider.class));
    }

    /**
     * ReLU forward and backward equal the branching formulas bit for bit (NaN propagates forward, -0 becomes +0, the
     * gradient is dy where y > 0 and +0 elsewhere, a NaN dy included), on special values and random signs, at 1 and
     * 3 threads.
     */
    @Test
    void reluMatchesTheBranchingFormulaBitForBit() {
        float[] special = {0f, -0f, 1f, -1f, Float.NaN, Float.intBitsToFloat(0xFFC00001), Float.POSITIVE_INFINITY,
                Float.NEGATIVE_INFINITY, Float.MIN_VALUE, -Float.MIN_VALUE, Float.MAX_VALUE, -Float.MAX_VALUE, 1e-40f};
        int n = 100_003;
        float[] x = new float[n];
        float[] dy = new float[n];
        Random r = new Random(3);
        for (int i = 0; i < n; i++) {
            x[i] = i < special.length ? special[i] : (float) r.nextGaussian();
            dy[i] = i < special.length * special.length ? special[i / special.length] : (float) r.nextGaussian();
        }
        // every special y against every special dy in the first special.length^2 elements
        for (int i = 0; i < special.length * special.length; i++) {
            x[i] = special[i % special.length];
        }
        for (int threads : new int[]{1, 3}) {
            try (Parallel par = new Parallel(threads)) {
                float[] y = new float[n];
                float[] dx = new float[n];
                ActivationKernels.forward(Activation.RELU, x, y, n, par);
                ActivationKernels.backward(Activation.RELU, x, y, dy, dx, n, par);
                for (int i = 0; i < n; i++) {
                    float v = x[i];
                    float want = v > 0f || v != v ? v : 0f;
                    assertEquals(Float.floatToRawIntBits(want), Float.floatToRawIntBits(y[i]), "relu(" + v + ")");
                    float wantGrad = y[i] > 0f ? dy[i] : 0f;
                    assertEquals(Float.floatToRawIntBits(wantGrad), Float.floatToRawIntBits(dx[i]),
                            "relu' at y=" + y[i] + ", dy=" + dy[i]);
                }
            }
        }
    }
}
