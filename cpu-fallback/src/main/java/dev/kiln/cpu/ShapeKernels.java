package dev.kiln.cpu;

import dev.kiln.backend.AdaptivePoolGeometry;
import dev.kiln.backend.UpsampleGeometry;

import java.util.Arrays;

/**
 * Slice copies (narrow, cat, stack), adaptive average and max pooling and nearest upsampling. The pooling and
 * upsampling kernels are parallel over the {@code n * channels} planes; every backward is a gather (each input
 * position sums what reaches it, in output order, as PyTorch's scatter adds it), so no two tasks write one element and
 * the result does not depend on the thread count.
 */
final class ShapeKernels {

    private ShapeKernels() {
    }

    private static int grain(long perPlane) {
        return (int) Math.max(1, 8192 / Math.max(1, perPlane));
    }

    static void copySlice(float[] src, int outer, int srcExtent, int srcStart, float[] dst, int dstExtent, int dstStart,
                          int length, int inner, Parallel par) {
        int run = length * inner;
        if (run == 0) {
            return;
        }
        par.parallelFor(outer, grain(run), (lo, hi) -> {
            for (int o = lo; o < hi; o++) {
                System.arraycopy(src, (o * srcExtent + srcStart) * inner, dst, (o * dstExtent + dstStart) * inner, run);
            }
        });
    }

    // ------------------------------------------------------------------------------------------ adaptive pooling

    static void adaptiveAvgForward(AdaptivePoolGeometry g, float[] x, float[] y, Parallel par) {
        int ih = g.inH(), iw = g.inW(), oh = g.outH(), ow = g.outW();
        par.parallelFor(g.n() * g.channels(), grain((long) ih * iw), (lo, hi) -> {
            for (int p = lo; p < hi; p++) {
                int xo = p * ih * iw, yo = p * oh * ow;
                for (int oy = 0; oy < oh; oy++) {
                    int y0 = AdaptivePoolGeometry.start(oy, ih, oh), y1 = AdaptivePoolGeometry.end(oy, ih, oh);
                    for (int ox = 0; ox < ow; ox++) {
                        int x0 = AdaptivePoolGeometry.start(ox, iw, ow), x1 = AdaptivePoolGeometry.end(ox, iw, ow);
                        float sum = 0f;
                        for (int yy = y0; yy < y1; yy++) {
                            for (int xx = x0; xx < x1; xx++) {
                                sum += x[xo + yy * iw + xx];
                            }
                        }
                        y[yo + oy * ow + ox] = sum / (y1 - y0) / (x1 - x0);
                    }
                }
            }
        });
    }

    /** First output index whose window contains input index {@code i}: {@code floor(i * out / in)}. */
    static int firstWindow(int i, int in, int out) {
        return (int) ((long) i * out / in);
    }

    /** Last output index whose window contains input index {@code i}: {@code ceil((i + 1) * out / in) - 1}. */
    static int lastWindow(int i, int in, int out) {
        return (int) (((long) (i + 1) * out + in - 1) / in) - 1;
    }

    /** {@code [firstWindow, lastWindow]} of every input index: two ints per index. */
    private static int[] windows(int in, int out) {
        int[] r = new int[2 * in];
        for (int i = 0; i < in; i++) {
            r[2 * i] = firstWindow(i, in, out);
            r[2 * i + 1] = lastWindow(i, in, out);
        }
        return r;
    }

    static void adaptiveAvgBackward(AdaptivePoolGeometry g, float[] dy, float[] dx, Parallel par) {
        int ih = g.inH(), iw = g.inW(), oh = g.outH(), ow = g.outW();
        int[] rows = windows(ih, oh), cols = windows(iw, ow);
        int[] kh = new int[oh], kw = new int[ow];
        for (int o = 0; o < oh; o++) {
            kh[o] = AdaptivePoolGeometry.end(o, ih, oh) - AdaptivePoolGeometry.start(o, ih, oh);
        }
        for (int o = 0; o < ow; o++) {
            kw[o] = AdaptivePoolGeometry.end(o, iw, ow) - AdaptivePoolGeometry.start(o, iw, ow);
        }
        par.parallelFor(g.n() * g.channels(), grain((long) ih * iw), (lo, hi) -> {
            // each output's share, dy / kh / kw as PyTorch rounds it, computed once per plane
            float[] share = new float[oh * ow];
            for (int p = lo; p < hi; p++) {
                int xo = p * ih * iw, yo = p * oh * ow;
                for (int oy = 0; oy < oh; oy++) {
                    for (int ox = 0; ox < ow; ox++) {
                        share[oy * ow + ox] = dy[yo + oy * ow + ox] / kh[oy] / kw[ox];
                    }
                }
                if (oh == 1 && ow == 1) {
                    // global pooling: every input gets the one share (0 + share, as the sum below: -0 becomes +0)
                    Arrays.fill(dx, xo, xo + ih * iw, 0f + share[0]);
                    continue;
                }
                for (int yy = 0; yy < ih; yy++) {
                    int oy0 = rows[2 * yy], oy1 = rows[2 * yy + 1];
                    for (int xx = 0; xx < iw; xx++) {
                        int ox0 = cols[2 * xx], ox1 = cols[2 * xx + 1];
                        float acc = 0f;
                        for (int oy = oy0; oy <= oy1; oy++) {
                            for (int ox = ox0; ox <= ox1; ox++) {
                                acc += share[oy * ow + ox];
                            }
                        }
                        dx[xo + yy * iw + xx] = acc;
                    }
                }
            }
        });
    }

    static void adaptiveMaxForward(AdaptivePoolGeometry g, float[] x, float[] y, float[] indices, Parallel par) {
        int ih = g.inH(), iw = g.inW(), oh = g.outH(), ow = g.outW();
        par.parallelFor(g.n() * g.channels(), grain((long) ih * iw), (lo, hi) -> {
            for (int p = lo; p < hi; p++) {
                int xo = p * ih * iw, yo = p * oh * ow;
                for (int oy = 0; oy < oh; oy++) {
                    int y0 = AdaptivePoolGeometry.start(oy, ih, oh), y1 = AdaptivePoolGeometry.end(oy, ih, oh);
                    for (int ox = 0; ox < ow; ox++) {
                        int x0 = AdaptivePoolGeometry.start(ox, iw, ow), x1 = AdaptivePoolGeometry.end(ox, iw, ow);
                        float max = Float.NEGATIVE_INFINITY;
                        int at = y0 * iw + x0;
                        for (int yy = y0; yy < y1; yy++) {
                            for (int xx = x0; xx < x1; xx++) {
                                float v = x[xo + yy * iw + xx];
                                if (v > max || Float.isNaN(v)) {
                                    max = v;
                                    at = yy * iw + xx;
                                }
                            }
                        }
                        y[yo + oy * ow + ox] = max;
                        indices[yo + oy * ow + ox] = at;
                    }
                }
            }
        });
    }

    static void adaptiveMaxBackward(AdaptivePoolGeometry g, float[] indices, float[] dy, float[] dx, Parallel par) {
        int ih = g.inH(), iw = g.inW(), oh = g.outH(), ow = g.outW();
        int[] rows = windows(ih, oh), cols = windows(iw, ow);
        par.parallelFor(g.n() * g.channels(), grain((long) ih * iw), (lo, hi) -> {
            for (int p = lo; p < hi; p++) {
                int xo = p * ih * iw, yo = p * oh * ow;
                for (int yy = 0; yy < ih; yy++) {
                    int oy0 = rows[2 * yy], oy1 = rows[2 * yy + 1];
                    for (int xx = 0; xx < iw; xx++) {
                        int ox0 = cols[2 * xx], ox1 = cols[2 * xx + 1];
                        float here = yy * iw + xx;
                        float acc = 0f;
                        for (int oy = oy0; oy <= oy1; oy++) {
                            for (int ox = ox0; ox <= ox1; ox++) {
                                if (indices[yo + oy * ow + ox] == here) {
                                    acc += dy[yo + oy * ow + ox];
                                }
                            }
                        }
                        dx[xo + yy * iw + xx] = acc;
                    }
                }
            }
        });
    }

    // ------------------------------------------------------------------------------------------ upsampling

    static void upsampleNearestForward(UpsampleGeometry g, float[] x, float[] y, Parallel par) {
        int ih = g.inH(), iw = g.inW(), oh = g.outH(), ow = g.outW(), sh = g.scaleH(), sw = g.scaleW();
        par.parallelFor(g.n() * g.channels(), grain((long) oh * ow), (lo, hi) -> {
            for (int p = lo; p < hi; p++) {
                int xo = p * ih * iw, yo = p * oh * ow;
                for (int yy = 0; yy < ih; yy++) {
                    // one widened row, then copies of it for the other sh - 1 output rows
                    int xr = xo + yy * iw, first = yo + yy * sh * ow;
                    for (int xx = 0, o = first; xx < iw; xx++) {
                        float v = x[xr + xx];
                        for (int b = 0; b < sw; b++) {
                            y[o++] = v;
                        }
                    }
                    for (int a = 1; a < sh; a++) {
                        System.arraycopy(y, first, y, first + a * ow, ow);
                    }
                }
            }
        });
    }

    static void upsampleNearestBackward(UpsampleGeometry g, float[] dy, float[] dx, Parallel par) {
        int ih = g.inH(), iw = g.inW(), oh = g.outH(), ow = g.outW(), sh = g.scaleH(), sw = g.scaleW();
        par.parallelFor(g.n() * g.channels(), grain((long) oh * ow), (lo, hi) -> {
            for (int p = lo; p < hi; p++) {
                int xo = p * ih * iw, yo = p * oh * ow;
                for (int yy = 0; yy < ih; yy++) {
                    for (int xx = 0; xx < iw; xx++) {
                        float acc = 0f;
                        for (int a = 0; a < sh; a++) {
                            int r = yo + (yy * sh + a) * ow + xx * sw;
                            for (int b = 0; b < sw; b++) {
                                acc += dy[r + b];
                            }
                        }
                        dx[xo + yy * iw + xx] = acc;
                    }
                }
            }
        });
    }
}
