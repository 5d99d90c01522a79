package dev.kiln.core;

/**
 * Single-precision log, sine and cosine by the Cephes polynomials, evaluated operation for operation as PyTorch's
 * AVX2 normal sampler evaluates them (its {@code avx_mathfun.h}, after Pommier's {@code sse_mathfun}), including the
 * multiply-adds the compiler fused there. These are not the most accurate float functions; they are the ones whose
 * roundings {@code torch.randn} inherits on an AVX2 machine, which is what bit-exact reproduction needs.
 */
final class CephesFloatMath {

    private CephesFloatMath() {
    }

    private static final float SQRTHF = (float) 0.707106781186547524;
    private static final float LOG_P0 = (float) 7.0376836292E-2;
    private static final float LOG_P1 = (float) -1.1514610310E-1;
    private static final float LOG_P2 = (float) 1.1676998740E-1;
    private static final float LOG_P3 = (float) -1.2420140846E-1;
    private static final float LOG_P4 = (float) 1.4249322787E-1;
    private static final float LOG_P5 = (float) -1.6668057665E-1;
    private static final float LOG_P6 = (float) 2.0000714765E-1;
    private static final float LOG_P7 = (float) -2.4999993993E-1;
    private static final float LOG_P8 = (float) 3.3333331174E-1;
    private static final float LOG_Q1 = (float) -2.12194440e-4;
    private static final float LOG_Q2 = (float) 0.693359375;

    private static final float MINUS_DP1 = (float) -0.78515625;
    private static final float MINUS_DP2 = (float) -2.4187564849853515625e-4;
    private static final float MINUS_DP3 = (float) -3.77489497744594108e-8;
    private static final float SINCOF_P0 = (float) -1.9515295891E-4;
    private static final float SINCOF_P1 = (float) 8.3321608736E-3;
    private static final float SINCOF_P2 = (float) -1.6666654611E-1;
    private static final float COSCOF_P0 = (float) 2.443315711809948E-005;
    private static final float COSCOF_P1 = (float) -1.388731625493765E-003;
    private static final float COSCOF_P2 = (float) 4.166664568298827E-002;
    private static final float FOUR_OVER_PI = (float) 1.27323954473516;

    /**
     * A product feeding an addition, in one rounding: the compiler fused these in the AVX2 build of PyTorch (checked
     * against {@code torch.randn}; unfused, about 1% of values differ in the last bit).
     */
    private static float madd(float a, float b, float c) {
        return Math.fma(a, b, c);
    }

    /** Natural logarithm of a positive float; NaN for {@code x <= 0}. */
    static float log(float x) {
        if (!(x > 0f)) {
            return Float.NaN;
        }
        x = Math.max(x, Float.MIN_NORMAL);
        int bits = Float.floatToRawIntBits(x);
        int exponent = (bits >>> 23) - 0x7f;
        x = Float.intBitsToFloat((bits & ~0x7f800000) | Float.floatToRawIntBits(0.5f));
        float e = (float) exponent + 1f;
        boolean below = x < SQRTHF;
        float tmp = below ? x : 0f;
        x = x - 1f;
        e = e - (below ? 1f : 0f);
        x = x + tmp;
        float z = x * x;
        float y = madd(LOG_P0, x, LOG_P1);
        y = madd(y, x, LOG_P2);
        y = madd(y, x, LOG_P3);
        y = madd(y, x, LOG_P4);
        y = madd(y, x, LOG_P5);
        y = madd(y, x, LOG_P6);
        y = madd(y, x, LOG_P7);
        y = madd(y, x, LOG_P8);
        y = y * x;
        y = madd(y, z, e * LOG_Q1);
        y = y - z * 0.5f;
        x = x + y;
        return madd(e, LOG_Q2, x);
    }

    /** Sine and cosine of {@code x} into {@code out[0]} and {@code out[1]}. */
    static void sincos(float x, float[] out) {
        int signSin = Float.floatToRawIntBits(x) & 0x80000000;
        x = Math.abs(x);
        float y = x * FOUR_OVER_PI;
        int j = (int) y;
        j = (j + 1) & ~1;
        y = (float) j;
        int swapSignSin = (j & 4) << 29;
        boolean sinPolynomial = (j & 2) == 0;
        x = madd(y, MINUS_DP1, x);
        x = madd(y, MINUS_DP2, x);
        x = madd(y, MINUS_DP3, x);
        int signCos = (~(j - 2) & 4) << 29;
        signSin ^= swapSignSin;
        float z = x * x;
        float c = madd(COSCOF_P0, z, COSCOF_P1);
        c = madd(c, z, COSCOF_P2);
        c = c * z;
        c = madd(c, z, -(z * 0.5f));
        c = c + 1f;
        float s = madd(SINCOF_P0, z, SINCOF_P1);
        s = madd(s, z, SINCOF_P2);
        s = s * z;
        s = madd(s, x, x);
        float sinValue = sinPolynomial ? 0f + s : c + 0f;
        float cosValue = sinPolynomial ? c + 0f : 0f + s;
        out[0] = Float.intBitsToFloat(Float.floatToRawIntBits(sinValue) ^ signSin);
        out[1] = Float.intBitsToFloat(Float.floatToRawIntBits(cosValue) ^ signCos);
    }
}
