package dev.kiln.cpu;

import dev.kiln.backend.ConvGeometry;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

import java.util.Arrays;
import java.util.function.Supplier;

/**
 * Direct convolution for one input channel (LeNet's first layer), on the Vector API: im2col would copy every input
 * pixel KH*KW times (25x for a 5x5 kernel) to feed a GEMM whose depth is only KH*KW, so the copy costs about as much
 * as the arithmetic. Here each output row is a few vectors of adjacent output pixels; for every kernel tap the
 * shifted input row is loaded once from a zero-padded copy of the image and multiplied into up to six output channels
 * held in registers (12 accumulators); the bias is added at the store (the bias pass is fused). When the row width is not a
 * multiple of the vector length, the last vector overlaps the previous one (the same values are stored twice).
 *
 * <p>Each output is the taps in row-major kernel order, then the bias, one fused multiply-add per tap: the same for
 * every batch split and thread count.
 */
final class VectorConv {

    private static final VectorSpecies<Float> S = VectorSgemm.SPECIES;
    private static final int L = VectorSgemm.L;

    private VectorConv() {
    }

    /** One input channel, stride 1, no dilation, output rows at least one vector wide. */
    static boolean fits(ConvGeometry g) {
        return g.inChannels() == 1 && g.strideH() == 1 && g.strideW() == 1 && g.dilationH() == 1
                && g.dilationW() == 1 && g.outW() >= L;
    }

    static void forward(ConvGeometry g, float[] x, float[] w, float[] bias, float[] y, Parallel par,
                        Supplier<Scratch> scratch) {
        int ih = g.inH(), iw = g.inW(), oh = g.outH(), ow = g.outW();
        int kh = g.kernelH(), kw = g.kernelW(), ph = g.padH(), pw = g.padW();
        int oc = g.outChannels();
        int ohw = oh * ow;
        int kk = kh * kw;
        int rowW = iw + 2 * pw;
        int rowsH = ih + 2 * ph;
        // vector starts along an output row: 0, L, 2L, ... and a last one ending at the row's end
        int full = ow / L;
        int[] starts = new int[full + (ow % L == 0 ? 0 : 1)];
        for (int v = 0; v < full; v++) {
            starts[v] = v * L;
        }
        if (ow % L != 0) {
            starts[full] = ow - L;
        }
        // offset of kernel tap (ky, kx) in the padded image, relative to the window's top-left corner
        int[] taps = new int[kk];
        for (int ky = 0; ky < kh; ky++) {
            for (int kx = 0; kx < kw; kx++) {
                taps[ky * kw + kx] = ky * rowW + kx;
            }
        }
        par.parallelFor(g.n(), 1, (lo, hi) -> {
            float[] xp = scratch.get().col(rowsH * rowW);
            for (int img = lo; img < hi; img++) {
                Arrays.fill(xp, 0, rowsH * rowW, 0f);
                for (int r = 0; r < ih; r++) {
                    System.arraycopy(x, img * ih * iw + r * iw, xp, (r + ph) * rowW + pw, iw);
                }
                for (int o0 = 0; o0 < oc; o0 += 6) {
                    int chans = Math.min(6, oc - o0);
                    for (int oy = 0; oy < oh; oy++) {
                        int yo = img * oc * ohw + o0 * ohw + oy * ow;
                        for (int v = 0; v < starts.length; v += 2) {
                            int s0 = starts[v];
                            int s1 = starts[Math.min(v + 1, starts.length - 1)];
                            if (chans == 6) {
                                taps6(xp, oy * rowW, taps, s0, s1, w, o0 * kk, kk, bias, o0, y, yo, ohw);
                            } else {
                                for (int c = 0; c < chans; c++) {
                                    taps1(xp, oy * rowW, taps, s0, s1, w, (o0 + c) * kk, kk, bias, o0 + c, y,
                                            yo + c * ohw);
                                }
                            }
                        }
                    }
                }
            }
        });
    }

    private static void taps6(float[] xp, int rowBase, int[] taps, int s0, int s1, float[] w, int wo, int kk,
                              float[] bias, int o0, float[] y, int yo, int ohw) {
        FloatVector z = FloatVector.zero(S);
        FloatVector a00 = z, a01 = z, a10 = z, a11 = z, a20 = z, a21 = z;
        FloatVector a30 = z, a31 = z, a40 = z, a41 = z, a50 = z, a51 = z;
        // one flat loop over the taps: C2 (JDK 17) keeps vector accumulators in registers across a single loop, but
        // boxes them at the phis of a nested one
        for (int t = 0; t < kk; t++) {
            int xo = rowBase + taps[t];
            FloatVector v0 = FloatVector.fromArray(S, xp, xo + s0);
            FloatVector v1 = FloatVector.fromArray(S, xp, xo + s1);
            int q = wo + t;
            FloatVector c = FloatVector.broadcast(S, w[q]);
            a00 = c.fma(v0, a00);
            a01 = c.fma(v1, a01);
            c = FloatVector.broadcast(S, w[q + kk]);
            a10 = c.fma(v0, a10);
            a11 = c.fma(v1, a11);
            c = FloatVector.broadcast(S, w[q + 2 * kk]);
            a20 = c.fma(v0, a20);
            a21 = c.fma(v1, a21);
            c = FloatVector.broadcast(S, w[q + 3 * kk]);
            a30 = c.fma(v0, a30);
            a31 = c.fma(v1, a31);
            c = FloatVector.broadcast(S, w[q + 4 * kk]);
            a40 = c.fma(v0, a40);
            a41 = c.fma(v1, a41);
            c = FloatVector.broadcast(S, w[q + 5 * kk]);
            a50 = c.fma(v0, a50);
            a51 = c.fma(v1, a51);
        }
        FloatVector b = init(bias, o0);
        a00.add(b).intoArray(y, yo + s0);
        a01.add(b).intoArray(y, yo + s1);
        b = init(bias, o0 + 1);
        a10.add(b).intoArray(y, yo + ohw + s0);
        a11.add(b).intoArray(y, yo + ohw + s1);
        b = init(bias, o0 + 2);
        a20.add(b).intoArray(y, yo + 2 * ohw + s0);
        a21.add(b).intoArray(y, yo + 2 * ohw + s1);
        b = init(bias, o0 + 3);
        a30.add(b).intoArray(y, yo + 3 * ohw + s0);
        a31.add(b).intoArray(y, yo + 3 * ohw + s1);
        b = init(bias, o0 + 4);
        a40.add(b).intoArray(y, yo + 4 * ohw + s0);
        a41.add(b).intoArray(y, yo + 4 * ohw + s1);
        b = init(bias, o0 + 5);
        a50.add(b).intoArray(y, yo + 5 * ohw + s0);
        a51.add(b).intoArray(y, yo + 5 * ohw + s1);
    }

    private static void taps1(float[] xp, int rowBase, int[] taps, int s0, int s1, float[] w, int wo, int kk,
                              float[] bias, int o, float[] y, int yo) {
        FloatVector a0 = FloatVector.zero(S), a1 = a0;
        for (int t = 0; t < kk; t++) {
            int xo = rowBase + taps[t];
            FloatVector c = FloatVector.broadcast(S, w[wo + t]);
            a0 = c.fma(FloatVector.fromArray(S, xp, xo + s0), a0);
            a1 = c.fma(FloatVector.fromArray(S, xp, xo + s1), a1);
        }
        FloatVector b = init(bias, o);
        a0.add(b).intoArray(y, yo + s0);
        a1.add(b).intoArray(y, yo + s1);
    }

    private static FloatVector init(float[] bias, int o) {
        return FloatVector.broadcast(S, bias == null ? 0f : bias[o]);
    }

    /**
     * Weight gradient of a {@link #fits} convolution into {@code partial} (one {@code OC x KH*KW} block per chunk, the
     * chunks as {@link Conv2dKernels#backwardWeight} splits the batch): {@code dW[o][t] = sum dY[o][oy][ox] *
     * xpad[oy + ky][ox + kx]}, read straight from a zero-padded copy of each image, no im2col. Output rows are padded
     * with zeros to whole vectors (so no lane is counted twice), and each weight keeps one vector of lanes over the
     * chunk's images, summed in double once per chunk. Blocks of 12 accumulators ({@link #accumulate}) run one flat
     * loop of output-row vectors.
     */
    static void weightGradient(ConvGeometry g, float[] x, float[] dy, float[] partial, int chunks, Parallel par,
                               Supplier<Scratch> scratch) {
        if (samePlanes(g)) {
            weightGradientSame(g, x, dy, partial, chunks, par, scratch);
            return;
        }
        int ih = g.inH(), iw = g.inW(), oh = g.outH(), ow = g.outW();
        int kh = g.kernelH(), kw = g.kernelW(), ph = g.padH(), pw = g.padW();
        int oc = g.outChannels();
        int kk = kh * kw;
        int wl = oc * kk;
        int nv = (ow + L - 1) / L;
        int owp = nv * L;
        int rowW = Math.max(iw + 2 * pw, owp + kw - 1);
        int rowsH = ih + 2 * ph;
        int vectors = oh * nv;
        int[] rowOff = new int[vectors];
        for (int r = 0; r < vectors; r++) {
            rowOff[r] = (r / nv) * rowW + (r % nv) * L;
        }
        int[] taps = new int[kk];
        for (int ky = 0; ky < kh; ky++) {
            for (int kx = 0; kx < kw; kx++) {
                taps[ky * kw + kx] = ky * rowW + kx;
            }
        }
        int n = g.n();
        par.parallelFor(chunks, 1, (lo, hi) -> {
            Scratch s = scratch.get();
            float[] xp = s.col(rowsH * rowW);
            float[] dyp = s.paddedRows(oc * vectors * L);
            float[] lanes = s.vectorLanes(wl * L);
            Arrays.fill(xp, 0, rowsH * rowW, 0f);
            Arrays.fill(dyp, 0, oc * vectors * L, 0f);
            for (int ch = lo; ch < hi; ch++) {
                int first = (int) ((long) n * ch / chunks);
                int last = (int) ((long) n * (ch + 1) / chunks);
                Arrays.fill(lanes, 0, wl * L, 0f);
                for (int img = first; img < last; img++) {
                    for (int r = 0; r < ih; r++) {
                        System.arraycopy(x, img * ih * iw + r * iw, xp, (r + ph) * rowW + pw, iw);
                    }
                    for (int o = 0; o < oc; o++) {
                        for (int r = 0; r < oh; r++) {
                            System.arraycopy(dy, ((img * oc + o) * oh + r) * ow, dyp, (o * oh + r) * owp, ow);
                        }
                    }
                    accumulate(xp, taps, rowOff, vectors, dyp, 0, vectors * L, oc, kk, lanes);
                }
                VectorSgemm.reduceLanes(lanes, wl, partial, chunks == 1 ? 0 : ch * wl);
            }
        });
    }

    private static void grad3x4(float[] xp, int[] taps, int t, int[] rowOff, int vectors, float[] dyp, int dyo,
                                int dyStride, float[] lanes, int lo, int laneStride) {
        int t0 = taps[t], t1 = taps[t + 1], t2 = taps[t + 2], t3 = taps[t + 3];
        FloatVector c00 = FloatVector.fromArray(S, lanes, lo);
        FloatVector c01 = FloatVector.fromArray(S, lanes, lo + L);
        FloatVector c02 = FloatVector.fromArray(S, lanes, lo + 2 * L);
        FloatVector c03 = FloatVector.fromArray(S, lanes, lo + 3 * L);
        FloatVector c10 = FloatVector.fromArray(S, lanes, lo + laneStride);
        FloatVector c11 = FloatVector.fromArray(S, lanes, lo + laneStride + L);
        FloatVector c12 = FloatVector.fromArray(S, lanes, lo + laneStride + 2 * L);
        FloatVector c13 = FloatVector.fromArray(S, lanes, lo + laneStride + 3 * L);
        FloatVector c20 = FloatVector.fromArray(S, lanes, lo + 2 * laneStride);
        FloatVector c21 = FloatVector.fromArray(S, lanes, lo + 2 * laneStride + L);
        FloatVector c22 = FloatVector.fromArray(S, lanes, lo + 2 * laneStride + 2 * L);
        FloatVector c23 = FloatVector.fromArray(S, lanes, lo + 2 * laneStride + 3 * L);
        for (int r = 0; r < vectors; r++) {
            int xo = rowOff[r];
            FloatVector x0 = FloatVector.fromArray(S, xp, xo + t0);
            FloatVector x1 = FloatVector.fromArray(S, xp, xo + t1);
            FloatVector x2 = FloatVector.fromArray(S, xp, xo + t2);
            FloatVector x3 = FloatVector.fromArray(S, xp, xo + t3);
            int d = dyo + r * L;
            FloatVector g = FloatVector.fromArray(S, dyp, d);
            c00 = g.fma(x0, c00);
            c01 = g.fma(x1, c01);
            c02 = g.fma(x2, c02);
            c03 = g.fma(x3, c03);
            g = FloatVector.fromArray(S, dyp, d + dyStride);
            c10 = g.fma(x0, c10);
            c11 = g.fma(x1, c11);
            c12 = g.fma(x2, c12);
            c13 = g.fma(x3, c13);
            g = FloatVector.fromArray(S, dyp, d + 2 * dyStride);
            c20 = g.fma(x0, c20);
            c21 = g.fma(x1, c21);
            c22 = g.fma(x2, c22);
            c23 = g.fma(x3, c23);
        }
        c00.intoArray(lanes, lo);
        c01.intoArray(lanes, lo + L);
        c02.intoArray(lanes, lo + 2 * L);
        c03.intoArray(lanes, lo + 3 * L);
        c10.intoArray(lanes, lo + laneStride);
        c11.intoArray(lanes, lo + laneStride + L);
        c12.intoArray(lanes, lo + laneStride + 2 * L);
        c13.intoArray(lanes, lo + laneStride + 3 * L);
        c20.intoArray(lanes, lo + 2 * laneStride);
        c21.intoArray(lanes, lo + 2 * laneStride + L);
        c22.intoArray(lanes, lo + 2 * laneStride + 2 * L);
        c23.intoArray(lanes, lo + 2 * laneStride + 3 * L);
    }

    /**
     * Output the input's size (odd kernel, padding {@code (K - 1) / 2}) and planes of whole vectors: the weight
     * gradient can read dY where it is ({@link #weightGradientSame}).
     */
    static boolean samePlanes(ConvGeometry g) {
        int kh = g.kernelH(), kw = g.kernelW();
        return kh % 2 == 1 && kw % 2 == 1 && g.padH() == (kh - 1) / 2 && g.padW() == (kw - 1) / 2
                && g.inW() > g.padW() && g.outH() * g.outW() % L == 0;
    }

    /**
     * {@link #weightGradient} of a {@link #samePlanes} convolution (the ResNet stem): dY's planes read in place, whole
     * vectors along the plane, and x in {@link StackedConv}'s layout for one image, rows as wide as the output with
     * one copy per kernel column whose wrapped columns are zero, so each tap is one shifted load at every position.
     * Copying dY's rows to vector-padded rows took most of this pass's time. Each weight keeps one vector of lanes
     * over the chunk's images (lane {@code l} holds the positions {@code l mod L} in order), summed once per chunk.
     */
    private static void weightGradientSame(ConvGeometry g, float[] x, float[] dy, float[] partial, int chunks,
                                           Parallel par, Supplier<Scratch> scratch) {
        int oc = g.outChannels();
        int kk = g.kernelH() * g.kernelW();
        int wl = oc * kk;
        int hw = g.inH() * g.inW();
        int vectors = hw / L;
        StackedConv.Layout lay = StackedConv.layout(g, 1, scratch);
        int[] rowOff = new int[vectors];
        for (int r = 0; r < vectors; r++) {
            rowOff[r] = r * L;
        }
        int n = g.n();
        par.parallelFor(chunks, 1, (lo, hi) -> {
            Scratch s = scratch.get();
            float[] xp = s.col(lay.length);
            float[] lanes = s.vectorLanes(wl * L);
            Arrays.fill(xp, 0, lay.length, 0f);
            for (int ch = lo; ch < hi; ch++) {
                int first = (int) ((long) n * ch / chunks);
                int last = (int) ((long) n * (ch + 1) / chunks);
                Arrays.fill(lanes, 0, wl * L, 0f);
                for (int img = first; img < last; img++) {
                    lay.gather(x, img * hw, 0, xp);
                    accumulate(xp, lay.rows, rowOff, vectors, dy, img * oc * hw, hw, oc, kk, lanes);
                }
                VectorSgemm.reduceLanes(lanes, wl, partial, chunks == 1 ? 0 : ch * wl);
            }
        });
    }

    /**
     * One image's products into the lanes of every weight: dY of channel {@code o} at {@code dy[dyo + o * dyStride]},
     * tap {@code t} at {@code xp[taps[t] + rowOff[r]]} for each of the {@code vectors} vectors. Blocks of 4 channels x
     * 3 taps where they divide (a 3x3 kernel's 16 channels leave no single-accumulator remainder), else 3 x 4 and
     * single ones.
     */
    private static void accumulate(float[] xp, int[] taps, int[] rowOff, int vectors, float[] dy, int dyo,
                                   int dyStride, int oc, int kk, float[] lanes) {
        if (oc % 4 == 0 && kk % 3 == 0) {
            for (int o = 0; o < oc; o += 4) {
                for (int t = 0; t < kk; t += 3) {
                    grad4x3(xp, taps, t, rowOff, vectors, dy, dyo + o * dyStride, dyStride, lanes, (o * kk + t) * L,
                            kk * L);
                }
            }
            return;
        }
        int o3 = oc / 3 * 3;
        int t4 = kk / 4 * 4;
        for (int o = 0; o < o3; o += 3) {
            for (int t = 0; t < t4; t += 4) {
                grad3x4(xp, taps, t, rowOff, vectors, dy, dyo + o * dyStride, dyStride, lanes, (o * kk + t) * L,
                        kk * L);
            }
        }
        for (int o = 0; o < oc; o++) {
            for (int t = o < o3 ? t4 : 0; t < kk; t++) {
                grad1x1(xp, taps[t], rowOff, vectors, dy, dyo + o * dyStride, lanes, (o * kk + t) * L);
            }
        }
    }

    private static void grad4x3(float[] xp, int[] taps, int t, int[] rowOff, int vectors, float[] dyp, int dyo,
                                int dyStride, float[] lanes, int lo, int laneStride) {
        int t0 = taps[t], t1 = taps[t + 1], t2 = taps[t + 2];
        FloatVector c00 = FloatVector.fromArray(S, lanes, lo);
        FloatVector c01 = FloatVector.fromArray(S, lanes, lo + L);
        FloatVector c02 = FloatVector.fromArray(S, lanes, lo + 2 * L);
        FloatVector c10 = FloatVector.fromArray(S, lanes, lo + laneStride);
        FloatVector c11 = FloatVector.fromArray(S, lanes, lo + laneStride + L);
        FloatVector c12 = FloatVector.fromArray(S, lanes, lo + laneStride + 2 * L);
        FloatVector c20 = FloatVector.fromArray(S, lanes, lo + 2 * laneStride);
        FloatVector c21 = FloatVector.fromArray(S, lanes, lo + 2 * laneStride + L);
        FloatVector c22 = FloatVector.fromArray(S, lanes, lo + 2 * laneStride + 2 * L);
        FloatVector c30 = FloatVector.fromArray(S, lanes, lo + 3 * laneStride);
        FloatVector c31 = FloatVector.fromArray(S, lanes, lo + 3 * laneStride + L);
        FloatVector c32 = FloatVector.fromArray(S, lanes, lo + 3 * laneStride + 2 * L);
        for (int r = 0; r < vectors; r++) {
            int xo = rowOff[r];
            FloatVector x0 = FloatVector.fromArray(S, xp, xo + t0);
            FloatVector x1 = FloatVector.fromArray(S, xp, xo + t1);
            FloatVector x2 = FloatVector.fromArray(S, xp, xo + t2);
            int d = dyo + r * L;
            FloatVector g = FloatVector.fromArray(S, dyp, d);
            c00 = g.fma(x0, c00);
            c01 = g.fma(x1, c01);
            c02 = g.fma(x2, c02);
            g = FloatVector.fromArray(S, dyp, d + dyStride);
            c10 = g.fma(x0, c10);
            c11 = g.fma(x1, c11);
            c12 = g.fma(x2, c12);
            g = FloatVector.fromArray(S, dyp, d + 2 * dyStride);
            c20 = g.fma(x0, c20);
            c21 = g.fma(x1, c21);
            c22 = g.fma(x2, c22);
            g = FloatVector.fromArray(S, dyp, d + 3 * dyStride);
            c30 = g.fma(x0, c30);
            c31 = g.fma(x1, c31);
            c32 = g.fma(x2, c32);
        }
        c00.intoArray(lanes, lo);
        c01.intoArray(lanes, lo + L);
        c02.intoArray(lanes, lo + 2 * L);
        c10.intoArray(lanes, lo + laneStride);
        c11.intoArray(lanes, lo + laneStride + L);
        c12.intoArray(lanes, lo + laneStride + 2 * L);
        c20.intoArray(lanes, lo + 2 * laneStride);
        c21.intoArray(lanes, lo + 2 * laneStride + L);
        c22.intoArray(lanes, lo + 2 * laneStride + 2 * L);
        c30.intoArray(lanes, lo + 3 * laneStride);
        c31.intoArray(lanes, lo + 3 * laneStride + L);
        c32.intoArray(lanes, lo + 3 * laneStride + 2 * L);
    }

    private static void grad1x1(float[] xp, int tap, int[] rowOff, int vectors, float[] dyp, int dyo, float[] lanes,
                                int lo) {
        FloatVector c = FloatVector.fromArray(S, lanes, lo);
        for (int r = 0; r < vectors; r++) {
            c = FloatVector.fromArray(S, dyp, dyo + r * L).fma(FloatVector.fromArray(S, xp, rowOff[r] + tap), c);
        }
        c.intoArray(lanes, lo);
    }

    /**
     * Input gradient of a stride-1, unpadded convolution ({@link Conv2dKernels#wide}) on wide positions: per image,
     * {@code colW = W^T x dyW} (dY's rows spread to the input's row width, zeros between them) is written into rows
     * with zero margins, then each input-gradient vector is the sum over the window taps of one shifted load from the
     * tap's row. No scatter and no read-modify-write of dX: each input gradient is its taps in row-major
     * kernel order, as {@link Conv2dKernels#col2im} adds them, so the result does not depend on the thread count.
     */
    static void backwardDataWide(ConvGeometry g, float[] w, float[] dy, float[] dx, Parallel par,
                                 Supplier<Scratch> scratch) {
        int cin = g.inChannels();
        int kh = g.kernelH(), kw = g.kernelW(), kk = kh * kw;
        int ckk = cin * kk;
        int oh = g.outH(), ow = g.outW(), ohw = oh * ow;
        int ih = g.inH(), iw = g.inW(), plane = ih * iw;
        int oc = g.outChannels();
        int inImage = cin * plane;
        int t = (oh - 1) * iw + ow;
        // a tap's row is read at q = p - offset, p < plane, offset <= (kh-1)*iw + kw-1: margins keep q inside the row
        int left = (kh - 1) * iw + kw - 1;
        int right = Math.max(0, plane - t) + L;
        int stride = left + t + right;
        int[] offsets = new int[kk];
        for (int ky = 0; ky < kh; ky++) {
            for (int kx = 0; kx < kw; kx++) {
                offsets[ky * kw + kx] = ky * iw + kx;
            }
        }
        int vectorEnd = plane / L * L;
        par.parallelFor(g.n(), 1, (lo, hi) -> {
            Scratch s = scratch.get();
            float[] col = s.col(ckk * stride);
            float[] dyW = s.wideRows(oc * t);
            for (int r = 0; r < ckk; r++) {
                Arrays.fill(col, r * stride, r * stride + left, 0f);
                Arrays.fill(col, r * stride + left + t, (r + 1) * stride, 0f);
            }
            for (int img = lo; img < hi; img++) {
                int dyo = img * oc * ohw;
                for (int o = 0; o < oc; o++) {
                    for (int oy = 0; oy < oh; oy++) {
                        int d = o * t + oy * iw;
                        System.arraycopy(dy, dyo + (o * oh + oy) * ow, dyW, d, ow);
                        if (oy < oh - 1) {
                            Arrays.fill(dyW, d + ow, d + iw, 0f);
                        }
                    }
                }
                VectorSgemm.gemm(true, false, ckk, t, oc, 1f, w, 0, ckk, dyW, 0, t, 0f, col, left, stride, s);
                for (int c = 0; c < cin; c++) {
                    int dst = img * inImage + c * plane;
                    int rows = c * kk * stride + left;
                    int p = 0;
                    for (; p < vectorEnd; p += L) {
                        FloatVector acc = FloatVector.zero(S);
                        for (int k = 0; k < kk; k++) {
                            acc = acc.add(FloatVector.fromArray(S, col, rows + k * stride + p - offsets[k]));
                        }
                        acc.intoArray(dx, dst + p);
                    }
                    for (; p < plane; p++) {
                        float sum = 0f;
                        for (int k = 0; k < kk; k++) {
                            sum += col[rows + k * stride + p - offsets[k]];
                        }
                        dx[dst + p] = sum;
                    }
                }
            }
        });
    }
}
