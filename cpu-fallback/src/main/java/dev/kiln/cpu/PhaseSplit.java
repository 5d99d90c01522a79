package dev.kiln.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.LongVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Splits a row of pixels by column parity, the stride-2 phase split of {@link ImplicitConv}'s forward, and joins two
 * parity rows into one, its strided input gradient's scatter. With 512-bit vectors, 16 floats are read as 8 longs and
 * each long is narrowed to its low int (the even pixel) and, shifted right by 32, to its high int (the odd one); the
 * join widens 8 even and 8 odd floats' bits to longs and puts the odd ones in the high halves. The JIT compiles these
 * conversions to single instructions on JDK 17, where the Vector API's shuffles and masked stores are several times
 * slower than a scalar loop.
 *
 * <p>Every vector here is 512 bits wide, the shape of all of the backend's kernels: running vectors of a second shape
 * in the same JVM spoils the JIT's type profiles of the Vector API's shared code, and kernels compiled afterwards can
 * lose their intrinsics (see docs/performance.md, "One vector shape"). So a narrowed half is stored as a whole
 * vector whose upper half is zero, and a half to widen is read as a whole vector.
 */
final class PhaseSplit {

    private static final VectorSpecies<Float> S = VectorSgemm.SPECIES;
    private static final VectorSpecies<Integer> INTS = IntVector.SPECIES_512;
    private static final VectorSpecies<Long> PAIRS = LongVector.SPECIES_512;
    private static final int L = S.length();
    private static final boolean VECTOR = S.vectorBitSize() == 512;

    private PhaseSplit() {
    }

    /**
     * Whether {@link #split} runs on vectors for rows of {@code len} pixels: a vector or more (a narrower row read as
     * one vector, with the lanes past it put back to zero, measured slower than the scalar split).
     */
    static boolean splits(int len) {
        return VECTOR && len >= L;
    }

    /**
     * Floats past {@code even} (or {@code odd}) that {@link #split} writes for a row of {@code len}: the run's
     * {@code (len + 1) / 2} (or {@code len / 2}) pixels, then zeros.
     */
    static int splitExtent(int len) {
        return ((len - L) & ~1) / 2 + L;
    }

    /**
     * {@code xp[even + j] = x[s + 2j]} for {@code j < (len + 1) / 2} and {@code xp[odd + j] = x[s + 2j + 1]} for
     * {@code j < len / 2}, for a row that {@link #splits}; past each run, up to {@link #splitExtent}, it writes
     * zeros, so the caller keeps there only padding or floats it writes afterwards.
     */
    static void split(float[] x, int s, int len, float[] xp, int even, int odd) {
        int last = (len - L) & ~1;
        for (int i = 0; ; i += L) {
            int at = Math.min(i, last);
            splitVector(x, s + at, xp, even + at / 2, odd + at / 2);
            if (at == last) {
                break;
            }
        }
        if ((len & 1) != 0) {
            xp[even + len / 2] = x[s + len - 1];
        }
    }

    private static void splitVector(float[] x, int s, float[] xp, int even, int odd) {
        LongVector pairs = FloatVector.fromArray(S, x, s).reinterpretAsLongs();
        ((IntVector) pairs.convertShape(VectorOperators.L2I, INTS, 0)).reinterpretAsFloats().intoArray(xp, even);
        ((IntVector) pairs.lanewise(VectorOperators.LSHR, 32).convertShape(VectorOperators.L2I, INTS, 0))
                .reinterpretAsFloats().intoArray(xp, odd);
    }

    /** Whether {@link #join} runs on vectors for rows of {@code len} pixels: at least half a vector. */
    static boolean joins(int len) {
        return VECTOR && len >= L / 2;
    }

    /**
     * {@code dst[d + 2j] = even[e + j]} for {@code j < (len + 1) / 2} and {@code dst[d + 2j + 1] = odd[o + j]} for
     * {@code j < len / 2}, for a row that {@link #joins}; reads up to a vector past each run. A row narrower than a
     * vector is joined as one vector, whose floats past the row the caller writes again afterwards, so where that
     * vector would reach past {@code writable} the row is joined by scalar code.
     */
    static void join(float[] even, int e, float[] odd, int o, int len, float[] dst, int d, int writable) {
        if (len < L) {
            if (d + L <= writable) {
                joinVector(even, e, odd, o, dst, d);
                return;
            }
            int pairs = len / 2;
            for (int j = 0; j < pairs; j++) {
                dst[d + 2 * j] = even[e + j];
                dst[d + 2 * j + 1] = odd[o + j];
            }
            if ((len & 1) != 0) {
                dst[d + len - 1] = even[e + pairs];
            }
            return;
        }
        int last = (len - L) & ~1;
        for (int i = 0; ; i += L) {
            int at = Math.min(i, last);
            joinVector(even, e + at / 2, odd, o + at / 2, dst, d + at);
            if (at == last) {
                break;
            }
        }
        if ((len & 1) != 0) {
            dst[d + len - 1] = even[e + len / 2];
        }
    }

    private static void joinVector(float[] even, int e, float[] odd, int o, float[] dst, int d) {
        LongVector low = (LongVector) FloatVector.fromArray(S, even, e).reinterpretAsInts()
                .convertShape(VectorOperators.I2L, PAIRS, 0);
        LongVector high = (LongVector) FloatVector.fromArray(S, odd, o).reinterpretAsInts()
                .convertShape(VectorOperators.I2L, PAIRS, 0);
        low.and(0xFFFFFFFFL).or(high.lanewise(VectorOperators.LSHL, 32)).reinterpretAsFloats().intoArray(dst, d);
    }
}
