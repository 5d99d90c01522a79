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
}
