package dev.kiln.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Sigmoid on the Vector API: {@code e = exp(-|x|)} with a range-reduced polynomial in every lane, then
 * {@code 1 / (1 + e)} for {@code x >= 0} and {@code e / (1 + e)} below, so small outputs keep their relative
 * accuracy without a second, branchy pass. The exponential is the classic single-precision scheme (Cody-Waite
 * reduction by ln 2 in two parts, degree-5 minimax polynomial, the exponent put in by integer arithmetic): all lanes
 * do the same arithmetic, so the result is the same on every machine with the same vector width and independent of
 * the thread count. Within 3 ulp of the float64 sigmoid; inputs below {@link #SUBNORMAL_BELOW} (subnormal outputs)
 * and NaN take the scalar formula.
 *
 * <p>Loaded only when {@link SimdSupport#ENABLED}.
 */
final class VectorActivation {

    private static final VectorSpecies<Float> S = VectorSgemm.SPECIES;
    private static final int L = VectorSgemm.L;

    /** Below this the sigmoid is subnormal in float32, where the polynomial's scaling does not reach. */
    static final float SUBNORMAL_BELOW = -87f;

    private static final FloatVector ONE = FloatVector.broadcast(S, 1f);
    private static final float ROUNDER = 12582912f; // 1.5 * 2^23
    private static final int ROUNDER_BITS = Float.floatToIntBits(ROUNDER);
    private static final float LOG2E = 1.44269504088896341f;
    private static final float LN2_HI = 0.693359375f;
    private static final float LN2_LO = -2.12194440e-4f;

    private VectorActivation() {
    }

    static void sigmoid(float[] x, float[] y, int lo, int hi) {
        int i = lo;
        for (int end = lo + S.loopBound(hi - lo); i < end; i += L) {
            FloatVector v = FloatVector.fromArray(S, x, i);
            sigmoid(v).intoArray(y, i);
            fixOddLanes(v, y, i, L);
        }
        if (i < hi) {
            // the tail runs the same lane arithmetic on a zero-padded copy, so a value's result does not depend on
            // where a chunk boundary (the thread count) puts it (masked loads are not compiled to vector code on JDK 17)
            float[] tail = new float[L];
            System.arraycopy(x, i, tail, 0, hi - i);
            FloatVector v = FloatVector.fromArray(S, tail, 0);
            sigmoid(v).intoArray(tail, 0);
            System.arraycopy(tail, 0, y, i, hi - i);
            fixOddLanes(v, y, i, hi - i);
        }
    }

    /**
     * ReLU's backward from its output: {@code dy} where {@code y > 0} (+inf included, NaN not), else +0, the values of
     * the scalar kernel's bit mask; {@code dx} may be {@code dy}.
     */
    static void reluBackward(float[] y, float[] dy, float[] dx, int lo, int hi) {
        FloatVector zero = FloatVector.zero(S);
        int i = lo;
        for (int end = lo + S.loopBound(hi - lo); i < end; i += L) {
            zero.blend(FloatVector.fromArray(S, dy, i), FloatVector.fromArray(S, y, i).compare(VectorOperators.GT, 0f))
                    .intoArray(dx, i);
        }
        for (; i < hi; i++) {
            dx[i] = y[i] > 0f ? dy[i] : 0f;
        }
    }

    private static FloatVector sigmoid(FloatVector v) {
        FloatVector e = expNonPositive(v.abs().neg().max(SUBNORMAL_BELOW));
        FloatVector pos = ONE.div(ONE.add(e));
        return pos.blend(e.mul(pos), v.compare(VectorOperators.LT, 0f));
    }

    /** The odd lanes' inputs come from {@code v}, not from the array: with {@code y == x} it holds outputs by now. */
    private static void fixOddLanes(FloatVector v, float[] y, int i, int lanes) {
        VectorMask<Float> odd = v.compare(VectorOperators.LT, SUBNORMAL_BELOW).or(v.test(VectorOperators.IS_NAN));
        if (odd.anyTrue()) {
            for (int j = 0; j < lanes; j++) {
                if (odd.laneIsSet(j)) {
                    y[i + j] = scalar(v.lane(j));
                }
            }
        }
    }

    /** Subnormal outputs and NaN: the float64 formula (NaN stays NaN). */
    private static float scalar(float v) {
        return (float) (1.0 / (1.0 + Math.exp(-(double) v)));
    }

    /** {@code exp(a)} for {@code -87 <= a <= 0}. */
    private static FloatVector expNonPositive(FloatVector a) {
        // n = round(-a / ln 2) in [0, 126]: adding 1.5 * 2^23 rounds to an integer held in the low mantissa bits
        // (conversion instructions are not compiled to vector code on JDK 17; this is two adds)
        FloatVector t = a.mul(-LOG2E).add(ROUNDER);
        FloatVector nf = t.sub(ROUNDER);
        IntVector n = (IntVector) t.reinterpretAsInts();
        // r = a + n * ln 2, in two parts so r keeps its low bits (n * LN2_HI is exact)
        FloatVector r = nf.mul(LN2_HI).add(a).add(nf.mul(LN2_LO));
        FloatVector p = FloatVector.broadcast(S, 1.9875691500e-4f);
        p = p.fma(r, FloatVector.broadcast(S, 1.3981999507e-3f));
        p = p.fma(r, FloatVector.broadcast(S, 8.3334519073e-3f));
        p = p.fma(r, FloatVector.broadcast(S, 4.1665795894e-2f));
        p = p.fma(r, FloatVector.broadcast(S, 1.6666665459e-1f));
        p = p.fma(r, FloatVector.broadcast(S, 5.0000001201e-1f));
        p = p.fma(r.mul(r), r).add(1f);
        // 2^-n as float bits: (127 - n) << 23, where n = bits(t) - bits(ROUNDER)
        FloatVector scale = (FloatVector) n.neg().add(127 + ROUNDER_BITS).lanewise(VectorOperators.LSHL, 23)
                .reinterpretAsFloats();
        return p.mul(scale);
    }
}
