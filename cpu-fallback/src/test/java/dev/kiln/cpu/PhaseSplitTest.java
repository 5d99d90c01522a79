package dev.kiln.cpu;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

/** {@link PhaseSplit}'s contracts, row length by row length, against plain loops. */
class PhaseSplitTest {

    @Test
    void splitWritesEachRunThenZerosUpToItsExtentAndNothingElse() {
        Assumptions.assumeTrue(SimdSupport.ENABLED, "PhaseSplit is a SIMD kernel");
        Assumptions.assumeTrue(PhaseSplit.splits(64), "PhaseSplit runs on 512-bit vectors only");
        int L = VectorSgemm.L;
        assertFalse(PhaseSplit.splits(L - 1), "rows narrower than a vector");
        Random random = new Random(7);
        for (int len = L; len <= 3 * L + 3; len++) {
            for (int s : new int[]{0, 1, 5}) {
                float[] x = new float[s + len + 2 * L];
                for (int i = 0; i < x.length; i++) {
                    x[i] = random.nextFloat() + 1f;
                }
                int extent = PhaseSplit.splitExtent(len);
                int even = 3, odd = even + extent + 7;
                float[] xp = new float[odd + extent + 9];
                Arrays.fill(xp, -1f);
                PhaseSplit.split(x, s, len, xp, even, odd);
                float[] expected = new float[xp.length];
                Arrays.fill(expected, -1f);
                Arrays.fill(expected, even, even + extent, 0f);
                Arrays.fill(expected, odd, odd + extent, 0f);
                for (int j = 0; 2 * j < len; j++) {
                    expected[even + j] = x[s + 2 * j];
                }
                for (int j = 0; 2 * j + 1 < len; j++) {
                    expected[odd + j] = x[s + 2 * j + 1];
                }
                assertEquals(Arrays.toString(expected), Arrays.toString(xp), "len " + len + ", s " + s);
            }
        }
    }

    @Test
    void joinInterleavesAndSpillsOnlyBelowTheWritableBound() {
        Assumptions.assumeTrue(SimdSupport.ENABLED, "PhaseSplit is a SIMD kernel");
        Assumptions.assumeTrue(PhaseSplit.joins(64), "PhaseSplit runs on 512-bit vectors only");
        int L = VectorSgemm.L;
        assertFalse(PhaseSplit.joins(L / 2 - 1), "rows narrower than half a vector");
        Random random = new Random(11);
        for (int len = L / 2; len <= 3 * L + 3; len++) {
            float[] even = new float[len + 2 * L];
            float[] odd = new float[len + 2 * L];
            for (int i = 0; i < even.length; i++) {
                even[i] = random.nextFloat() + 1f;
                odd[i] = -random.nextFloat() - 1f;
            }
            for (int room : new int[]{0, L}) {
                int d = 4;
                float[] dst = new float[d + len + room + 5];
                Arrays.fill(dst, 9f);
                int writable = d + len + room;
                PhaseSplit.join(even, 2, odd, 3, len, dst, d, writable);
                for (int j = 0; j < len; j++) {
                    assertEquals(j % 2 == 0 ? even[2 + j / 2] : odd[3 + j / 2], dst[d + j], "len " + len + " at " + j);
                }
                for (int i = 0; i < d; i++) {
                    assertEquals(9f, dst[i], "before the row, len " + len);
                }
                for (int i = writable; i < dst.length; i++) {
                    assertEquals(9f, dst[i], "past the writable bound, len " + len + " room " + room);
                }
            }
        }
    }
}
