package dev.kiln.cpu;

import dev.kiln.backend.Activation;

/** Fused activation forward and backward; the backward uses the forward output where that is cheaper. */
final class ActivationKernels {

    static final int GRAIN = 8192;

    private ActivationKernels() {
    }

    static void forward(Activation a, float[] x, float[] y, int n, Parallel par) {
        par.parallelFor(n, GRAIN, (lo, hi) -> range(a, x, y, lo, hi));
    }

    /** {@code y[i] = a(x[i])} for {@code lo <= i < hi}; {@code y} may be {@code x}. */
    static void range(Activation a, float[] x, float[] y, int lo, int hi) {
        switch (a) {
            case IDENTITY -> {
                if (x != y) System.arraycopy(x, lo, y, lo, hi - lo);
            }
            case SIGMOID -> {
                if (SimdSupport.ENABLED) {
                    VectorActivation.sigmoid(x, y, lo, hi);
                } else {
                    sigmoidRange(x, y, lo, hi);
                }
            }
            case RELU -> {
                // NaN propagates like PyTorch's relu (clamp_min), and so does Math.max; -0 gives +0 in both. Math.max
                // has no branch: a branch on the sign mispredicts on half of a ReLU's inputs
                for (int i = lo; i < hi; i++) {
                    y[i] = Math.max(x[i], 0f);
                }
            }
            case TANH -> {
                for (int i = lo; i < hi; i++) y[i] = (float) Math.tanh(x[i]);
            }
            case RELU6 -> {
                for (int i = lo; i < hi; i++) y[i] = Math.min(Math.max(x[i], 0f), 6f); // Math.min/max keep NaN
            }
            default -> throw new IllegalArgumentException("no CPU kernel for activation " + a);
        }
    }

    /** {@code y = a(x + bias[c])} over {@code (outer, channels, inner)}; {@code y} may be {@code x}. */
    static void biasActivation(Activation a, int outer, int channels, int inner, float[] x, float[] bias, float[] y,
                               Parallel par) {
        // over the outer index: each chunk is one contiguous span, so the activation runs over whole vectors even
        // when a channel's row is a single value (a Linear layer's (N, C) output)
        int block = channels * inner;
        par.parallelFor(outer, Math.max(1, GRAIN / Math.max(1, block)), (lo, hi) -> {
            for (int o = lo; o < hi; o++) {
                for (int c = 0; c < channels; c++) {
                    float b = bias[c];
                    int from = (o * channels + c) * inner;
                    int to = from + inner;
                    for (int i = from; i < to; i++) {
                        y[i] = x[i] + b;
                    }
                }
            }
            range(a, y, y, lo * block, hi * block);
        });
    }

    /** Below this input the rational form's relative error grows; such values take the exact path. */
    static final float EXACT_BELOW = -1.5f;

    /**
     * Sigmoid of {@code x[lo..hi)} in two passes: a branch-free pass C2 vectorises,
     * {@code 0.5 * tanh(x/2) + 0.5} with tanh as a clamped 13/6 rational polynomial (Eigen's fast tanh; within 4 ulp of
     * the float64 result where it is used), then a scalar pass that recomputes {@code x < -1.5} (small outputs, where
     * relative accuracy needs the exponential; about 7% of batch-normalised inputs) with {@link Math#exp}.
     * NaN propagates (Math.min/max keep it). In place ({@code y == x}) the second pass would read outputs, so the
     * inputs go through a small copy, block by block.
     */
    static void sigmoidRange(float[] x, float[] y, int lo, int hi) {
        if (x != y) {
            sigmoidTwoPass(x, lo, y, lo, hi - lo);
            return;
        }
        float[] in = new float[Math.min(SIGMOID_BLOCK, Math.max(0, hi - lo))];
        for (int i = lo; i < hi; i += SIGMOID_BLOCK) {
            int len = Math.min(SIGMOID_BLOCK, hi - i);
            System.arraycopy(x, i, in, 0, len);
            sigmoidTwoPass(in, 0, y, i, len);
        }
    }

    private static final int SIGMOID_BLOCK = 512;

    private static void sigmoidTwoPass(float[] x, int xOff, float[] y, int yOff, int len) {
        for (int k = 0; k < len; k++) {
            y[yOff + k] = sigmoidRational(x[xOff + k]);
        }
        for (int k = 0; k < len; k++) {
            float v = x[xOff + k];
            if (v < EXACT_BELOW) {
                y[yOff + k] = (float) (1.0 / (1.0 + Math.exp(-v)));
            }
        }
    }

    static float sigmoidRational(float x) {
        float h = Math.max(-7.90531110763549805f, Math.min(7.90531110763549805f, 0.5f * x));
        float h2 = h * h;
        float p = -2.76076847742355e-16f;
        p = p * h2 + 2.00018790482477e-13f;
        p = p * h2 + -8.60467152213735e-11f;
        p = p * h2 + 5.12229709037114e-08f;
        p = p * h2 + 1.48572235717979e-05f;
        p = p * h2 + 6.37261928875436e-04f;
        p = p * h2 + 4.89352455891786e-03f;
        p = p * h;
        float q = 1.19825839466702e-06f;
        q = q * h2 + 1.18534705686654e-04f;
        q = q * h2 + 2.26843463243900e-03f;
        q = q * h2 + 4.89352518554385e-03f;
        return 0.5f * (p / q) + 0.5f;
    }

    static void backward(Activation a, float[] x, float[] y, float[] dy, float[] dx, int n, Parallel par) {
        par.parallelFor(n, GRAIN, (lo, hi) -> backwardRange(a, y, dy, dx, lo, hi));
    }

    /**
     * {@code dx[i] = dy[i] * a'(.)} for {@code lo <= i < hi}, the derivative taken from the forward output {@code y};
     * {@code dx} may be {@code dy}.
     */
    static void backwardRange(Activation a, float[] y, float[] dy, float[] dx, int lo, int hi) {
        switch (a) {
            case IDENTITY -> {
                if (dx != dy) System.arraycopy(dy, lo, dx, lo, hi - lo);
            }
            case SIGMOID -> {
                for (int i = lo; i < hi; i++) {
                    float s = y[i];
                    dx[i] = dy[i] * (s * (1f - s));
                }
            }
            case RELU -> {
                if (SimdSupport.ENABLED) {
                    VectorActivation.reluBackward(y, dy, dx, lo, hi);
                    return;
                }
                // dy where y > 0, else +0, without a branch (it would mispredict on half of the elements): the
                // mask is all ones exactly when y's bits are those of a float in (0, +inf]
                for (int i = lo; i < hi; i++) {
                    int b = Float.floatToRawIntBits(y[i]);
                    int mask = (-b & (b - 0x7F800001)) >> 31;
                    dx[i] = Float.intBitsToFloat(Float.floatToRawIntBits(dy[i]) & mask);
                }
            }
            case TANH -> {
                for (int i = lo; i < hi; i++) {
                    float t = y[i];
                    dx[i] = dy[i] * (1f - t * t);
                }
            }
            case RELU6 -> {
                for (int i = lo; i < hi; i++) dx[i] = y[i] <= 0f || y[i] >= 6f ? 0f : dy[i];
            }
            default -> throw new IllegalArgumentException("no CPU kernel for activation " + a);
        }
    }

    /** {@code y = a(x1 + x2)}, the sum rounded to float first as a separate add would; {@code y} may be an input. */
    static void addActivation(Activation a, float[] x1, float[] x2, float[] y, int n, Parallel par) {
        par.parallelFor(n, GRAIN, (lo, hi) -> {
            if (a == Activation.RELU) {
                for (int i = lo; i < hi; i++) {
                    y[i] = Math.max(x1[i] + x2[i], 0f);
                }
                return;
            }
            for (int i = lo; i < hi; i++) {
                y[i] = x1[i] + x2[i];
            }
            range(a, y, y, lo, hi);
        });
    }
}
