package dev.kiln.cpu;

/** Row softmax and fused softmax + cross-entropy, numerically stable (max subtracted), sums in double. */
final class SoftmaxKernels {

    private SoftmaxKernels() {
    }

    private static int grain(int cols) {
        return Math.max(1, 4096 / Math.max(1, cols));
    }

    /** Writes softmax of row r into y and returns log(sum(exp(x - max))) + max, the row's log-sum-exp. */
    private static double softmaxRow(float[] x, float[] y, int o, int cols) {
        float max = Float.NEGATIVE_INFINITY;
        boolean nan = false;
        for (int j = 0; j < cols; j++) {
            float v = x[o + j];
            if (v > max) {
                max = v;
            } else if (v != v) {
                nan = true;
            }
        }
        if (nan || max == Float.POSITIVE_INFINITY) {
            // NaN in, or +inf: no stable shift exists; let IEEE arithmetic produce NaN as PyTorch does
            for (int j = 0; j < cols; j++) {
                y[o + j] = Float.NaN;
            }
            return Double.NaN;
        }
        if (max == Float.NEGATIVE_INFINITY) {
            for (int j = 0; j < cols; j++) {
                y[o + j] = Float.NaN;
            }
            return Double.NaN;
        }
        double sum = 0;
        for (int j = 0; j < cols; j++) {
            double e = Math.exp((double) x[o + j] - max);
            y[o + j] = (float) e;
            sum += e;
        }
        double inv = 1.0 / sum;
        for (int j = 0; j < cols; j++) {
            y[o + j] = (float) (y[o + j] * inv);
        }
        return max + Math.log(sum);
    }

    static void forward(int rows, int cols, float[] x, float[] y, Parallel par) {
        par.parallelFor(rows, grain(cols), (lo, hi) -> {
            for (int r = lo; r < hi; r++) {
                softmaxRow(x, y, r * cols, cols);
            }
        });
    }

    static void backward(int rows, int cols, float[] y, float[] dy, float[] dx, Parallel par) {
        par.parallelFor(rows, grain(cols), (lo, hi) -> {
            for (int r = lo; r < hi; r++) {
                int o = r * cols;
                double dot = 0;
                for (int j = 0; j < cols; j++) {
                    dot += (double) dy[o + j] * y[o + j];
                }
                float d = (float) dot;
                for (int j = 0; j < cols; j++) {
                    dx[o + j] = y[o + j] * (dy[o + j] - d);
                }
            }
        });
    }

    /** Validates every target first: an integer in [0, classes). */
    static void checkTargets(int rows, int classes, float[] targets) {
        for (int r = 0; r < rows; r++) {
            float t = targets[r];
            if (!(t >= 0f && t < classes) || t != (float) Math.floor(t)) {
                throw new IllegalArgumentException("cross-entropy: target of row " + r + " is " + t
                        + ", expected an integer class index in [0, " + classes + ")");
            }
        }
    }

    static void crossEntropyForward(int rows, int classes, float[] logits, float[] targets, float[] probs,
                                    float[] loss) {
        checkTargets(rows, classes, targets);
        // sequential: the loss sum is taken in row order so the result never depends on the thread count
        double total = 0;
        for (int r = 0; r < rows; r++) {
            int o = r * classes;
            double lse = softmaxRow(logits, probs, o, classes);
            total += lse - logits[o + (int) targets[r]];
        }
        loss[0] = (float) (total / rows);
    }

    static void crossEntropyBackward(int rows, int classes, float[] probs, float[] targets, float[] dLoss,
                                     float[] dLogits) {
        checkTargets(rows, classes, targets);
        float scale = (float) ((double) dLoss[0] / rows);
        for (int r = 0; r < rows; r++) {
            int o = r * classes;
            int t = (int) targets[r];
            for (int j = 0; j < classes; j++) {
                float p = probs[o + j];
                dLogits[o + j] = (j == t ? p - 1f : p) * scale;
            }
        }
    }
}
