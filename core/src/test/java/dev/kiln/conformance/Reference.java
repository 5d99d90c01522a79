package dev.kiln.conformance;

import dev.kiln.backend.Activation;
import dev.kiln.backend.AdaptivePoolGeometry;
import dev.kiln.backend.BatchNormGeometry;
import dev.kiln.backend.BinaryOp;
import dev.kiln.backend.ConvGeometry;
import dev.kiln.backend.PoolGeometry;
import dev.kiln.backend.ScalarOp;
import dev.kiln.backend.UnaryOp;
import dev.kiln.backend.UpsampleGeometry;

/**
 * Plain float64 reference implementations of every {@link dev.kiln.backend.Backend} op: naive loops written from
 * the SPI's javadoc and PyTorch's documented semantics, sharing nothing with any backend. Ops that sum produce a
 * {@link Sum}: the value and, per output, the sum of the magnitudes of its terms (for {@link Tolerance#sums}).
 * Backward functions are themselves verified against finite differences of the forward functions
 * ({@link Gradcheck}).
 */
public final class Reference {

    private Reference() {
    }

    /** A float64 result and, per element, {@code sum |term|} of the terms that were added to produce it. */
    public record Sum(double[] v, double[] abs) {
        Sum(int n) {
            this(new double[n], new double[n]);
        }

        void add(int i, double term) {
            v[i] += term;
            abs[i] += Math.abs(term);
        }
    }

    // ------------------------------------------------------------------ element-wise

    public static double unary(UnaryOp op, double x) {
        switch (op) {
            case NEG: return -x;
            case EXP: return Math.exp(x);
            case LOG: return Math.log(x);
            case SQRT: return Math.sqrt(x);
            case ABS: return Math.abs(x);
            case SQUARE: return x * x;
            case RECIPROCAL: return 1.0 / x;
            default: throw new AssertionError("no reference for " + op);
        }
    }

    public static double[] unary(UnaryOp op, double[] x) {
        double[] y = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            y[i] = unary(op, x[i]);
        }
        return y;
    }

    public static double scalar(ScalarOp op, double x, double s) {
        switch (op) {
            case ADD: return x + s;
            case MUL: return x * s;
            case POW: return Math.pow(x, s);
            case RSUB: return s - x;
            case MAX: return Math.max(x, s);
            case MIN: return Math.min(x, s);
            default: throw new AssertionError("no reference for " + op);
        }
    }

    public static double[] scalar(ScalarOp op, double[] x, double s) {
        double[] y = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            y[i] = scalar(op, x[i], s);
        }
        return y;
    }

    public static double binary(BinaryOp op, double a, double b) {
        switch (op) {
            case ADD: return a + b;
            case SUB: return a - b;
            case MUL: return a * b;
            case DIV: return a / b;
            case MAX: return Math.max(a, b);
            case MIN: return Math.min(a, b);
            default: throw new AssertionError("no reference for " + op);
        }
    }

    public static int numel(int[] shape) {
        int n = 1;
        for (int d : shape) {
            n *= d;
        }
        return n;
    }

    /** Multi-index of a flat row-major position. */
    static int[] unravel(int flat, int[] shape) {
        int[] idx = new int[shape.length];
        for (int d = shape.length - 1; d >= 0; d--) {
            idx[d] = flat % shape[d];
            flat /= shape[d];
        }
        return idx;
    }

    /** Flat position in a tensor of {@code shape} of the multi-index {@code idx}, reading index 0 where the size is 1. */
    static int broadcastIndex(int[] idx, int[] shape) {
        int flat = 0;
        for (int d = 0; d < shape.length; d++) {
            flat = flat * shape[d] + (shape[d] == 1 ? 0 : idx[d]);
        }
        return flat;
    }

    public static double[] binary(BinaryOp op, double[] a, int[] aShape, double[] b, int[] bShape, int[] outShape) {
        int n = numel(outShape);
        double[] out = new double[n];
        for (int i = 0; i < n; i++) {
            int[] idx = unravel(i, outShape);
            out[i] = binary(op, a[broadcastIndex(idx, aShape)], b[broadcastIndex(idx, bShape)]);
        }
        return out;
    }

    public static double[] axpy(double alpha, double[] x, double[] y) {
        double[] r = y.clone();
        for (int i = 0; i < x.length; i++) {
            r[i] += alpha * x[i];
        }
        return r;
    }

    // ------------------------------------------------------------------ reductions and broadcasting

    public static Sum sumTo(double[] x, int[] xShape, int[] outShape) {
        Sum s = new Sum(numel(outShape));
        for (int i = 0; i < x.length; i++) {
            s.add(broadcastIndex(unravel(i, xShape), outShape), x[i]);
        }
        return s;
    }

    public static double[] broadcastTo(double[] x, int[] xShape, int[] outShape) {
        int n = numel(outShape);
        double[] out = new double[n];
        for (int i = 0; i < n; i++) {
            out[i] = x[broadcastIndex(unravel(i, outShape), xShape)];
        }
        return out;
    }

    /** First maximum; a NaN is larger than everything (the first NaN wins). */
    public static double[] argmax(double[] x, int outer, int extent, int inner) {
        double[] out = new double[outer * inner];
        for (int o = 0; o < outer; o++) {
            for (int in = 0; in < inner; in++) {
                int best = 0;
                double bestV = x[(o * extent) * inner + in];
                for (int e = 1; e < extent && !Double.isNaN(bestV); e++) {
                    double v = x[(o * extent + e) * inner + in];
                    if (Double.isNaN(v) || v > bestV) {
                        best = e;
                        bestV = v;
                    }
                }
                out[o * inner + in] = best;
            }
        }
        return out;
    }

    // ------------------------------------------------------------------ dense

    /** {@code C = alpha op(A) op(B) + beta C}; with beta == 0 the old C is not read. */
    public static Sum gemm(boolean transA, boolean transB, int m, int n, int k, double alpha, double[] a, double[] b,
                           double beta, double[] c) {
        Sum s = new Sum(m * n);
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                int o = i * n + j;
                for (int p = 0; p < k; p++) {
                    double av = transA ? a[p * m + i] : a[i * k + p];
                    double bv = transB ? b[j * k + p] : b[p * n + j];
                    s.add(o, alpha * av * bv);
                }
                if (beta != 0) {
                    s.add(o, beta * c[o]);
                }
            }
        }
        return s;
    }

    // ------------------------------------------------------------------ convolution

    public static Sum conv2dForward(ConvGeometry g, double[] x, double[] w, double[] bias) {
        int oh = g.outH();
        int ow = g.outW();
        Sum y = new Sum((int) g.outputLength());
        for (int n = 0; n < g.n(); n++) {
            for (int oc = 0; oc < g.outChannels(); oc++) {
                for (int r = 0; r < oh; r++) {
                    for (int c = 0; c < ow; c++) {
                        int o = ((n * g.outChannels() + oc) * oh + r) * ow + c;
                        if (bias != null) {
                            y.add(o, bias[oc]);
                        }
                        int icg = g.inChannelsPerGroup();
                        for (int icl = 0; icl < icg; icl++) {
                            int ic = oc / g.outChannelsPerGroup() * icg + icl;
                            for (int kh = 0; kh < g.kernelH(); kh++) {
                                int ih = r * g.strideH() - g.padH() + kh * g.dilationH();
                                if (ih < 0 || ih >= g.inH()) {
                                    continue;
                                }
                                for (int kw = 0; kw < g.kernelW(); kw++) {
                                    int iw = c * g.strideW() - g.padW() + kw * g.dilationW();
                                    if (iw < 0 || iw >= g.inW()) {
                                        continue;
                                    }
                                    double xv = x[((n * g.inChannels() + ic) * g.inH() + ih) * g.inW() + iw];
                                    double wv = w[((oc * icg + icl) * g.kernelH() + kh) * g.kernelW() + kw];
                                    y.add(o, xv * wv);
                                }
                            }
                        }
                    }
                }
            }
        }
        return y;
    }

    /** dx by scattering every output's gradient back through the forward's index map. */
    public static Sum conv2dBackwardData(ConvGeometry g, double[] w, double[] dy) {
        int oh = g.outH();
        int ow = g.outW();
        Sum dx = new Sum((int) g.inputLength());
        for (int n = 0; n < g.n(); n++) {
            for (int oc = 0; oc < g.outChannels(); oc++) {
                for (int r = 0; r < oh; r++) {
                    for (int c = 0; c < ow; c++) {
                        double d = dy[((n * g.outChannels() + oc) * oh + r) * ow + c];
                        int icg = g.inChannelsPerGroup();
                        for (int icl = 0; icl < icg; icl++) {
                            int ic = oc / g.outChannelsPerGroup() * icg + icl;
                            for (int kh = 0; kh < g.kernelH(); kh++) {
                                int ih = r * g.strideH() - g.padH() + kh * g.dilationH();
                                if (ih < 0 || ih >= g.inH()) {
                                    continue;
                                }
                                for (int kw = 0; kw < g.kernelW(); kw++) {
                                    int iw = c * g.strideW() - g.padW() + kw * g.dilationW();
                                    if (iw < 0 || iw >= g.inW()) {
                                        continue;
                                    }
                                    double wv = w[((oc * icg + icl) * g.kernelH() + kh) * g.kernelW() + kw];
                                    dx.add(((n * g.inChannels() + ic) * g.inH() + ih) * g.inW() + iw, d * wv);
                                }
                            }
                        }
                    }
                }
            }
        }
        return dx;
    }

    public static Sum conv2dBackwardWeight(ConvGeometry g, double[] x, double[] dy) {
        int oh = g.outH();
        int ow = g.outW();
        Sum dw = new Sum((int) g.weightLength());
        int icg = g.inChannelsPerGroup();
        for (int oc = 0; oc < g.outChannels(); oc++) {
            for (int icl = 0; icl < icg; icl++) {
                int ic = oc / g.outChannelsPerGroup() * icg + icl;
                for (int kh = 0; kh < g.kernelH(); kh++) {
                    for (int kw = 0; kw < g.kernelW(); kw++) {
                        int o = ((oc * icg + icl) * g.kernelH() + kh) * g.kernelW() + kw;
                        for (int n = 0; n < g.n(); n++) {
                            for (int r = 0; r < oh; r++) {
                                int ih = r * g.strideH() - g.padH() + kh * g.dilationH();
                                if (ih < 0 || ih >= g.inH()) {
                                    continue;
                                }
                                for (int c = 0; c < ow; c++) {
                                    int iw = c * g.strideW() - g.padW() + kw * g.dilationW();
                                    if (iw < 0 || iw >= g.inW()) {
                                        continue;
                                    }
                                    dw.add(o, dy[((n * g.outChannels() + oc) * oh + r) * ow + c]
                                            * x[((n * g.inChannels() + ic) * g.inH() + ih) * g.inW() + iw]);
                                }
                            }
                        }
                    }
                }
            }
        }
        return dw;
    }

    public static Sum conv2dBackwardBias(ConvGeometry g, double[] dy) {
        int spatial = g.outH() * g.outW();
        Sum db = new Sum(g.outChannels());
        for (int n = 0; n < g.n(); n++) {
            for (int oc = 0; oc < g.outChannels(); oc++) {
                for (int s = 0; s < spatial; s++) {
                    db.add(oc, dy[(n * g.outChannels() + oc) * spatial + s]);
                }
            }
        }
        return db;
    }

    // ------------------------------------------------------------------ batch normalization

    static int bnIndex(BatchNormGeometry g, int n, int c, int s) {
        return (n * g.channels() + c) * g.spatial() + s;
    }

    /** Biased per-channel mean, two-pass. */
    public static double[] bnMean(BatchNormGeometry g, double[] x) {
        double[] mean = new double[g.channels()];
        for (int c = 0; c < g.channels(); c++) {
            double s = 0;
            for (int n = 0; n < g.n(); n++) {
                for (int p = 0; p < g.spatial(); p++) {
                    s += x[bnIndex(g, n, c, p)];
                }
            }
            mean[c] = s / g.valuesPerChannel();
        }
        return mean;
    }

    /** Biased per-channel variance around {@code mean}, two-pass. */
    public static double[] bnVar(BatchNormGeometry g, double[] x, double[] mean) {
        double[] var = new double[g.channels()];
        for (int c = 0; c < g.channels(); c++) {
            double s = 0;
            for (int n = 0; n < g.n(); n++) {
                for (int p = 0; p < g.spatial(); p++) {
                    double d = x[bnIndex(g, n, c, p)] - mean[c];
                    s += d * d;
                }
            }
            var[c] = s / g.valuesPerChannel();
        }
        return var;
    }

    public static double[] bnInvStd(double[] var, double eps) {
        double[] r = new double[var.length];
        for (int c = 0; c < var.length; c++) {
            r[c] = 1.0 / Math.sqrt(var[c] + eps);
        }
        return r;
    }

    /** {@code y = gamma (x - mean) invStd + beta}; gamma/beta null mean 1/0. */
    public static double[] bnNormalize(BatchNormGeometry g, double[] x, double[] gamma, double[] beta,
                                       double[] mean, double[] invStd) {
        double[] y = new double[x.length];
        for (int n = 0; n < g.n(); n++) {
            for (int c = 0; c < g.channels(); c++) {
                double ga = gamma == null ? 1 : gamma[c];
                double be = beta == null ? 0 : beta[c];
                for (int p = 0; p < g.spatial(); p++) {
                    int i = bnIndex(g, n, c, p);
                    y[i] = ga * (x[i] - mean[c]) * invStd[c] + be;
                }
            }
        }
        return y;
    }

    /** Training-mode forward from x alone (for finite differences). */
    public static double[] bnTrainingForward(BatchNormGeometry g, double[] x, double[] gamma, double[] beta, double eps) {
        double[] mean = bnMean(g, x);
        return bnNormalize(g, x, gamma, beta, mean, bnInvStd(bnVar(g, x, mean), eps));
    }

    public static double[] bnInference(BatchNormGeometry g, double[] x, double[] gamma, double[] beta,
                                       double[] mean, double[] var, double eps) {
        return bnNormalize(g, x, gamma, beta, mean, bnInvStd(var, eps));
    }

    /** Results of the training backward. */
    public record BnGrads(double[] dx, double[] dxTol, Sum dGamma, Sum dBeta) {
    }

    /**
     * The textbook training backward from the saved statistics:
     * {@code dx = gamma invStd / m (m dy - sum(dy) - xhat sum(dy xhat))}, {@code dGamma = sum(dy xhat)},
     * {@code dBeta = sum(dy)}. {@code dxTol} is the float32 error budget of each dx: the three terms of the bracket
     * carry float32 errors of {@code RTOL m |dy|}, of a sum of m terms and of {@code |xhat|} times a sum of m terms.
     */
    public static BnGrads bnBackward(BatchNormGeometry g, double[] x, double[] dy, double[] gamma,
                                     double[] mean, double[] invStd) {
        int m = (int) g.valuesPerChannel();
        Sum dGamma = new Sum(g.channels());
        Sum dBeta = new Sum(g.channels());
        for (int c = 0; c < g.channels(); c++) {
            for (int n = 0; n < g.n(); n++) {
                for (int p = 0; p < g.spatial(); p++) {
                    int i = bnIndex(g, n, c, p);
                    double xhat = (x[i] - mean[c]) * invStd[c];
                    dBeta.add(c, dy[i]);
                    dGamma.add(c, dy[i] * xhat);
                }
            }
        }
        double[] dx = new double[x.length];
        double[] tol = new double[x.length];
        double sumCoeff = Tolerance.SUM_COEFF * Math.sqrt(m);
        for (int c = 0; c < g.channels(); c++) {
            double ga = gamma == null ? 1 : gamma[c];
            double k = ga * invStd[c] / m;
            for (int n = 0; n < g.n(); n++) {
                for (int p = 0; p < g.spatial(); p++) {
                    int i = bnIndex(g, n, c, p);
                    double xhat = (x[i] - mean[c]) * invStd[c];
                    dx[i] = k * (m * dy[i] - dBeta.v()[c] - xhat * dGamma.v()[c]);
                    double bracketErr = Tolerance.RTOL * (m * Math.abs(dy[i]) + Math.abs(dBeta.v()[c])
                            + Math.abs(xhat * dGamma.v()[c]))
                            + sumCoeff * (dBeta.abs()[c] + Math.abs(xhat) * dGamma.abs()[c]);
                    tol[i] = Tolerance.ATOL + Tolerance.RTOL * Math.abs(dx[i]) + Math.abs(k) * bracketErr;
                }
            }
        }
        return new BnGrads(dx, tol, dGamma, dBeta);
    }

    /** PyTorch's running-statistics update; returns {runningMean', runningVar'}. */
    public static double[][] bnRunningStats(BatchNormGeometry g, double[] saveMean, double[] saveInvStd, double eps,
                                            double factor, double[] runningMean, double[] runningVar) {
        long m = g.valuesPerChannel();
        double[] rm = new double[g.channels()];
        double[] rv = new double[g.channels()];
        for (int c = 0; c < g.channels(); c++) {
            double biased = 1.0 / (saveInvStd[c] * saveInvStd[c]) - eps;
            double unbiased = biased * m / (m - 1);
            rm[c] = (1 - factor) * runningMean[c] + factor * saveMean[c];
            rv[c] = (1 - factor) * runningVar[c] + factor * unbiased;
        }
        return new double[][] {rm, rv};
    }

    // ------------------------------------------------------------------ pooling

    static int poolIn(PoolGeometry g, int n, int c, int h, int w) {
        return ((n * g.channels() + c) * g.inH() + h) * g.inW() + w;
    }

    static int poolOut(PoolGeometry g, int n, int c, int h, int w) {
        return ((n * g.channels() + c) * g.outH() + h) * g.outW() + w;
    }

    /** Average over the window; padded positions count as zeros in the divisor (count_include_pad). */
    public static Sum avgPoolForward(PoolGeometry g, double[] x) {
        Sum y = new Sum((int) g.outputLength());
        double div = g.kernelH() * g.kernelW();
        for (int n = 0; n < g.n(); n++) {
            for (int c = 0; c < g.channels(); c++) {
                for (int r = 0; r < g.outH(); r++) {
                    for (int q = 0; q < g.outW(); q++) {
                        for (int kh = 0; kh < g.kernelH(); kh++) {
                            for (int kw = 0; kw < g.kernelW(); kw++) {
                                int ih = r * g.strideH() - g.padH() + kh;
                                int iw = q * g.strideW() - g.padW() + kw;
                                if (ih >= 0 && ih < g.inH() && iw >= 0 && iw < g.inW()) {
                                    y.add(poolOut(g, n, c, r, q), x[poolIn(g, n, c, ih, iw)] / div);
                                }
                            }
                        }
                    }
                }
            }
        }
        return y;
    }

    public static Sum avgPoolBackward(PoolGeometry g, double[] dy) {
        Sum dx = new Sum((int) g.inputLength());
        double div = g.kernelH() * g.kernelW();
        for (int n = 0; n < g.n(); n++) {
            for (int c = 0; c < g.channels(); c++) {
                for (int r = 0; r < g.outH(); r++) {
                    for (int q = 0; q < g.outW(); q++) {
                        for (int kh = 0; kh < g.kernelH(); kh++) {
                            for (int kw = 0; kw < g.kernelW(); kw++) {
                                int ih = r * g.strideH() - g.padH() + kh;
                                int iw = q * g.strideW() - g.padW() + kw;
                                if (ih >= 0 && ih < g.inH() && iw >= 0 && iw < g.inW()) {
                                    dx.add(poolIn(g, n, c, ih, iw), dy[poolOut(g, n, c, r, q)] / div);
                                }
                            }
                        }
                    }
                }
            }
        }
        return dx;
    }

    // ------------------------------------------------------------------ adaptive pooling, upsampling, slices

    /** PyTorch's window of output {@code o}: {@code [floor(o*in/out), ceil((o+1)*in/out))}, in double. */
    static int adaptiveStart(int o, int in, int out) {
        return (int) Math.floor((double) o * in / out);
    }

    static int adaptiveEnd(int o, int in, int out) {
        return (int) Math.ceil((double) (o + 1) * in / out);
    }

    /** The mean of each window; {@code abs} holds the sum of the magnitudes of its terms. */
    public static Sum adaptiveAvgPoolForward(AdaptivePoolGeometry g, double[] x) {
        Sum y = new Sum((int) g.outputLength());
        int planes = g.n() * g.channels();
        for (int p = 0; p < planes; p++) {
            for (int r = 0; r < g.outH(); r++) {
                int h0 = adaptiveStart(r, g.inH(), g.outH()), h1 = adaptiveEnd(r, g.inH(), g.outH());
                for (int q = 0; q < g.outW(); q++) {
                    int w0 = adaptiveStart(q, g.inW(), g.outW()), w1 = adaptiveEnd(q, g.inW(), g.outW());
                    double area = (double) (h1 - h0) * (w1 - w0);
                    for (int h = h0; h < h1; h++) {
                        for (int w = w0; w < w1; w++) {
                            y.add((p * g.outH() + r) * g.outW() + q, x[(p * g.inH() + h) * g.inW() + w] / area);
                        }
                    }
                }
            }
        }
        return y;
    }

    /** Each output's gradient spread evenly over its window, scattered. */
    public static Sum adaptiveAvgPoolBackward(AdaptivePoolGeometry g, double[] dy) {
        Sum dx = new Sum((int) g.inputLength());
        int planes = g.n() * g.channels();
        for (int p = 0; p < planes; p++) {
            for (int r = 0; r < g.outH(); r++) {
                int h0 = adaptiveStart(r, g.inH(), g.outH()), h1 = adaptiveEnd(r, g.inH(), g.outH());
                for (int q = 0; q < g.outW(); q++) {
                    int w0 = adaptiveStart(q, g.inW(), g.outW()), w1 = adaptiveEnd(q, g.inW(), g.outW());
                    double area = (double) (h1 - h0) * (w1 - w0);
                    for (int h = h0; h < h1; h++) {
                        for (int w = w0; w < w1; w++) {
                            dx.add((p * g.inH() + h) * g.inW() + w, dy[(p * g.outH() + r) * g.outW() + q] / area);
                        }
                    }
                }
            }
        }
        return dx;
    }

    /**
     * {values, indices}: the first maximum of each window in row-major order (the last NaN when there is one), and
     * its position {@code h * inW + w} in the plane.
     */
    public static double[][] adaptiveMaxPoolForward(AdaptivePoolGeometry g, double[] x) {
        double[] y = new double[(int) g.outputLength()];
        double[] idx = new double[y.length];
        int planes = g.n() * g.channels();
        for (int p = 0; p < planes; p++) {
            for (int r = 0; r < g.outH(); r++) {
                int h0 = adaptiveStart(r, g.inH(), g.outH()), h1 = adaptiveEnd(r, g.inH(), g.outH());
                for (int q = 0; q < g.outW(); q++) {
                    int w0 = adaptiveStart(q, g.inW(), g.outW()), w1 = adaptiveEnd(q, g.inW(), g.outW());
                    double best = Double.NEGATIVE_INFINITY;
                    int at = h0 * g.inW() + w0;
                    for (int h = h0; h < h1; h++) {
                        for (int w = w0; w < w1; w++) {
                            double v = x[(p * g.inH() + h) * g.inW() + w];
                            if (v > best || Double.isNaN(v)) {
                                best = v;
                                at = h * g.inW() + w;
                            }
                        }
                    }
                    y[(p * g.outH() + r) * g.outW() + q] = best;
                    idx[(p * g.outH() + r) * g.outW() + q] = at;
                }
            }
        }
        return new double[][] {y, idx};
    }

    /** Each dy added to the position its index names. */
    public static Sum adaptiveMaxPoolBackward(AdaptivePoolGeometry g, double[] indices, double[] dy) {
        Sum dx = new Sum((int) g.inputLength());
        int planes = g.n() * g.channels();
        int outPlane = g.outH() * g.outW();
        for (int p = 0; p < planes; p++) {
            for (int o = 0; o < outPlane; o++) {
                dx.add(p * g.inH() * g.inW() + (int) indices[p * outPlane + o], dy[p * outPlane + o]);
            }
        }
        return dx;
    }

    /** {@code y[oh, ow] = x[floor(oh / scaleH), floor(ow / scaleW)]}. */
    public static double[] upsampleNearestForward(UpsampleGeometry g, double[] x) {
        double[] y = new double[(int) g.outputLength()];
        int planes = g.n() * g.channels();
        for (int p = 0; p < planes; p++) {
            for (int r = 0; r < g.outH(); r++) {
                for (int q = 0; q < g.outW(); q++) {
                    y[(p * g.outH() + r) * g.outW() + q] =
                            x[(p * g.inH() + Math.floorDiv(r, g.scaleH())) * g.inW() + Math.floorDiv(q, g.scaleW())];
                }
            }
        }
        return y;
    }

    public static Sum upsampleNearestBackward(UpsampleGeometry g, double[] dy) {
        Sum dx = new Sum((int) g.inputLength());
        int planes = g.n() * g.channels();
        for (int p = 0; p < planes; p++) {
            for (int r = 0; r < g.outH(); r++) {
                for (int q = 0; q < g.outW(); q++) {
                    dx.add((p * g.inH() + Math.floorDiv(r, g.scaleH())) * g.inW() + Math.floorDiv(q, g.scaleW()),
                            dy[(p * g.outH() + r) * g.outW() + q]);
                }
            }
        }
        return dx;
    }

    /** {@code dst} with its slice {@code [dstStart, dstStart+length)} of the middle dimension replaced from src. */
    public static double[] copySlice(double[] src, int outer, int srcExtent, int srcStart, double[] dst, int dstExtent,
                                     int dstStart, int length, int inner) {
        double[] out = dst.clone();
        for (int o = 0; o < outer; o++) {
            for (int j = 0; j < length; j++) {
                for (int i = 0; i < inner; i++) {
                    out[(o * dstExtent + dstStart + j) * inner + i] = src[(o * srcExtent + srcStart + j) * inner + i];
                }
            }
        }
        return out;
    }

    /** Max over the window's valid (non-padding) positions: padding is -infinity as in PyTorch. */
    public static double[] maxPoolForward(PoolGeometry g, double[] x) {
        double[] y = new double[(int) g.outputLength()];
        for (int n = 0; n < g.n(); n++) {
            for (int c = 0; c < g.channels(); c++) {
                for (int r = 0; r < g.outH(); r++) {
                    for (int q = 0; q < g.outW(); q++) {
                        double best = Double.NEGATIVE_INFINITY;
                        for (int kh = 0; kh < g.kernelH(); kh++) {
                            for (int kw = 0; kw < g.kernelW(); kw++) {
                                int ih = r * g.strideH() - g.padH() + kh;
                                int iw = q * g.strideW() - g.padW() + kw;
                                if (ih >= 0 && ih < g.inH() && iw >= 0 && iw < g.inW()) {
                                    best = Math.max(best, x[poolIn(g, n, c, ih, iw)]);
                                }
                            }
                        }
                        y[poolOut(g, n, c, r, q)] = best;
                    }
                }
            }
        }
        return y;
    }

    /** Each dy goes to the first position of its window, in row-major window order, where x equals y. */
    public static Sum maxPoolBackward(PoolGeometry g, double[] x, double[] y, double[] dy) {
        Sum dx = new Sum((int) g.inputLength());
        for (int n = 0; n < g.n(); n++) {
            for (int c = 0; c < g.channels(); c++) {
                for (int r = 0; r < g.outH(); r++) {
                    for (int q = 0; q < g.outW(); q++) {
                        int o = poolOut(g, n, c, r, q);
                        search:
                        for (int kh = 0; kh < g.kernelH(); kh++) {
                            for (int kw = 0; kw < g.kernelW(); kw++) {
                                int ih = r * g.strideH() - g.padH() + kh;
                                int iw = q * g.strideW() - g.padW() + kw;
                                if (ih >= 0 && ih < g.inH() && iw >= 0 && iw < g.inW()
                                        && x[poolIn(g, n, c, ih, iw)] == y[o]) {
                                    dx.add(poolIn(g, n, c, ih, iw), dy[o]);
                                    break search;
                                }
                            }
                        }
                    }
                }
            }
        }
        return dx;
    }

    // ------------------------------------------------------------------ activations and softmax

    public static double activation(Activation a, double x) {
        switch (a) {
            case IDENTITY: return x;
            case SIGMOID: return 1.0 / (1.0 + Math.exp(-x));
            case RELU: return x > 0 ? x : 0.0;
            case TANH: return Math.tanh(x);
            case RELU6: return Math.min(Math.max(x, 0.0), 6.0);
            default: throw new AssertionError("no reference for " + a);
        }
    }

    public static double[] activationForward(Activation a, double[] x) {
        double[] y = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            y[i] = activation(a, x[i]);
        }
        return y;
    }

    /** {@code dx = dy f'(x)}, with f' written from x (sigmoid' = s(1-s), tanh' = 1 - tanh^2, relu' = [x > 0]). */
    public static double[] activationBackward(Activation a, double[] x, double[] dy) {
        double[] dx = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            double d;
            switch (a) {
                case IDENTITY: d = 1; break;
                case SIGMOID: {
                    double s = 1.0 / (1.0 + Math.exp(-x[i]));
                    d = s * (1 - s);
                    break;
                }
                case RELU: d = x[i] > 0 ? 1 : 0; break;
                case RELU6: d = x[i] <= 0 || x[i] >= 6 ? 0 : 1; break; // 1 for NaN, as PyTorch
                case TANH: {
                    double t = Math.tanh(x[i]);
                    d = 1 - t * t;
                    break;
                }
                default: throw new AssertionError("no reference for " + a);
            }
            dx[i] = dy[i] * d;
        }
        return dx;
    }

    public static Sum softmaxForward(int rows, int cols, double[] x) {
        Sum y = new Sum(rows * cols);
        for (int r = 0; r < rows; r++) {
            double max = Double.NEGATIVE_INFINITY;
            for (int c = 0; c < cols; c++) {
                max = Math.max(max, x[r * cols + c]);
            }
            double sum = 0;
            for (int c = 0; c < cols; c++) {
                sum += Math.exp(x[r * cols + c] - max);
            }
            for (int c = 0; c < cols; c++) {
                y.v()[r * cols + c] = Math.exp(x[r * cols + c] - max) / sum;
                y.abs()[r * cols + c] = y.v()[r * cols + c]; // |y| = y: relative error bounded by the sum's
            }
        }
        return y;
    }

    /** {@code dx = y (dy - sum(dy y))}; abs = |y| (|dy| + sum|dy y|). */
    public static Sum softmaxBackward(int rows, int cols, double[] y, double[] dy) {
        Sum dx = new Sum(rows * cols);
        for (int r = 0; r < rows; r++) {
            double dot = 0;
            double dotAbs = 0;
            for (int c = 0; c < cols; c++) {
                dot += dy[r * cols + c] * y[r * cols + c];
                dotAbs += Math.abs(dy[r * cols + c] * y[r * cols + c]);
            }
            for (int c = 0; c < cols; c++) {
                int i = r * cols + c;
                dx.v()[i] = y[i] * (dy[i] - dot);
                dx.abs()[i] = Math.abs(y[i]) * (Math.abs(dy[i]) + dotAbs);
            }
        }
        return dx;
    }

    /** Per-row {@code logsumexp(x_r) - x_r[t_r]}; throws for a target outside [0, classes). */
    public static double[] crossEntropyRows(int rows, int classes, double[] logits, double[] targets) {
        double[] l = new double[rows];
        for (int r = 0; r < rows; r++) {
            double t = targets[r];
            if (!(t >= 0 && t < classes) || t != Math.floor(t)) {
                throw new IllegalArgumentException("target " + t);
            }
            double max = Double.NEGATIVE_INFINITY;
            for (int c = 0; c < classes; c++) {
                max = Math.max(max, logits[r * classes + c]);
            }
            double sum = 0;
            for (int c = 0; c < classes; c++) {
                sum += Math.exp(logits[r * classes + c] - max);
            }
            l[r] = Math.log(sum) + max - logits[r * classes + (int) t];
        }
        return l;
    }

    public static double crossEntropyLoss(int rows, int classes, double[] logits, double[] targets) {
        double s = 0;
        for (double v : crossEntropyRows(rows, classes, logits, targets)) {
            s += v;
        }
        return s / rows;
    }

    public static double[] crossEntropyBackward(int rows, int classes, double[] probs, double[] targets, double dLoss) {
        double[] d = new double[rows * classes];
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < classes; c++) {
                double onehot = c == (int) targets[r] ? 1 : 0;
                d[r * classes + c] = (probs[r * classes + c] - onehot) * dLoss / rows;
            }
        }
        return d;
    }

    // ------------------------------------------------------------------ optimizers

    /**
     * PyTorch's {@code torch.optim.SGD} for one tensor (the for-loop implementation):
     * <pre>
     * g = grad + wd * p
     * if momentum != 0: buf = g.clone() on the first step, else buf = momentum * buf + (1 - dampening) * g
     *                   g = g + momentum * buf if nesterov else buf
     * p = p - lr * g
     * </pre>
     * Updates {@code p} and {@code buf} in place.
     */
    public static void sgd(double lr, double momentum, double dampening, boolean nesterov, double wd, boolean first,
                           double[] p, double[] grad, double[] buf) {
        for (int i = 0; i < p.length; i++) {
            double g = grad[i] + wd * p[i];
            if (momentum != 0) {
                buf[i] = first ? g : momentum * buf[i] + (1 - dampening) * g;
                g = nesterov ? g + momentum * buf[i] : buf[i];
            }
            p[i] -= lr * g;
        }
    }

    /**
     * PyTorch's {@code torch.optim.Adam}/{@code AdamW} for one tensor (the for-loop implementation):
     * <pre>
     * AdamW: p = p * (1 - lr * wd);   Adam: g = grad + wd * p
     * m = beta1 m + (1 - beta1) g;    v = beta2 v + (1 - beta2) g^2
     * p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
     * </pre>
     */
    public static void adam(double lr, double beta1, double beta2, double eps, double wd, boolean decoupled, long step,
                            double[] p, double[] grad, double[] m, double[] v) {
        double bc1 = 1 - Math.pow(beta1, step);
        double bc2 = 1 - Math.pow(beta2, step);
        for (int i = 0; i < p.length; i++) {
            double g = grad[i];
            if (decoupled) {
                p[i] *= 1 - lr * wd;
            } else {
                g += wd * p[i];
            }
            m[i] = beta1 * m[i] + (1 - beta1) * g;
            v[i] = beta2 * v[i] + (1 - beta2) * g * g;
            double denom = Math.sqrt(v[i]) / Math.sqrt(bc2) + eps;
            p[i] -= lr / bc1 * m[i] / denom;
        }
    }
}
