package dev.kiln.cuda;

import dev.kiln.backend.Backend;
import dev.kiln.backend.BinaryOp;
import dev.kiln.backend.Buffer;
import dev.kiln.backend.ScalarOp;
import dev.kiln.backend.UnaryOp;
import dev.kiln.cpu.CpuBackendProvider;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The element-wise kernels' own source (src/main/cuda/elementwise.cu), compiled for the host with g++ and run as one
 * thread ({@link HostKernelHarness}), against the CPU backend, bit for bit, on special values:
 * NaN on either side, infinities, signed zeros. Only the exactly rounded ops (the transcendental ones would compare
 * glibc with glibc, not with CUDA's libdevice), and for MAX/MIN not two zeros of opposite sign (the sign fmaxf/fminf
 * gives them is glibc's here and PTX's max/min.f32 on a GPU). Skipped, saying so, where g++ is missing.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class HostKernelsTest {

    private static final float[] VALUES = {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, 0f, -0f, 0.5f,
            -2f, 3f, 1e-30f, -7.25f};
    private static final float[] SCALARS = {Float.NaN, 0.75f, -2.5f, 0f, Float.POSITIVE_INFINITY};
    private static final List<UnaryOp> EXACT_UNARY = List.of(UnaryOp.NEG, UnaryOp.ABS, UnaryOp.SQUARE, UnaryOp.RECIPROCAL);
    private static final List<ScalarOp> EXACT_SCALAR = List.of(ScalarOp.ADD, ScalarOp.MUL, ScalarOp.RSUB,
            ScalarOp.MAX, ScalarOp.MIN);

    private HostKernelHarness harness;
    private Backend cpu;

    @BeforeAll
    void build(@TempDir Path dir) throws Exception {
        harness = HostKernelHarness.start(dir);
        cpu = new CpuBackendProvider().create(Map.of());
    }

    @AfterAll
    void stop() throws IOException {
        if (harness != null) {
            harness.close();
        }
        if (cpu != null) {
            cpu.close();
        }
    }

    private float[] ask(String request) throws IOException {
        return harness.ask(request);
    }

    private static String hex(float... v) {
        return HostKernelHarness.hex(v);
    }

    private float[] onCpu(java.util.function.BiConsumer<Buffer, Buffer> op, float[] x, int n) {
        try (Buffer xb = cpu.upload(x, 0, x.length); Buffer yb = cpu.allocate(n)) {
            op.accept(xb, yb);
            float[] y = new float[n];
            cpu.download(yb, 0, y, 0, n);
            return y;
        }
    }

    private static boolean zeros(float a, float b) {
        return a == 0f && b == 0f;
    }

    private static void assertSameBits(String what, float[] inputs, float s, boolean minMax, float[] want, float[] got) {
        assertEquals(want.length, got.length, what);
        List<String> diffs = new ArrayList<>();
        for (int i = 0; i < want.length; i++) {
            if (minMax && zeros(inputs[i], s)) {
                continue;
            }
            boolean same = Float.isNaN(want[i]) ? Float.isNaN(got[i]) : Float.floatToRawIntBits(want[i]) == Float.floatToRawIntBits(got[i]);
            if (!same) {
                diffs.add("x=" + inputs[i] + ": cpu " + want[i] + ", kernel " + got[i]);
            }
        }
        assertTrue(diffs.isEmpty(), what + ": " + diffs);
    }

    @Test
    @DisplayName("unary NEG/ABS/SQUARE/RECIPROCAL: the kernel's source equals the CPU backend on special values")
    void unary() throws IOException {
        int n = VALUES.length;
        for (UnaryOp op : EXACT_UNARY) {
            float[] got = ask("unary " + op.code() + " " + n + hex(VALUES));
            float[] want = onCpu((x, y) -> cpu.unary(op, x, y, n), VALUES, n);
            assertSameBits("unary " + op, VALUES, 1f, false, want, got);
        }
    }

    @Test
    @DisplayName("scalar ops, NaN scalar included (max(x, NaN) is NaN): the kernel's source equals the CPU backend")
    void scalar() throws IOException {
        int n = VALUES.length;
        for (ScalarOp op : EXACT_SCALAR) {
            for (float s : SCALARS) {
                float[] got = ask("scalar " + op.code() + hex(s) + " " + n + hex(VALUES));
                float[] want = onCpu((x, y) -> cpu.scalar(op, x, s, y, n), VALUES, n);
                assertSameBits("scalar " + op + " s=" + s, VALUES, s, op == ScalarOp.MAX || op == ScalarOp.MIN, want, got);
            }
        }
        float[] maxNan = ask("scalar " + ScalarOp.MAX.code() + hex(Float.NaN) + " 2" + hex(0.5f, -3f));
        assertTrue(Float.isNaN(maxNan[0]) && Float.isNaN(maxNan[1]), "max(x, NaN) must be NaN, got " + maxNan[0] + ", " + maxNan[1]);
    }

    @Test
    @DisplayName("binary ops on every pair of special values: the kernel's source equals the CPU backend")
    void binary() throws IOException {
        int k = VALUES.length;
        int n = k * k;
        float[] a = new float[n];
        float[] b = new float[n];
        for (int i = 0; i < k; i++) {
            for (int j = 0; j < k; j++) {
                a[i * k + j] = VALUES[i];
                b[i * k + j] = VALUES[j];
            }
        }
        for (BinaryOp op : BinaryOp.values()) {
            float[] got = ask("binary " + op.code() + " " + n + hex(a) + hex(b));
            float[] want;
            try (Buffer ab = cpu.upload(a, 0, n); Buffer bb = cpu.upload(b, 0, n); Buffer yb = cpu.allocate(n)) {
                cpu.binary(op, ab, new int[]{n}, bb, new int[]{n}, yb, new int[]{n});
                want = new float[n];
                cpu.download(yb, 0, want, 0, n);
            }
            List<String> diffs = new ArrayList<>();
            boolean minMax = op == BinaryOp.MAX || op == BinaryOp.MIN;
            for (int i = 0; i < n; i++) {
                if (minMax && zeros(a[i], b[i])) {
                    continue;
                }
                boolean same = Float.isNaN(want[i]) ? Float.isNaN(got[i])
                        : Float.floatToRawIntBits(want[i]) == Float.floatToRawIntBits(got[i]);
                if (!same) {
                    diffs.add("(" + a[i] + ", " + b[i] + "): cpu " + want[i] + ", kernel " + got[i]);
                }
            }
            assertTrue(diffs.isEmpty(), "binary " + op + ": " + diffs);
        }
    }
}
