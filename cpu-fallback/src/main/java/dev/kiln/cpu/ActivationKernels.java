package dev.kiln.cpu;

import dev.kiln.backend.Activation;

/** Fused activation forward and backward; the backward uses the forward output where that is cheaper. */
final class ActivationKernels {

    static final int GRAIN = 8192;

    private ActivationKernels() {
    }

    static void forward(Activation a, float[] x, float[] y, int n, Parallel par) {
        par.parallelFor(n, GRAIN, (lo, hi) -> {
            switch (a) {
                case SIGMOID -> FastSigmoid.apply(x, y, lo, hi);
                case RELU -> {
                    // NaN propagates like PyTorch's relu (clamp_min)
                    for (int i = lo; i < hi; i++) {
                        float v = x[i];
                        y[i] = v > 0f || v != v ? v : 0f;
                    }
                }
                case TANH -> {
                    for (int i = lo; i < hi; i++) y[i] = (float) Math.tanh(x[i]);
                }
                default -> throw new IllegalArgumentException("unsupported activation " + a);
            }
        });
    }

    static void backward(Activation a, float[] x, float[] y, float[] dy, float[] dx, int n, Parallel par) {
        par.parallelFor(n, GRAIN, (lo, hi) -> {
            switch (a) {
                case SIGMOID -> {
                    for (int i = lo; i < hi; i++) {
                        float s = y[i];
                        dx[i] = dy[i] * (s * (1f - s));
                    }
                }
                case RELU -> {
                    for (int i = lo; i < hi; i++) dx[i] = y[i] > 0f ? dy[i] : 0f;
                }
                case TANH -> {
                    for (int i = lo; i < hi; i++) {
                        float t = y[i];
                        dx[i] = dy[i] * (1f - t * t);
                    }
                }
                default -> throw new IllegalArgumentException("unsupported activation " + a);
            }
        });
    }
}
