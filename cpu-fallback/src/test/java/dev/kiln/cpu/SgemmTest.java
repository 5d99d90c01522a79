package dev.kiln.cpu;

import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SgemmTest {

    static float[] random(Random r, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = r.nextFloat() * 2f - 1f;
        }
        return a;
    }

    /** The path every kernel takes in this JVM: the SIMD one, since the test runs add the Vector API module. */
    @Test
    void matchesNaiveForAllTransposesAndOddSizes() {
        assertTrue(SimdSupport.modulePresent(), "surefire's argLine should add jdk.incubator.vector");
        boolean off = "false".equals(System.getProperty(SimdSupport.PROPERTY));
        assertEquals(!off && VectorSgemm.L >= 8, SimdSupport.ENABLED, "auto mode uses SIMD when vectors hold >= 8 floats");
        matchesNaive(false);
    }

    /** The scalar path, which runs where the module is absent or -Dkiln.cpu.simd=false. */
    @Test
    void scalarPathMatchesNaiveForAllTransposesAndOddSizes() {
        matchesNaive(true);
    }

    /** Sizes around the SIMD blocking: 8-row blocks with 4/2/1-row tails, 2-vector column blocks with tails. */
    @Test
    void simdBlockEdgesMatchNaive() {
        Random r = new Random(7);
        Scratch s = new Scratch();
        int nr = VectorSgemm.NR;
        for (boolean ta : new boolean[]{false, true}) {
            for (boolean tb : new boolean[]{false, true}) {
                for (int m : new int[]{6, 7, 8, 15, 16}) {
                    for (int n : new int[]{nr - 1, nr, nr + 1, 3 * nr + 4}) {
                        check(r, s, ta, tb, m, n, 150, 1f, 0f, false);
                    }
                }
                check(r, s, ta, tb, 16, 100, 520, 1f, 1f, false);
            }
        }
    }

    private static void matchesNaive(boolean scalar) {
        int[] sizes = {1, 3, 17, 65, 130};
        Random r = new Random(42);
        Scratch s = new Scratch();
        for (boolean ta : new boolean[]{false, true}) {
            for (boolean tb : new boolean[]{false, true}) {
                for (int m : sizes) {
                    for (int n : sizes) {
                        for (int k : new int[]{1, 3, 17, 65, 300}) {
                            check(r, s, ta, tb, m, n, k, 1f, 0f, scalar);
                        }
                    }
                }
                check(r, s, ta, tb, 65, 300, 130, 0.5f, -2f, scalar);
                check(r, s, ta, tb, 17, 3, 600, 1.5f, 1f, scalar);
            }
        }
    }

    private static void check(Random r, Scratch s, boolean ta, boolean tb, int m, int n, int k, float alpha, float beta,
                              boolean scalar) {
        float[] a = random(r, m * k), b = random(r, k * n), c = random(r, m * n);
        if (beta == 0f) {
            java.util.Arrays.fill(c, Float.NaN); // beta == 0 must ignore C, NaN included
        }
        float[] c0 = c.clone();
        if (scalar) {
            Sgemm.gemmScalar(ta, tb, m, n, k, alpha, a, 0, ta ? m : k, b, 0, tb ? k : n, beta, c, 0, n, s);
        } else {
            Sgemm.gemm(ta, tb, m, n, k, alpha, a, 0, ta ? m : k, b, 0, tb ? k : n, beta, c, 0, n, s);
        }
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double sum = 0, mag = 0;
                for (int p = 0; p < k; p++) {
                    double av = ta ? a[p * m + i] : a[i * k + p];
                    double bv = tb ? b[j * k + p] : b[p * n + j];
                    sum += av * bv;
                    mag += Math.abs(av * bv);
                }
                double expect = alpha * sum + (beta == 0f ? 0 : beta * c0[i * n + j]);
                double tol = 1e-5 * (Math.abs(alpha) * mag + Math.abs(beta * (beta == 0f ? 0 : c0[i * n + j]))) + 1e-6;
                assertEquals(expect, c[i * n + j], tol, "ta=" + ta + " tb=" + tb + " m=" + m + " n=" + n + " k=" + k
                        + " at (" + i + "," + j + ")");
            }
        }
    }

    @Test
    void zeroDepthScalesC() {
        Scratch s = new Scratch();
        float[] c = {1, 2, 3, 4};
        Sgemm.gemm(false, false, 2, 2, 0, 1f, new float[0], 0, 0, new float[0], 0, 2, 2f, c, 0, 2, s);
        assertEquals(8f, c[3]);
        Sgemm.gemmScalar(false, false, 2, 2, 0, 1f, new float[0], 0, 0, new float[0], 0, 2, 2f, c, 0, 2, s);
        assertEquals(16f, c[3]);
        Sgemm.gemm(false, false, 2, 2, 0, 1f, new float[0], 0, 0, new float[0], 0, 2, 0f, c, 0, 2, s);
        assertEquals(0f, c[0]);
    }
}
