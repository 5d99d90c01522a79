package dev.kiln.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * The forward of LeNet's 2x2, stride-2 average pooling on the Vector API, for planes with even sides: the even and
 * odd elements of two input rows are separated with constant shuffles, so each output is
 * {@code ((x00 + x01) + (x10 + x11)) * 0.25} in the scalar kernel's order (the same value). Output rows shorter than a
 * vector (LeNet's 14) go through a small buffer, so nothing outside the plane is written; rows whose vector loads
 * would pass the end of the array take the scalar loop. (A backward that duplicated each gradient into two lanes was
 * no faster at batch 64 and 3x slower at batch 256, so the backward stays scalar.)
 *
 * <p>Loaded only when {@link SimdSupport#ENABLED}.
 */
final class VectorPool {

    private static final VectorSpecies<Float> S = VectorSgemm.SPECIES;
    private static final int L = VectorSgemm.L;
    private static final VectorShuffle<Float> EVEN = shuffle(0);
    private static final VectorShuffle<Float> ODD = shuffle(1);
    private static final VectorMask<Float> HIGH_HALF = highHalf();

    private VectorPool() {
    }

    private static VectorShuffle<Float> shuffle(int parity) {
        int[] idx = new int[L];
        for (int i = 0; i < L; i++) {
            idx[i] = (2 * i + parity) % L;
        }
        return VectorShuffle.fromArray(S, idx, 0);
    }

    private static VectorMask<Float> highHalf() {
        boolean[] bits = new boolean[L];
        for (int i = L / 2; i < L; i++) {
            bits[i] = true;
        }
        return VectorMask.fromArray(S, bits, 0);
    }

    /** Pair sums {@code x[o + 2j] + x[o + 2j + 1]} for {@code j < L}. */
    private static FloatVector pairSums(float[] x, int o) {
        FloatVector a = FloatVector.fromArray(S, x, o);
        FloatVector b = FloatVector.fromArray(S, x, o + L);
        FloatVector even = a.rearrange(EVEN).blend(b.rearrange(EVEN), HIGH_HALF);
        FloatVector odd = a.rearrange(ODD).blend(b.rearrange(ODD), HIGH_HALF);
        return even.add(odd);
    }

    /** Forward over planes {@code [lo, hi)} of {@code ih x iw} inputs (both even). */
    static void avgForward(float[] x, float[] y, int ih, int iw, int lo, int hi) {
        int oh = ih / 2, ow = iw / 2;
        float[] row = new float[L];
        for (int pl = lo; pl < hi; pl++) {
            int xo = pl * ih * iw, yo = pl * oh * ow;
            for (int oy = 0; oy < oh; oy++) {
                int r0 = xo + 2 * oy * iw, r1 = r0 + iw, o = yo + oy * ow;
                for (int ox = 0; ox < ow; ox += L) {
                    int count = Math.min(L, ow - ox);
                    if (r1 + 2 * ox + 2 * L > x.length) {
                        for (int j = ox; j < ox + count; j++) {
                            y[o + j] = ((x[r0 + 2 * j] + x[r0 + 2 * j + 1]) + (x[r1 + 2 * j] + x[r1 + 2 * j + 1])) * 0.25f;
                        }
                        continue;
                    }
                    FloatVector v = pairSums(x, r0 + 2 * ox).add(pairSums(x, r1 + 2 * ox)).mul(0.25f);
                    if (count == L) {
                        v.intoArray(y, o + ox);
                    } else {
                        v.intoArray(row, 0);
                        System.arraycopy(row, 0, y, o + ox, count);
                    }
                }
            }
        }
    }
}
