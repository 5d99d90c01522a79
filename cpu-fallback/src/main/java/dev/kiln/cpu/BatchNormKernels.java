package dev.kiln.cpu;

import dev.kiln.backend.Activation;
import dev.kiln.backend.BatchNormGeometry;

/**
 * Batch norm over {@code (n, channels, spatial)}, parallel over channels. Statistics use one shifted pass (sums of
 * {@code x - x0} and its square, with {@code x0} the channel's first value, which avoids the cancellation of the naive
 * formula) in float lanes over chunks of {@value #STATS_CHUNK} values, accumulated in double; then one pass normalises. The backward pass is two passes: the two sums, then dx. With the SIMD kernels on, both
 * reductions run in vector lanes ({@link VectorBatchNorm}) for rows of at least one vector.
 */
final class BatchNormKernels {

    /** Values summed in float before a flush to double in the statistics pass. */
    static final int STATS_CHUNK = 256;

    private BatchNormKernels() {
    }

    static void forwardTraining(BatchNormGeometry g, float[] x, float[] gamma, float[] beta, float eps,
                                float[] y, float[] saveMean, float[] saveInvStd, Parallel par) {
        forwardTraining(g, Activation.IDENTITY, x, gamma, beta, eps, y, saveMean, saveInvStd, par);
    }

    /**
     * Training batch norm, then the activation {@code a} over each channel's rows while they are in cache: the same
     * values, bit for bit, as the batch norm and then the activation as a separate pass.
     */
    static void forwardTraining(BatchNormGeometry g, Activation a, float[] x, float[] gamma, float[] beta, float eps,
                                float[] y, float[] saveMean, float[] saveInvStd, Parallel par) {
        int n = g.n(), ch = g.channels(), sp = g.spatial();
        double m = (double) n * sp;
        if (sp == 1) {
            forwardTrainingRows(g, a, x, gamma, beta, eps, y, saveMean, saveInvStd, par);
            return;
        }
        par.parallelFor(ch, grain(g), (lo, hi) -> {
            for (int c = lo; c < hi; c++) {
                float shift = x[c * sp];
                double s1 = 0, s2 = 0;
                if (SimdSupport.ENABLED && sp >= VectorSgemm.L) {
                    double[] acc = VectorBatchNorm.shiftedSums(x, n, ch, sp, c, shift);
                    s1 = acc[0];
                    s2 = acc[1];
                }
                for (int i = 0; i < n && !(SimdSupport.ENABLED && sp >= VectorSgemm.L); i++) {
                    int o = (i * ch + c) * sp;
                    if (sp < 4) {
                        // rows of 2-3 values: no chunk to amortise the flush over (rows of 1 go row-wise)
                        for (int j = 0; j < sp; j++) {
                            double d0 = (double) x[o + j] - shift;
                            s1 += d0;
                            s2 += d0 * d0;
                        }
                        continue;
                    }
                    for (int j = 0; j < sp; ) {
                        // float lanes over at most STATS_CHUNK values (error ~ 64 u of the chunk's |x - x0| sum,
                        // within the float32 summation tolerance), flushed to double so the row total keeps
                        // double accuracy; 8 independent float chains instead of 4 double ones
                        int end = Math.min(sp, j + STATS_CHUNK);
                        float a0 = 0f, a1 = 0f, a2 = 0f, a3 = 0f, q0 = 0f, q1 = 0f, q2 = 0f, q3 = 0f;
                        for (; j + 4 <= end; j += 4) {
                            float d0 = x[o + j] - shift;
                            float d1 = x[o + j + 1] - shift;
                            float d2 = x[o + j + 2] - shift;
                            float d3 = x[o + j + 3] - shift;
                            a0 += d0;
                            a1 += d1;
                            a2 += d2;
                            a3 += d3;
                            q0 += d0 * d0;
                            q1 += d1 * d1;
                            q2 += d2 * d2;
                            q3 += d3 * d3;
                        }
                        for (; j < end; j++) {
                            float d0 = x[o + j] - shift;
                            a0 += d0;
                            q0 += d0 * d0;
                        }
                        s1 += ((double) a0 + a1) + ((double) a2 + a3);
                        s2 += ((double) q0 + q1) + ((double) q2 + q3);
                    }
                }
                double invStd = saveStatistics(c, s1, s2, m, shift, eps, saveMean, saveInvStd);
                double gm = gamma == null ? 1.0 : gamma[c];
                float scale = (float) (gm * invStd);
                float b = beta == null ? 0f : beta[c];
                normalise(a, x, y, n, ch, sp, c, saveMean[c], scale, b);
            }
        });
    }

    /**
     * Inference batch norm then the activation (none for {@link Activation#IDENTITY}), image by image, with the
     * activation applied once over each chunk's contiguous span.
     */
    static void forwardInference(BatchNormGeometry g, Activation a, float[] x, float[] gamma, float[] beta,
                                           float[] mean, float[] var, float eps, float[] y, Parallel par) {
        int n = g.n(), ch = g.channels(), sp = g.spatial();
        float[] scale = new float[ch];
        float[] shift = new float[ch];
        for (int c = 0; c < ch; c++) {
            double gm = gamma == null ? 1.0 : gamma[c];
            scale[c] = (float) (gm / Math.sqrt((double) var[c] + eps));
            shift[c] = beta == null ? 0f : beta[c];
        }
        // over images: each chunk is one contiguous span, so the activation runs over whole vectors even when a
        // channel's row is a single value (BatchNorm1d on (N, C))
        int image = ch * sp;
        par.parallelFor(n, Math.max(1, ActivationKernels.GRAIN / Math.max(1, image)), (lo, hi) -> {
            for (int i = lo; i < hi; i++) {
                for (int c = 0; c < ch; c++) {
                    int o = (i * ch + c) * sp;
                    float m = mean[c], sc = scale[c], b = shift[c];
                    if (vectorRows(sp)) {
                        VectorBatchNorm.normaliseRow(x, y, o, sp, m, sc, b, false);
                        continue;
                    }
                    for (int j = 0; j < sp; j++) {
                        y[o + j] = (x[o + j] - m) * sc + b;
                    }
                }
            }
            if (a != Activation.IDENTITY) {
                ActivationKernels.range(a, y, y, lo * image, hi * image);
            }
        });
    }

    /**
     * {@link #forwardTraining} for one value per channel and sample ({@code BatchNorm1d} on {@code (N, C)}): the same
     * sums in the same order, but row by row over a block of channels, so the loops run along memory instead of with
     * a stride of C.
     */
    private static void forwardTrainingRows(BatchNormGeometry g, Activation a, float[] x, float[] gamma, float[] beta,
                                            float eps, float[] y, float[] saveMean, float[] saveInvStd, Parallel par) {
        int n = g.n(), ch = g.channels();
        double m = n;
        par.parallelFor(ch, rowGrain(g), (lo, hi) -> {
            int w = hi - lo;
            double[] s1 = new double[w];
            double[] s2 = new double[w];
            for (int i = 0; i < n; i++) {
                int o = i * ch + lo;
                for (int k = 0; k < w; k++) {
                    double d = (double) x[o + k] - x[lo + k];
                    s1[k] += d;
                    s2[k] += d * d;
                }
            }
            float[] scale = new float[w];
            float[] shift = new float[w];
            for (int k = 0; k < w; k++) {
                int c = lo + k;
                double invStd = saveStatistics(c, s1[k], s2[k], m, x[c], eps, saveMean, saveInvStd);
                double gm = gamma == null ? 1.0 : gamma[c];
                scale[k] = (float) (gm * invStd);
                shift[k] = beta == null ? 0f : beta[c];
            }
            for (int i = 0; i < n; i++) {
                int o = i * ch + lo;
                for (int k = 0; k < w; k++) {
                    y[o + k] = (x[o + k] - saveMean[lo + k]) * scale[k] + shift[k];
                }
                if (a != Activation.IDENTITY) {
                    ActivationKernels.range(a, y, y, o, o + w);
                }
            }
        });
    }

    /**
     * {@link #backward} for one value per channel and sample: the same sums and the same dx formula, row by row over
     * a block of channels.
     */
    private static void backwardRows(BatchNormGeometry g, float[] x, float[] dy, float[] gamma, float[] saveMean,
                                     float[] saveInvStd, float[] dx, float[] dGamma, float[] dBeta, Parallel par) {
        int n = g.n(), ch = g.channels();
        double m = n;
        par.parallelFor(ch, rowGrain(g), (lo, hi) -> {
            int w = hi - lo;
            double[] sdy = new double[w];
            double[] sdyx = new double[w];
            for (int i = 0; i < n; i++) {
                int o = i * ch + lo;
                for (int k = 0; k < w; k++) {
                    double d = dy[o + k];
                    sdy[k] += d;
                    sdyx[k] += d * ((double) x[o + k] - saveMean[lo + k]);
                }
            }
            float[] coefficients = new float[3 * w];
            for (int k = 0; k < w; k++) {
                parameterGradients(lo + k, sdy[k], sdyx[k], m, gamma, saveInvStd, dGamma, dBeta, coefficients, 3 * k);
            }
            if (dx != null) {
                for (int i = 0; i < n; i++) {
                    int o = i * ch + lo;
                    for (int k = 0; k < w; k++) {
                        dx[o + k] = coefficients[3 * k] * dy[o + k]
                                + (coefficients[3 * k + 1] * (x[o + k] - saveMean[lo + k]) + coefficients[3 * k + 2]);
                    }
                }
            }
        });
    }

    /**
     * Channel c's statistics from the sums of {@code x - shift} and of its square over {@code m} values: writes the
     * saved mean and 1/std (float) and returns 1/std in double, which the normalisation scale is computed from.
     */
    private static double saveStatistics(int c, double s1, double s2, double m, float shift, float eps,
                                         float[] saveMean, float[] saveInvStd) {
        double meanShifted = s1 / m;
        double var = Math.max(0.0, (s2 - s1 * meanShifted) / m);
        double mean = shift + meanShifted;
        double invStd = 1.0 / Math.sqrt(var + eps);
        saveMean[c] = (float) mean;
        saveInvStd[c] = (float) invStd;
        return invStd;
    }

    /**
     * Channel c's beta and gamma gradients (where wanted) from {@code sum(dy)} and {@code sum(dy * (x - mean))}, and
     * the three coefficients of {@code dx = k1*dy + (k2*(x - mean) + k3)} at {@code k[at..at+2]}, which is
     * {@code gm*invStd * (dy - sdy/m - (x-mean)*invStd * dg/m)}.
     */
    private static void parameterGradients(int c, double sdy, double sdyx, double m, float[] gamma, float[] saveInvStd,
                                           float[] dGamma, float[] dBeta, float[] k, int at) {
        double invStd = saveInvStd[c];
        double dg = sdyx * invStd;   // sum(dy * xhat)
        if (dBeta != null) {
            dBeta[c] = (float) sdy;
        }
        if (dGamma != null) {
            dGamma[c] = (float) dg;
        }
        double gm = gamma == null ? 1.0 : gamma[c];
        k[at] = (float) (gm * invStd);
        k[at + 1] = (float) (-gm * invStd * invStd * dg / m);
        k[at + 2] = (float) (-gm * invStd * sdy / m);
    }

    /** Channels per chunk of the row-wise kernels: enough values per chunk to pay for a fork. */
    private static int rowGrain(BatchNormGeometry g) {
        return Math.max(16, (int) Math.min(Integer.MAX_VALUE, 16384L / Math.max(1, g.n())));
    }

    /** {@code y = a((x - mean) * scale + b)} over channel {@code c}. */
    private static void normalise(Activation a, float[] x, float[] y, int n, int ch, int sp, int c, float mean,
                                  float scale, float b) {
        boolean vector = vectorRows(sp);
        for (int i = 0; i < n; i++) {
            int o = (i * ch + c) * sp;
            if (vector && (a == Activation.RELU || a == Activation.IDENTITY)) {
                VectorBatchNorm.normaliseRow(x, y, o, sp, mean, scale, b, a == Activation.RELU);
                continue;
            }
            if (a == Activation.RELU) {
                for (int j = 0; j < sp; j++) {
                    y[o + j] = Math.max((x[o + j] - mean) * scale + b, 0f);
                }
                continue;
            }
            for (int j = 0; j < sp; j++) {
                y[o + j] = (x[o + j] - mean) * scale + b;
            }
            if (a != Activation.IDENTITY) {
                ActivationKernels.range(a, y, y, o, o + sp);
            }
        }
    }

    /**
     * Backward of {@link #forwardTraining} with the activation {@code a} after it ({@code y} its output): dy through
     * the activation's derivative into {@code dx} (a scratch array when dx is not wanted), then the batch norm's
     * backward from there, in place. The values, bit for bit, of the two backward kernels in turn, without the
     * intermediate gradient tensor. (Taking each row through the derivative inside the sums pass, while it is in
     * cache, measured slower on JDK 17: both passes are memory-bound and the row-wise loop compiles worse.)
     */
    static void backward(BatchNormGeometry g, Activation a, float[] x, float[] y, float[] dy, float[] gamma,
                         float[] saveMean, float[] saveInvStd, float[] dx, float[] dGamma, float[] dBeta,
                         Parallel par) {
        if (a == Activation.IDENTITY) {
            backward(g, x, dy, gamma, saveMean, saveInvStd, dx, dGamma, dBeta, par);
            return;
        }
        float[] through = dx != null ? dx : new float[dy.length];
        ActivationKernels.backward(a, null, y, dy, through, (int) g.length(), par);
        backward(g, x, through, gamma, saveMean, saveInvStd, dx, dGamma, dBeta, par);
    }

    /** {@code dx} may be {@code dy} (each value is read before it is overwritten). */
    static void backward(BatchNormGeometry g, float[] x, float[] dy, float[] gamma, float[] saveMean,
                         float[] saveInvStd, float[] dx, float[] dGamma, float[] dBeta, Parallel par) {
        int n = g.n(), ch = g.channels(), sp = g.spatial();
        double m = (double) n * sp;
        if (sp == 1) {
            backwardRows(g, x, dy, gamma, saveMean, saveInvStd, dx, dGamma, dBeta, par);
            return;
        }
        par.parallelFor(ch, grain(g), (lo, hi) -> {
            float[] coefficients = new float[3];
            for (int c = lo; c < hi; c++) {
                float mean = saveMean[c];
                double sdy = 0, sdyx = 0;
                if (SimdSupport.ENABLED && sp >= VectorSgemm.L) {
                    double[] acc = VectorBatchNorm.backwardSums(dy, x, n, ch, sp, c, mean);
                    sdy = acc[0];
                    sdyx = acc[1];
                }
                for (int i = 0; i < n && !(SimdSupport.ENABLED && sp >= VectorSgemm.L); i++) {
                    int o = (i * ch + c) * sp;
                    for (int j = 0; j < sp; j++) {
                        double d = dy[o + j];
                        sdy += d;
                        sdyx += d * ((double) x[o + j] - mean);
                    }
                }
                parameterGradients(c, sdy, sdyx, m, gamma, saveInvStd, dGamma, dBeta, coefficients, 0);
                if (dx != null) {
                    float k1 = coefficients[0], k2 = coefficients[1], k3 = coefficients[2];
                    for (int i = 0; i < n; i++) {
                        int o = (i * ch + c) * sp;
                        if (vectorRows(sp)) {
                            VectorBatchNorm.dxRow(x, dy, dx, o, sp, mean, k1, k2, k3);
                            continue;
                        }
                        for (int j = 0; j < sp; j++) {
                            dx[o + j] = k1 * dy[o + j] + (k2 * (x[o + j] - mean) + k3);
                        }
                    }
                }
            }
        });
    }

    static void updateRunningStats(BatchNormGeometry g, float[] saveMean, float[] saveInvStd, float eps,
                                   double factor, float[] runningMean, float[] runningVar) {
        long m = g.valuesPerChannel();
        if (m < 2) {
            throw new IllegalArgumentException("batch norm: the unbiased running variance needs more than 1 value per"
                    + " channel, got n=" + g.n() + " spatial=" + g.spatial());
        }
        double corr = (double) m / (m - 1);
        for (int c = 0; c < g.channels(); c++) {
            double is = saveInvStd[c];
            double varUnbiased = (1.0 / (is * is) - eps) * corr;
            runningMean[c] = (float) ((1.0 - factor) * runningMean[c] + factor * saveMean[c]);
            runningVar[c] = (float) ((1.0 - factor) * runningVar[c] + factor * varUnbiased);
        }
    }

    /**
     * Whether rows of {@code sp} values take the vector row loops of {@link VectorBatchNorm}: rows of at least one
     * vector and shorter than {@value #SHORT_ROW} values (ResNet's 7x7 planes), which a compiled scalar loop tuned on
     * long rows runs largely in its scalar pre- and post-loops; longer rows stay with C2's own vector loop.
     */
    private static boolean vectorRows(int sp) {
        return SimdSupport.ENABLED && sp >= VectorSgemm.L && sp < SHORT_ROW;
    }

    static final int SHORT_ROW = 128;

    private static int grain(BatchNormGeometry g) {
        long perChannel = g.valuesPerChannel();
        return (int) Math.max(1, Math.min(Integer.MAX_VALUE, 16384 / Math.max(1, perChannel)));
    }
}
