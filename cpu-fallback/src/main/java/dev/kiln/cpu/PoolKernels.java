package dev.kiln.cpu;

import dev.kiln.backend.PoolGeometry;

import java.util.Arrays;

/**
 * Average and max pooling, parallel over the {@code n * channels} planes. Average pooling divides by the full
 * kernel area (count_include_pad = true; in floor mode a window never leaves the padded input). Max pooling ignores
 * padding, propagates NaN, and routes the gradient to the first maximum of each window in row-major order,
 * accumulating where windows overlap.
 */
final class PoolKernels {

    private PoolKernels() {
    }

    /** LeNet's pooling: 2x2 windows, stride 2, no padding, so windows neither overlap nor leave the input. */
    private static boolean isPlain2x2(PoolGeometry g) {
        return g.kernelH() == 2 && g.kernelW() == 2 && g.strideH() == 2 && g.strideW() == 2 && g.padH() == 0 && g.padW() == 0;
    }

    private static int grain(PoolGeometry g) {
        return Math.max(1, 8192 / (g.inH() * g.inW()));
    }

    static void avgForward(PoolGeometry g, float[] x, float[] y, Parallel par) {
        int ih = g.inH(), iw = g.inW(), oh = g.outH(), ow = g.outW();
        int kh = g.kernelH(), kw = g.kernelW(), sh = g.strideH(), sw = g.strideW(), ph = g.padH(), pw = g.padW();
        float div = kh * kw;
        boolean fast2 = isPlain2x2(g);
        if (fast2 && SimdSupport.ENABLED && ih % 2 == 0 && iw % 2 == 0 && ow >= VectorSgemm.L / 2) {
            // output rows of at least half a vector (LeNet's first pooling, 14 wide; its second, 5 wide, is faster
            // in the scalar loop)
            par.parallelFor(g.n() * g.channels(), grain(g), (lo, hi) -> VectorPool.avgForward(x, y, ih, iw, lo, hi));
            return;
        }
        par.parallelFor(g.n() * g.channels(), grain(g), (lo, hi) -> {
            for (int pl = lo; pl < hi; pl++) {
                int xo = pl * ih * iw, yo = pl * oh * ow;
                if (fast2) {
                    for (int oy = 0; oy < oh; oy++) {
                        int r0 = xo + 2 * oy * iw, r1 = r0 + iw, o = yo + oy * ow;
                        for (int ox = 0; ox < ow; ox++) {
                            y[o + ox] = ((x[r0 + 2 * ox] + x[r0 + 2 * ox + 1]) + (x[r1 + 2 * ox] + x[r1 + 2 * ox + 1])) * 0.25f;
                        }
                    }
                    continue;
                }
                for (int oy = 0; oy < oh; oy++) {
                    int y0 = oy * sh - ph, y1 = Math.min(y0 + kh, ih);
                    for (int ox = 0; ox < ow; ox++) {
                        int x0 = ox * sw - pw, x1 = Math.min(x0 + kw, iw);
                        float sum = 0f;
                        for (int yy = Math.max(y0, 0); yy < y1; yy++) {
                            for (int xx = Math.max(x0, 0); xx < x1; xx++) {
                                sum += x[xo + yy * iw + xx];
                            }
                        }
                        y[yo + oy * ow + ox] = sum / div;
                    }
                }
            }
        });
    }

    static void avgBackward(PoolGeometry g, float[] dy, float[] dx, Parallel par) {
        int ih = g.inH(), iw = g.inW(), oh = g.outH(), ow = g.outW();
        int kh = g.kernelH(), kw = g.kernelW(), sh = g.strideH(), sw = g.strideW(), ph = g.padH(), pw = g.padW();
        float div = kh * kw;
        boolean fast2 = isPlain2x2(g);
        par.parallelFor(g.n() * g.channels(), grain(g), (lo, hi) -> {
            for (int pl = lo; pl < hi; pl++) {
                int xo = pl * ih * iw, yo = pl * oh * ow;
                if (fast2) {
                    // non-overlapping 2x2 windows: every covered input gets exactly dy/4 (same value as gr below)
                    Arrays.fill(dx, xo, xo + ih * iw, 0f);
                    for (int oy = 0; oy < oh; oy++) {
                        int r0 = xo + 2 * oy * iw, r1 = r0 + iw, o = yo + oy * ow;
                        for (int ox = 0; ox < ow; ox++) {
                            float gr = dy[o + ox] / div;
                            dx[r0 + 2 * ox] = gr;
                            dx[r0 + 2 * ox + 1] = gr;
                            dx[r1 + 2 * ox] = gr;
                            dx[r1 + 2 * ox + 1] = gr;
                        }
                    }
                    continue;
                }
                Arrays.fill(dx, xo, xo + ih * iw, 0f);
                for (int oy = 0; oy < oh; oy++) {
                    int y0 = oy * sh - ph, y1 = Math.min(y0 + kh, ih);
                    for (int ox = 0; ox < ow; ox++) {
                        int x0 = ox * sw - pw, x1 = Math.min(x0 + kw, iw);
                        float gr = dy[yo + oy * ow + ox] / div;
                        for (int yy = Math.max(y0, 0); yy < y1; yy++) {
                            for (int xx = Math.max(x0, 0); xx < x1; xx++) {
                                dx[xo + yy * iw + xx] += gr;
                            }
                        }
                    }
                }
            }
        });
    }

    static void maxForward(PoolGeometry g, float[] x, float[] y, Parallel par) {
        int ih = g.inH(), iw = g.inW(), oh = g.outH(), ow = g.outW();
        int kh = g.kernelH(), kw = g.kernelW(), sh = g.strideH(), sw = g.strideW(), ph = g.padH(), pw = g.padW();
        par.parallelFor(g.n() * g.channels(), grain(g), (lo, hi) -> {
            for (int pl = lo; pl < hi; pl++) {
                int xo = pl * ih * iw, yo = pl * oh * ow;
                for (int oy = 0; oy < oh; oy++) {
                    int y0 = oy * sh - ph, y1 = Math.min(y0 + kh, ih);
                    for (int ox = 0; ox < ow; ox++) {
                        int x0 = ox * sw - pw, x1 = Math.min(x0 + kw, iw);
                        y[yo + oy * ow + ox] = windowMax(x, xo, iw, Math.max(y0, 0), y1, Math.max(x0, 0), x1);
                    }
                }
            }
        });
    }

    private static float windowMax(float[] x, int xo, int iw, int ya, int yb, int xa, int xb) {
        float best = Float.NEGATIVE_INFINITY;
        for (int yy = ya; yy < yb; yy++) {
            for (int xx = xa; xx < xb; xx++) {
                float v = x[xo + yy * iw + xx];
                if (v != v) {
                    return v;
                }
                if (v > best) {
                    best = v;
                }
            }
        }
        return best;
    }

    static void maxBackward(PoolGeometry g, float[] x, float[] y, float[] dy, float[] dx, Parallel par) {
        int ih = g.inH(), iw = g.inW(), oh = g.outH(), ow = g.outW();
        int kh = g.kernelH(), kw = g.kernelW(), sh = g.strideH(), sw = g.strideW(), ph = g.padH(), pw = g.padW();
        par.parallelFor(g.n() * g.channels(), grain(g), (lo, hi) -> {
            for (int pl = lo; pl < hi; pl++) {
                int xo = pl * ih * iw, yo = pl * oh * ow;
                Arrays.fill(dx, xo, xo + ih * iw, 0f);
                for (int oy = 0; oy < oh; oy++) {
                    int y0 = Math.max(oy * sh - ph, 0), y1 = Math.min(oy * sh - ph + kh, ih);
                    for (int ox = 0; ox < ow; ox++) {
                        int x0 = Math.max(ox * sw - pw, 0), x1 = Math.min(ox * sw - pw + kw, iw);
                        int yi = yo + oy * ow + ox;
                        float target = y[yi];
                        boolean nan = target != target;
                        search:
                        for (int yy = y0; yy < y1; yy++) {
                            for (int xx = x0; xx < x1; xx++) {
                                int xi = xo + yy * iw + xx;
                                float v = x[xi];
                                if (v == target || (nan && v != v)) {
                                    dx[xi] += dy[yi];
                                    break search;
                                }
                            }
                        }
                    }
                }
            }
        });
    }
}
