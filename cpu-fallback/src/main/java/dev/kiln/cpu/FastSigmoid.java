package dev.kiln.cpu;

/**
 * Sigmoid that the JIT vectorises. {@code Math.exp} is a scalar call (about 5 ns an element), which made the first
 * sigmoid of LeNet cost as much as a convolution. Here {@code e^-x = (e^(-x/16))^16}: a degree-10 Taylor polynomial on
 * |x/16| <= 15/16 (truncation below 2e-7 after the squarings) and four squarings (float rounding amplified 16 times),
 * so the relative error is below 3e-6 for |x| <= 15 (measured 2.2e-6 on 300k normal samples with std 6). Beyond 15 a
 * scalar fix-up uses {@code Math.exp}: those elements are rare in practice and exact there keeps the tails exact.
 * Plain multiply-adds and min/max only, so C2's superword pass turns the main loop into AVX2 code.
 */
final class FastSigmoid {

    private static final float LIMIT = 15f;
    private static final float C3 = 1f / 6;
    private static final float C4 = 1f / 24;
    private static final float C5 = 1f / 120;
    private static final float C6 = 1f / 720;
    private static final float C7 = 1f / 5040;
    private static final float C8 = 1f / 40320;
    private static final float C9 = 1f / 362880;
    private static final float C10 = 1f / 3628800;

    private FastSigmoid() {
    }

    /** {@code y[i] = 1 / (1 + e^-x[i])} for {@code lo <= i < hi}; NaN stays NaN. */
    static void apply(float[] x, float[] y, int lo, int hi) {
        for (int i = lo; i < hi; i++) {
            float v = Math.max(-LIMIT, Math.min(LIMIT, -x[i])) * 0.0625f;
            float p = 1f + v * (1f + v * (0.5f + v * (C3 + v * (C4 + v * (C5 + v * (C6 + v * (C7 + v * (C8 + v * (C9 + v * C10)))))))));
            p = p * p;
            p = p * p;
            p = p * p;
            p = p * p;
            y[i] = 1f / (1f + p);
        }
        for (int i = lo; i < hi; i++) {
            float v = x[i];
            if (v > LIMIT || v < -LIMIT) {
                y[i] = (float) (1.0 / (1.0 + Math.exp(-(double) v)));
            }
        }
    }
}
