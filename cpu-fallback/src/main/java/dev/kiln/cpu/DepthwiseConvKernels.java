package dev.kiln.cpu;

import dev.kiln.backend.ConvGeometry;

import java.util.Arrays;

/**
 * Depthwise convolution ({@code groups == inChannels == outChannels}: one filter per channel), row by row: each output
 * row takes all the filter's taps while it is in cache, where {@link GroupedConvKernels} sweeps the whole plane once
 * per tap; the backward weight pass reads each image plane once for all taps instead of once per tap. Every value is
 * the same sum in the same order as in {@link GroupedConvKernels} (which stays the reference): bias first, then the
 * taps in {@code (ky, kx)} order, each weight a double sum over images and rows. Parallel over the planes (forward,
 * input gradient) or channels (weight gradient), so the results do not depend on the thread count.
 */
final class DepthwiseConvKernels {

    private DepthwiseConvKernels() {
    }

    /** Whether {@code g} is a depthwise convolution these kernels take. */
    static boolean applies(ConvGeometry g) {
        return g.groups() > 1 && g.groups() == g.inChannels() && g.groups() == g.outChannels();
    }

    /** Parallel over the {@code n * channels} output planes. */
    static void forward(ConvGeometry g, float[] x, float[] w, float[] bias, float[] y, Parallel par) {
        int ch = g.outChannels(), ih = g.inH(), iw = g.inW(), oh = g.outH(), ow = g.outW();
        int kh = g.kernelH(), kw = g.kernelW(), sw = g.strideW();
        int inPlane = ih * iw, outPlane = oh * ow;
        int[] cols = columnRanges(g);
        boolean threeWide = kw == 3 && sw == 1;
        par.parallelFor(g.n() * ch, Math.max(1, 4096 / Math.max(1, outPlane * kh * kw)), (lo, hi) -> {
            for (int p = lo; p < hi; p++) {
                int c = p % ch;
                int yo = p * outPlane, xo = p * inPlane, wo = c * kh * kw;
                for (int oy = 0; oy < oh; oy++) {
                    int yr = yo + oy * ow;
                    Arrays.fill(y, yr, yr + ow, bias == null ? 0f : bias[c]);
                    for (int ky = 0; ky < kh; ky++) {
                        int iy = oy * g.strideH() - g.padH() + ky * g.dilationH();
                        if (iy < 0 || iy >= ih) {
                            continue;
                        }
                        if (threeWide) {
                            // x column of output column ox under tap kx: ox + (ix0 - ox0) of that tap
                            threeTaps(y, yr, x, xo + iy * iw, cols[2] - cols[0], cols[5] - cols[3], cols[8] - cols[6],
                                    w, wo + ky * kw, cols);
                            continue;
                        }
                        for (int kx = 0; kx < kw; kx++) {
                            int ox0 = cols[3 * kx], ox1 = cols[3 * kx + 1];
                            if (ox0 == ox1) {
                                continue;
                            }
                            float wv = w[wo + ky * kw + kx];
                            int xr = xo + iy * iw + cols[3 * kx + 2] - ox0 * sw;
                            if (sw == 1) {
                                for (int ox = ox0; ox < ox1; ox++) {
                                    y[yr + ox] += wv * x[xr + ox];
                                }
                            } else {
                                for (int ox = ox0; ox < ox1; ox++) {
                                    y[yr + ox] += wv * x[xr + ox * sw];
                                }
                            }
                        }
                    }
                }
            }
        });
    }

    /**
     * Parallel over the {@code n * channels} input planes (stride 1; strided geometries go to the reference). Row by
     * row of the input gradient, and within a row the taps
     * in {@code (ky, kx)} order, each from the one output row that reads it: the reference's order per value.
     */
    static void backwardData(ConvGeometry g, float[] w, float[] dy, float[] dx, Parallel par) {
        if (g.strideH() != 1 || g.strideW() != 1) {
            // strided: the row-wise walk skips most (row, tap) pairs and measured slower than the reference's per-tap
            // sweep, which gives the same values
            GroupedConvKernels.backwardData(g, w, dy, dx, par);
            return;
        }
        int ch = g.inChannels(), ih = g.inH(), iw = g.inW(), oh = g.outH(), ow = g.outW();
        int kh = g.kernelH(), kw = g.kernelW(), sh = g.strideH(), sw = g.strideW();
        int inPlane = ih * iw, outPlane = oh * ow;
        int[] cols = columnRanges(g);
        // the input columns each tap writes: [ox0 + shift, ox1 + shift) with shift = ix0 - ox0, read from dy at -shift
        int[] inCols = null;
        if (kw == 3 && sw == 1) {
            inCols = new int[9];
            for (int kx = 0; kx < 3; kx++) {
                int shift = cols[3 * kx + 2] - cols[3 * kx];
                inCols[3 * kx] = cols[3 * kx] + shift;
                inCols[3 * kx + 1] = cols[3 * kx + 1] + shift;
            }
        }
        int[] threeWide = inCols;
        par.parallelFor(g.n() * ch, Math.max(1, 4096 / Math.max(1, outPlane * kh * kw)), (lo, hi) -> {
            for (int p = lo; p < hi; p++) {
                int c = p % ch;
                int xo = p * inPlane, yo = p * outPlane, wo = c * kh * kw;
                for (int iy = 0; iy < ih; iy++) {
                    int xrow = xo + iy * iw;
                    Arrays.fill(dx, xrow, xrow + iw, 0f);
                    for (int ky = 0; ky < kh; ky++) {
                        int t = iy + g.padH() - ky * g.dilationH(); // = oy * strideH
                        if (t < 0 || t % sh != 0 || t / sh >= oh) {
                            continue;
                        }
                        int yr = yo + t / sh * ow;
                        if (threeWide != null) {
                            threeTaps(dx, xrow, dy, yr, cols[0] - cols[2], cols[3] - cols[5], cols[6] - cols[8], w,
                                    wo + ky * kw, threeWide);
                            continue;
                        }
                        for (int kx = 0; kx < kw; kx++) {
                            int ox0 = cols[3 * kx], ox1 = cols[3 * kx + 1];
                            if (ox0 == ox1) {
                                continue;
                            }
                            float wv = w[wo + ky * kw + kx];
                            int xr = xrow + cols[3 * kx + 2] - ox0 * sw;
                            if (sw == 1) {
                                for (int ox = ox0; ox < ox1; ox++) {
                                    dx[xr + ox] += wv * dy[yr + ox];
                                }
                            } else {
                                for (int ox = ox0; ox < ox1; ox++) {
                                    dx[xr + ox * sw] += wv * dy[yr + ox];
                                }
                            }
                        }
                    }
                }
            }
        });
    }

    /**
     * Parallel over channels. Image by image and row by row, every tap's row sum (double, along the row) is added to
     * that tap's total: per tap the same additions in the same order as the reference, with each plane read once.
     */
    static void backwardWeight(ConvGeometry g, float[] x, float[] dy, float[] dw, Parallel par) {
        int ch = g.outChannels(), ih = g.inH(), iw = g.inW(), oh = g.outH(), ow = g.outW();
        int kh = g.kernelH(), kw = g.kernelW(), sw = g.strideW();
        int inPlane = ih * iw, outPlane = oh * ow;
        int[] cols = columnRanges(g);
        par.parallelFor(ch, 1, (lo, hi) -> {
            double[] acc = new double[kh * kw];
            for (int c = lo; c < hi; c++) {
                Arrays.fill(acc, 0);
                for (int img = 0; img < g.n(); img++) {
                    int xo = (img * ch + c) * inPlane, yo = (img * ch + c) * outPlane;
                    for (int oy = 0; oy < oh; oy++) {
                        int yr = yo + oy * ow;
                        for (int ky = 0; ky < kh; ky++) {
                            int iy = oy * g.strideH() - g.padH() + ky * g.dilationH();
                            if (iy < 0 || iy >= ih) {
                                continue;
                            }
                            for (int kx = 0; kx < kw; kx++) {
                                int ox0 = cols[3 * kx], ox1 = cols[3 * kx + 1];
                                if (ox0 == ox1) {
                                    continue;
                                }
                            if (ox0 == ox1) {
                                continue;
                            }
                                int xr = xo + iy * iw + cols[3 * kx + 2] - ox0 * sw;
                                double s = 0;
                                for (int ox = ox0; ox < ox1; ox++) {
                                    s += (double) dy[yr + ox] * x[xr + ox * sw];
                                }
                                acc[ky * kw + kx] += s;
                            }
                        }
                    }
                }
                for (int t = 0; t < kh * kw; t++) {
                    dw[c * kh * kw + t] = (float) acc[t];
                }
            }
        });
    }

    /**
     * One filter row of three taps at stride 1 over a row of {@code dst}: for each column {@code i} tap {@code k}
     * covers ({@code [ranges[3k], ranges[3k+1])}), {@code dst[d + i] += w[wo + k] * src[s + i + off_k]}, the taps in
     * order {@code k = 0, 1, 2} for every value, as three separate passes would add them. Where all three cover the
     * column the three products go in one pass (one load and store of dst instead of three); the edges take the taps
     * one at a time.
     */
    private static void threeTaps(float[] dst, int d, float[] src, int s, int off0, int off1, int off2, float[] w,
                                  int wo, int[] ranges) {
        int lo = Math.max(ranges[0], Math.max(ranges[3], ranges[6]));
        int hi = Math.min(ranges[1], Math.min(ranges[4], ranges[7]));
        if (lo >= hi) {
            lo = hi = ranges[1];
        }
        float w0 = w[wo], w1 = w[wo + 1], w2 = w[wo + 2];
        int s0 = s + off0, s1 = s + off1, s2 = s + off2;
        // left edge: each tap over its columns before lo, in tap order
        edge(dst, d, src, s0, w0, ranges[0], Math.min(ranges[1], lo));
        edge(dst, d, src, s1, w1, ranges[3], Math.min(ranges[4], lo));
        edge(dst, d, src, s2, w2, ranges[6], Math.min(ranges[7], lo));
        for (int i = lo; i < hi; i++) {
            dst[d + i] = ((dst[d + i] + w0 * src[s0 + i]) + w1 * src[s1 + i]) + w2 * src[s2 + i];
        }
        // right edge: from hi on
        edge(dst, d, src, s0, w0, Math.max(ranges[0], hi), ranges[1]);
        edge(dst, d, src, s1, w1, Math.max(ranges[3], hi), ranges[4]);
        edge(dst, d, src, s2, w2, Math.max(ranges[6], hi), ranges[7]);
    }

    private static void edge(float[] dst, int d, float[] src, int s, float wv, int from, int to) {
        for (int i = from; i < to; i++) {
            dst[d + i] += wv * src[s + i];
        }
    }

    /**
     * Per filter column {@code kx}: the output columns {@code [ox0, ox1)} whose input column lies inside the input,
     * and the input column of {@code ox0} ({@code ix = ox * strideW - padW + kx * dilationW}); an empty range where no
     * column does. Three ints per column.
     */
    private static int[] columnRanges(ConvGeometry g) {
        int sw = g.strideW(), iw = g.inW(), ow = g.outW();
        int[] r = new int[3 * g.kernelW()];
        for (int kx = 0; kx < g.kernelW(); kx++) {
            int offW = kx * g.dilationW() - g.padW();
            int ox0 = offW >= 0 ? 0 : (-offW + sw - 1) / sw;
            int ox1 = Math.min(ow, iw - offW <= 0 ? 0 : (iw - offW - 1) / sw + 1);
            if (ox0 >= ox1) {
                ox0 = 0;
                ox1 = 0;
            }
            r[3 * kx] = ox0;
            r[3 * kx + 1] = ox1;
            r[3 * kx + 2] = ox0 * sw + offW;
        }
        return r;
    }
}
