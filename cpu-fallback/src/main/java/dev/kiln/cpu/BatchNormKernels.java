package dev.kiln.cpu;

import dev.kiln.backend.Activation;
import dev.kiln.backend.BatchNormGeometry;

/**
 * Batch norm over {@code (n, channels, spatial)}, parallel over channels. Statistics use one shifted pass in double
 * (sums of {@code x - x0} and its square, with {@code x0} the channel's first value, which avoids the cancellation of
 * the naive formula), then one pass normalises. The backward pass is two passes: the two sums, then dx.
 */
final class BatchNormKernels {

    private BatchNormKernels() {
    }

    static void forwardTraining(BatchNormGeometry g, float[] x, float[] gamma, float[] beta, float eps,
                                float[] y, float[] saveMean, float[] saveInvStd, Parallel par) {
        int n = g.n(), ch = g.channels(), sp = g.spatial();
        double m = (double) n * sp;
        par.parallelFor(ch, grain(g), (lo, hi) -> {
            for (int c = lo; c < hi; c++) {
                float shift = x[c * sp];
                double s1 = 0, s2 = 0, t1 = 0, t2 = 0;
                for (int i = 0; i < n; i++) {
                    int o = (i * ch + c) * sp;
                    int j = 0;
                    for (; j + 2 <= sp; j += 2) {
                        double d0 = (double) x[o + j] - shift;
                        double d1 = (double) x[o + j + 1] - shift;
                        s1 += d0;
                        s2 += d0 * d0;
                        t1 += d1;
                        t2 += d1 * d1;
                    }
                    if (j < sp) {
                        double d0 = (double) x[o + j] - shift;
                        s1 += d0;
                        s2 += d0 * d0;
                    }
                }
                s1 += t1;
                s2 += t2;
                double meanShifted = s1 / m;
                double var = Math.max(0.0, (s2 - s1 * meanShifted) / m);
                double mean = shift + meanShifted;
                double invStd = 1.0 / Math.sqrt(var + eps);
                saveMean[c] = (float) mean;
                saveInvStd[c] = (float) invStd;
                double gm = gamma == null ? 1.0 : gamma[c];
                float scale = (float) (gm * invStd);
                float meanF = (float) mean;
                float b = beta == null ? 0f : beta[c];
                normalise(x, y, n, ch, sp, c, meanF, scale, b);
            }
        });
    }

    static void forwardInference(BatchNormGeometry g, float[] x, float[] gamma, float[] beta,
                                 float[] mean, float[] var, float eps, float[] y, Parallel par) {
        int n = g.n(), ch = g.channels(), sp = g.spatial();
        par.parallelFor(ch, grain(g), (lo, hi) -> {
            for (int c = lo; c < hi; c++) {
                double gm = gamma == null ? 1.0 : gamma[c];
                float scale = (float) (gm / Math.sqrt((double) var[c] + eps));
                float b = beta == null ? 0f : beta[c];
                normalise(x, y, n, ch, sp, c, mean[c], scale, b);
            }
        });
    }

    /** {@link #forwardInference} then the activation, channel by channel while the values are in cache. */
    static void forwardInferenceActivation(BatchNormGeometry g, Activation a, float[] x, float[] gamma, float[] beta,
                                           float[] mean, float[] var, float eps, float[] y, Parallel par) {
        int n = g.n(), ch = g.channels(), sp = g.spatial();
        par.parallelFor(ch, grain(g), (lo, hi) -> {
            for (int c = lo; c < hi; c++) {
                double gm = gamma == null ? 1.0 : gamma[c];
                float scale = (float) (gm / Math.sqrt((double) var[c] + eps));
                float b = beta == null ? 0f : beta[c];
                normalise(x, y, n, ch, sp, c, mean[c], scale, b);
                for (int i = 0; i < n; i++) {
                    int o = (i * ch + c) * sp;
                    ActivationKernels.range(a, y, y, o, o + sp);
                }
            }
        });
    }

    private static void normalise(float[] x, float[] y, int n, int ch, int sp, int c, float mean, float scale, float b) {
        for (int i = 0; i < n; i++) {
            int o = (i * ch + c) * sp;
            for (int j = 0; j < sp; j++) {
                y[o + j] = (x[o + j] - mean) * scale + b;
            }
        }
    }

    static void backward(BatchNormGeometry g, float[] x, float[] dy, float[] gamma, float[] saveMean,
                         float[] saveInvStd, float[] dx, float[] dGamma, float[] dBeta, Parallel par) {
        int n = g.n(), ch = g.channels(), sp = g.spatial();
        double m = (double) n * sp;
        par.parallelFor(ch, grain(g), (lo, hi) -> {
            for (int c = lo; c < hi; c++) {
                float mean = saveMean[c];
                double invStd = saveInvStd[c];
                double sdy = 0, sdyx = 0;
                for (int i = 0; i < n; i++) {
                    int o = (i * ch + c) * sp;
                    for (int j = 0; j < sp; j++) {
                        double d = dy[o + j];
                        sdy += d;
                        sdyx += d * ((double) x[o + j] - mean);
                    }
                }
                double dg = sdyx * invStd;   // sum(dy * xhat)
                if (dBeta != null) {
                    dBeta[c] = (float) sdy;
                }
                if (dGamma != null) {
                    dGamma[c] = (float) dg;
                }
                if (dx != null) {
                    double gm = gamma == null ? 1.0 : gamma[c];
                    // dx = gm*invStd * (dy - sdy/m - (x-mean)*invStd * dg/m)
                    float k1 = (float) (gm * invStd);
                    float k2 = (float) (-gm * invStd * invStd * dg / m);
                    float k3 = (float) (-gm * invStd * sdy / m);
                    for (int i = 0; i < n; i++) {
                        int o = (i * ch + c) * sp;
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

    private static int grain(BatchNormGeometry g) {
        long perChannel = g.valuesPerChannel();
        return (int) Math.max(1, Math.min(Integer.MAX_VALUE, 16384 / Math.max(1, perChannel)));
    }
}
