package dev.kiln.cpu;

import dev.kiln.backend.ConvGeometry;

import java.util.Arrays;

/**
 * Grouped convolution ({@code groups > 1}; depthwise when {@code groups == inChannels}) computed directly: each
 * filter tap {@code (c, ky, kx)} adds its weight times a shifted input row to a whole output row, so the inner loop
 * runs over contiguous positions. The lowering to a GEMM of {@link Conv2dKernels} would multiply matrices with as few
 * rows as a group has channels (one, for a depthwise convolution). Every output element is written by one task, in
 * an order that does not depend on the thread count.
 */
final class GroupedConvKernels {

    private GroupedConvKernels() {
    }

    /** Parallel over the {@code n * outChannels} output planes. */
    static void forward(ConvGeometry g, float[] x, float[] w, float[] bias, float[] y, Parallel par) {
        int icg = g.inChannelsPerGroup(), ocg = g.outChannelsPerGroup();
        int oc = g.outChannels(), ih = g.inH(), iw = g.inW(), oh = g.outH(), ow = g.outW();
        int kh = g.kernelH(), kw = g.kernelW();
        int inPlane = ih * iw, outPlane = oh * ow;
        par.parallelFor(g.n() * oc, Math.max(1, 4096 / (outPlane * icg * kh * kw)), (lo, hi) -> {
            for (int p = lo; p < hi; p++) {
                int img = p / oc, o = p % oc;
                int yo = p * outPlane;
                Arrays.fill(y, yo, yo + outPlane, bias == null ? 0f : bias[o]);
                int firstIn = o / ocg * icg;
                for (int c = 0; c < icg; c++) {
                    int xo = (img * g.inChannels() + firstIn + c) * inPlane;
                    for (int ky = 0; ky < kh; ky++) {
                        for (int kx = 0; kx < kw; kx++) {
                            float wv = w[((o * icg + c) * kh + ky) * kw + kx];
                            tap(g, ky, kx, oh, ow, ih, iw, (oy, iy, ox0, ox1, ix0) -> {
                                int yr = yo + oy * ow, xr = xo + iy * iw + ix0 - ox0 * g.strideW();
                                int sw = g.strideW();
                                if (sw == 1) {
                                    // contiguous on both sides: the loop the JIT vectorises
                                    for (int ox = ox0; ox < ox1; ox++) {
                                        y[yr + ox] += wv * x[xr + ox];
                                    }
                                } else {
                                    for (int ox = ox0; ox < ox1; ox++) {
                                        y[yr + ox] += wv * x[xr + ox * sw];
                                    }
                                }
                            });
                        }
                    }
                }
            }
        });
    }

    /** Parallel over the {@code n * inChannels} input planes: each gathers from the filters of its group. */
    static void backwardData(ConvGeometry g, float[] w, float[] dy, float[] dx, Parallel par) {
        int icg = g.inChannelsPerGroup(), ocg = g.outChannelsPerGroup();
        int ic = g.inChannels(), ih = g.inH(), iw = g.inW(), oh = g.outH(), ow = g.outW();
        int kh = g.kernelH(), kw = g.kernelW();
        int inPlane = ih * iw, outPlane = oh * ow;
        par.parallelFor(g.n() * ic, Math.max(1, 4096 / (outPlane * ocg * kh * kw)), (lo, hi) -> {
            for (int p = lo; p < hi; p++) {
                int img = p / ic, c = p % ic;
                int xo = p * inPlane;
                Arrays.fill(dx, xo, xo + inPlane, 0f);
                int group = c / icg, cl = c % icg;
                for (int j = 0; j < ocg; j++) {
                    int o = group * ocg + j;
                    int yo = (img * g.outChannels() + o) * outPlane;
                    for (int ky = 0; ky < kh; ky++) {
                        for (int kx = 0; kx < kw; kx++) {
                            float wv = w[((o * icg + cl) * kh + ky) * kw + kx];
                            tap(g, ky, kx, oh, ow, ih, iw, (oy, iy, ox0, ox1, ix0) -> {
                                int yr = yo + oy * ow, xr = xo + iy * iw + ix0 - ox0 * g.strideW();
                                int sw = g.strideW();
                                if (sw == 1) {
                                    for (int ox = ox0; ox < ox1; ox++) {
                                        dx[xr + ox] += wv * dy[yr + ox];
                                    }
                                } else {
                                    for (int ox = ox0; ox < ox1; ox++) {
                                        dx[xr + ox * sw] += wv * dy[yr + ox];
                                    }
                                }
                            });
                        }
                    }
                }
            }
        });
    }

    /**
     * Parallel over the output channels: each weight is one sum over images and positions, in double, in the same
     * order whatever the thread count.
     */
    static void backwardWeight(ConvGeometry g, float[] x, float[] dy, float[] dw, Parallel par) {
        int icg = g.inChannelsPerGroup(), ocg = g.outChannelsPerGroup();
        int oc = g.outChannels(), ih = g.inH(), iw = g.inW(), oh = g.outH(), ow = g.outW();
        int kh = g.kernelH(), kw = g.kernelW();
        int inPlane = ih * iw, outPlane = oh * ow;
        par.parallelFor(oc, 1, (lo, hi) -> {
            double[] acc = new double[1];
            for (int o = lo; o < hi; o++) {
                int firstIn = o / ocg * icg;
                for (int c = 0; c < icg; c++) {
                    for (int ky = 0; ky < kh; ky++) {
                        for (int kx = 0; kx < kw; kx++) {
                            acc[0] = 0;
                            for (int img = 0; img < g.n(); img++) {
                                int xo = (img * g.inChannels() + firstIn + c) * inPlane;
                                int yo = (img * oc + o) * outPlane;
                                tap(g, ky, kx, oh, ow, ih, iw, (oy, iy, ox0, ox1, ix0) -> {
                                    int yr = yo + oy * ow, xr = xo + iy * iw + ix0 - ox0 * g.strideW();
                                    int sw = g.strideW();
                                    double s = 0;
                                    for (int ox = ox0; ox < ox1; ox++) {
                                        s += (double) dy[yr + ox] * x[xr + ox * sw];
                                    }
                                    acc[0] += s;
                                });
                            }
                            dw[((o * icg + c) * kh + ky) * kw + kx] = (float) acc[0];
                        }
                    }
                }
            }
        });
    }

    /** One output row's run of a filter tap: output columns {@code [ox0, ox1)} read input column {@code ix0} onwards. */
    @FunctionalInterface
    private interface Row {
        void run(int oy, int iy, int ox0, int ox1, int ix0);
    }

    /**
     * For tap {@code (ky, kx)}: every output row whose input row lies inside the input, with the range of output
     * columns whose input column does ({@code ix = ox * strideW - padW + kx * dilationW}).
     */
    private static void tap(ConvGeometry g, int ky, int kx, int oh, int ow, int ih, int iw, Row row) {
        int sw = g.strideW(), offW = kx * g.dilationW() - g.padW();
        // first ox with ox*sw + offW >= 0, and one past the last with ox*sw + offW < iw
        int ox0 = offW >= 0 ? 0 : (-offW + sw - 1) / sw;
        int ox1 = Math.min(ow, iw - offW <= 0 ? 0 : (iw - offW - 1) / sw + 1);
        if (ox0 >= ox1) {
            return;
        }
        int ix0 = ox0 * sw + offW;
        for (int oy = 0; oy < oh; oy++) {
            int iy = oy * g.strideH() - g.padH() + ky * g.dilationH();
            if (iy >= 0 && iy < ih) {
                row.run(oy, iy, ox0, ox1, ix0);
            }
        }
    }
}
