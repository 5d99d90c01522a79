package dev.kiln.cpu;

import dev.kiln.backend.ConvGeometry;

import java.util.Arrays;
import java.util.function.Supplier;

/**
 * Convolution as im2col + {@link Sgemm}, parallel over the batch: each image is lowered into its thread's own
 * column buffer ({@code (C*KH*KW) x (OH*OW)}), so nothing batch-sized is ever materialised. A 1x1, stride 1,
 * unpadded convolution skips the lowering. These are the reference (scalar) kernels; with the SIMD kernels, shapes
 * with their own kernel skip im2col: one input channel ({@link VectorConv}), stride 1 unpadded ({@link #wide}),
 * padded or strided ({@link ImplicitConv}).
 */
final class Conv2dKernels {

    private Conv2dKernels() {
    }

    private static boolean pointwise(ConvGeometry g) {
        return g.kernelH() == 1 && g.kernelW() == 1 && g.strideH() == 1 && g.strideW() == 1
                && g.padH() == 0 && g.padW() == 0;
    }

    static void forward(ConvGeometry g, float[] x, float[] w, float[] bias, float[] y,
                        Parallel par, Supplier<Scratch> scratch) {
        if (SimdSupport.ENABLED && VectorConv.fits(g)) {
            VectorConv.forward(g, x, w, bias, y, par, scratch);
            return;
        }
        if (SimdSupport.ENABLED && wide(g)) {
            forwardWide(g, x, w, bias, y, par, scratch);
            return;
        }
        if (SimdSupport.ENABLED && ImplicitConv.fits(g)) {
            ImplicitConv.forward(g, x, w, bias, y, par, scratch);
            return;
        }
        if (SimdSupport.ENABLED && smallPlanes(g)) {
            forwardGrouped(g, x, w, bias, y, par, scratch);
            return;
        }
        forwardIm2col(g, x, w, bias, y, par, scratch);
    }

    /** Output positions of one GEMM in {@link #forwardGrouped} and {@link #backwardDataGrouped}, about. */
    static final int GROUP_COLUMNS = 256;

    /**
     * Output planes of at most half {@link #GROUP_COLUMNS} (ResNet's 7x7 stage): one image per GEMM would
     * leave a wide share of the last column block empty (49 of 64 columns used at 7x7) and pay the per-call packing for
     * little work, so several images go into one GEMM side by side.
     */
    static boolean smallPlanes(ConvGeometry g) {
        return !pointwise(g) && 2 * g.outH() * g.outW() <= GROUP_COLUMNS;
    }

    /**
     * {@link #forwardIm2col} on groups of images: their im2col matrices side by side ({@code C*KH*KW x G*OH*OW}), one
     * GEMM with the weights, the outputs copied to their images with the bias added. Every output is the same sum as
     * through {@link #forwardIm2col} (the GEMM's depth order does not depend on the column).
     */
    static void forwardGrouped(ConvGeometry g, float[] x, float[] w, float[] bias, float[] y, Parallel par,
                               Supplier<Scratch> scratch) {
        int ckk = g.inChannels() * g.kernelH() * g.kernelW();
        int ohw = g.outH() * g.outW();
        int oc = g.outChannels();
        int inImage = g.inChannels() * g.inH() * g.inW();
        int n = g.n();
        int group = Math.max(1, GROUP_COLUMNS / ohw);
        par.parallelFor((n + group - 1) / group, 1, (lo, hi) -> {
            Scratch s = scratch.get();
            float[] col = s.col(ckk * group * ohw);
            float[] out = s.wideRows(oc * group * ohw);
            for (int gr = lo; gr < hi; gr++) {
                int first = gr * group;
                int count = Math.min(group, n - first);
                int cols = count * ohw;
                for (int k = 0; k < count; k++) {
                    im2colRows(g, x, (first + k) * inImage, col, k * ohw, cols);
                }
                Sgemm.gemm(false, false, oc, cols, ckk, 1f, w, 0, ckk, col, 0, cols, 0f, out, 0, cols, s);
                for (int k = 0; k < count; k++) {
                    for (int o = 0; o < oc; o++) {
                        int src = o * cols + k * ohw;
                        int dst = ((first + k) * oc + o) * ohw;
                        if (bias == null) {
                            System.arraycopy(out, src, y, dst, ohw);
                        } else {
                            float bv = bias[o];
                            for (int j = 0; j < ohw; j++) {
                                y[dst + j] = out[src + j] + bv;
                            }
                        }
                    }
                }
            }
        });
    }

    /**
     * {@link #backwardDataCol2im} on groups of images: their dY rows side by side ({@code OC x G*OH*OW}), one GEMM with
     * the weights transposed, then col2im per image. Every input gradient is the same sum as through
     * {@link #backwardDataCol2im}.
     */
    static void backwardDataGrouped(ConvGeometry g, float[] w, float[] dy, float[] dx, Parallel par,
                                    Supplier<Scratch> scratch) {
        int ckk = g.inChannels() * g.kernelH() * g.kernelW();
        int ohw = g.outH() * g.outW();
        int oc = g.outChannels();
        int inImage = g.inChannels() * g.inH() * g.inW();
        int n = g.n();
        int group = Math.max(1, GROUP_COLUMNS / ohw);
        par.parallelFor((n + group - 1) / group, 1, (lo, hi) -> {
            Scratch s = scratch.get();
            float[] col = s.col(ckk * group * ohw);
            float[] rows = s.wideRows(oc * group * ohw);
            for (int gr = lo; gr < hi; gr++) {
                int first = gr * group;
                int count = Math.min(group, n - first);
                int cols = count * ohw;
                for (int k = 0; k < count; k++) {
                    for (int o = 0; o < oc; o++) {
                        System.arraycopy(dy, ((first + k) * oc + o) * ohw, rows, o * cols + k * ohw, ohw);
                    }
                }
                Sgemm.gemm(true, false, ckk, cols, oc, 1f, w, 0, ckk, rows, 0, cols, 0f, col, 0, cols, s);
                for (int k = 0; k < count; k++) {
                    int dxo = (first + k) * inImage;
                    Arrays.fill(dx, dxo, dxo + inImage, 0f);
                    col2im(g, col, k * ohw, cols, dx, dxo);
                }
            }
        });
    }

    /**
     * {@link #forwardIm2col} on wide positions ({@link #wide}): the lowered row of window tap {@code (c, ky, kx)} is
     * one contiguous run of the input plane from offset {@code ky*IW + kx}, so im2col is one copy per row instead of
     * {@code OH}; the GEMM computes the few positions between output rows too, which are dropped when the outputs are
     * copied out. Every output is the same sum as through {@link #im2col}.
     */
    static void forwardWide(ConvGeometry g, float[] x, float[] w, float[] bias, float[] y, Parallel par,
                            Supplier<Scratch> scratch) {
        int cin = g.inChannels();
        int kh = g.kernelH(), kw = g.kernelW();
        int ckk = cin * kh * kw;
        int oh = g.outH(), ow = g.outW(), ohw = oh * ow;
        int iw = g.inW(), plane = g.inH() * iw;
        int oc = g.outChannels();
        int inImage = cin * plane;
        // wide positions up to the last output; tap offset + t <= plane, so every run stays inside its plane
        int t = (oh - 1) * iw + ow;
        int n = g.n();
        // WIDE_GROUP images side by side in one GEMM: fewer column tails (LeNet's t = 136 leaves 8 of a 32-wide
        // block; four images fill 17 blocks exactly) and a quarter of the calls
        int groups = (n + WIDE_GROUP - 1) / WIDE_GROUP;
        par.parallelFor(groups, 1, (lo, hi) -> {
            Scratch s = scratch.get();
            float[] col = s.col(ckk * t * WIDE_GROUP);
            float[] out = s.wideRows(oc * t * WIDE_GROUP);
            for (int gr = lo; gr < hi; gr++) {
                int first = gr * WIDE_GROUP;
                int count = Math.min(WIDE_GROUP, n - first);
                int cols = count * t;
                for (int k = 0; k < count; k++) {
                    int xo = (first + k) * inImage;
                    for (int c = 0, r = 0; c < cin; c++) {
                        for (int ky = 0; ky < kh; ky++) {
                            for (int kx = 0; kx < kw; kx++, r++) {
                                System.arraycopy(x, xo + c * plane + ky * iw + kx, col, r * cols + k * t, t);
                            }
                        }
                    }
                }
                Sgemm.gemm(false, false, oc, cols, ckk, 1f, w, 0, ckk, col, 0, cols, 0f, out, 0, cols, s);
                for (int k = 0; k < count; k++) {
                    int yo = (first + k) * oc * ohw;
                    for (int o = 0; o < oc; o++) {
                        float bv = bias == null ? 0f : bias[o];
                        for (int oy = 0; oy < oh; oy++) {
                            int src = o * cols + k * t + oy * iw;
                            int dst = yo + o * ohw + oy * ow;
                            if (bias == null) {
                                System.arraycopy(out, src, y, dst, ow);
                            } else {
                                for (int ox = 0; ox < ow; ox++) {
                                    y[dst + ox] = out[src + ox] + bv;
                                }
                            }
                        }
                    }
                }
            }
        });
    }

    /** Images per GEMM in {@link #forwardWide}. */
    static final int WIDE_GROUP = 4;

    static void forwardIm2col(ConvGeometry g, float[] x, float[] w, float[] bias, float[] y,
                              Parallel par, Supplier<Scratch> scratch) {
        int ckk = g.inChannels() * g.kernelH() * g.kernelW();
        int ohw = g.outH() * g.outW();
        int oc = g.outChannels();
        int inImage = g.inChannels() * g.inH() * g.inW();
        boolean pw = pointwise(g);
        par.parallelFor(g.n(), 1, (lo, hi) -> {
            Scratch s = scratch.get();
            float[] col = pw ? null : s.col(ckk * ohw);
            for (int img = lo; img < hi; img++) {
                int yo = img * oc * ohw;
                if (pw) {
                    Sgemm.gemm(false, false, oc, ohw, ckk, 1f, w, 0, ckk, x, img * inImage, ohw, 0f, y, yo, ohw, s);
                } else {
                    im2col(g, x, img * inImage, col);
                    Sgemm.gemm(false, false, oc, ohw, ckk, 1f, w, 0, ckk, col, 0, ohw, 0f, y, yo, ohw, s);
                }
                if (bias != null) {
                    for (int c = 0; c < oc; c++) {
                        float bv = bias[c];
                        int o = yo + c * ohw;
                        for (int j = 0; j < ohw; j++) {
                            y[o + j] += bv;
                        }
                    }
                }
            }
        });
    }

    /**
     * Stride 1, no padding or dilation: a window row {@code (c, ky, kx)} of the lowered matrix lands in the input plane
     * at the fixed offset {@code ky*IW + kx} when positions are counted on the input's row width ("wide" positions
     * {@code oy*IW + ox'}, with {@code ox' >= OW} zero), so the adjoint of im2col needs no scatter
     * ({@link VectorConv#backwardDataWide}).
     */
    static boolean wide(ConvGeometry g) {
        return g.strideH() == 1 && g.strideW() == 1 && g.padH() == 0 && g.padW() == 0 && g.dilationH() == 1
                && g.dilationW() == 1 && g.outW() < g.inW() && !pointwise(g);
    }

    static void backwardData(ConvGeometry g, float[] w, float[] dy, float[] dx, Parallel par, Supplier<Scratch> scratch) {
        if (SimdSupport.ENABLED && wide(g)) {
            VectorConv.backwardDataWide(g, w, dy, dx, par, scratch);
            return;
        }
        if (SimdSupport.ENABLED && ImplicitConv.fitsBackwardData(g)) {
            ImplicitConv.backwardData(g, w, dy, dx, par, scratch);
            return;
        }
        if (SimdSupport.ENABLED && smallPlanes(g)) {
            backwardDataGrouped(g, w, dy, dx, par, scratch);
            return;
        }
        backwardDataCol2im(g, w, dy, dx, par, scratch);
    }

    static void backwardDataCol2im(ConvGeometry g, float[] w, float[] dy, float[] dx, Parallel par,
                                   Supplier<Scratch> scratch) {
        int ckk = g.inChannels() * g.kernelH() * g.kernelW();
        int ohw = g.outH() * g.outW();
        int oc = g.outChannels();
        int inImage = g.inChannels() * g.inH() * g.inW();
        boolean pw = pointwise(g);
        par.parallelFor(g.n(), 1, (lo, hi) -> {
            Scratch s = scratch.get();
            float[] col = pw ? null : s.col(ckk * ohw);
            for (int img = lo; img < hi; img++) {
                int dyo = img * oc * ohw;
                int dxo = img * inImage;
                if (pw) {
                    Sgemm.gemm(true, false, ckk, ohw, oc, 1f, w, 0, ckk, dy, dyo, ohw, 0f, dx, dxo, ohw, s);
                } else {
                    Sgemm.gemm(true, false, ckk, ohw, oc, 1f, w, 0, ckk, dy, dyo, ohw, 0f, col, 0, ohw, s);
                    Arrays.fill(dx, dxo, dxo + inImage, 0f);
                    col2im(g, col, dx, dxo);
                }
            }
        });
    }

    /**
     * dW = sum over images of dY[i] * col[i]^T. Images are split into a number of chunks that depends only on the
     * batch size, each chunk accumulates its own partial dW, and the partials are summed in chunk order: the result
     * is identical for every thread count.
     */
    static void backwardWeight(ConvGeometry g, float[] x, float[] dy, float[] dw, Parallel par, Supplier<Scratch> scratch) {
        int ckk = g.inChannels() * g.kernelH() * g.kernelW();
        int ohw = g.outH() * g.outW();
        int oc = g.outChannels();
        int inImage = g.inChannels() * g.inH() * g.inW();
        int wl = oc * ckk;
        boolean pw = pointwise(g);
        int n = g.n();
        // at least 8 images per chunk (each chunk clears and reduces one set of lanes), at most 16 chunks; the count
        // depends on the batch size only, so the summation order does not depend on the thread count
        int chunks = Math.max(1, Math.min(16, n / 8));
        float[] partial = chunks == 1 ? dw : scratch.get().partial(chunks * wl);
        if (SimdSupport.ENABLED && VectorConv.fits(g)) {
            VectorConv.weightGradient(g, x, dy, partial, chunks, par, scratch);
        } else if (SimdSupport.ENABLED && wide(g)) {
            backwardWeightWide(g, x, dy, partial, chunks, par, scratch);
        } else if (SimdSupport.ENABLED && ImplicitConv.fitsWeightGradient(g)) {
            // sums its chunks itself
            ImplicitConv.weightGradient(g, x, dy, dw, partial, chunks, par, scratch);
            return;
        } else if (SimdSupport.ENABLED && weightGradientAsGemm(g)) {
            backwardWeightGemm(g, x, dy, partial, chunks, par, scratch);
        } else if (SimdSupport.ENABLED) {
            backwardWeightSimd(g, x, dy, partial, chunks, par, scratch);
        } else {
            backwardWeightScalar(g, x, dy, partial, chunks, par, scratch);
        }
        if (chunks > 1) {
            sumChunks(partial, chunks, wl, dw, par);
        }
    }

    /**
     * {@code dw[i] = sum over chunks of partial[ch * wl + i]}, in chunk order, in float: chunk by chunk over blocks of
     * weights, so each pass is a contiguous add that C2 vectorises (a double sum per weight, chunk by chunk down a
     * column, took a sixth of layer3's weight-gradient time). The order does not depend on the thread count.
     */
    static void sumChunks(float[] partial, int chunks, int wl, float[] dw, Parallel par) {
        int block = 1024;
        int blocks = (wl + block - 1) / block;
        par.parallelFor(blocks, 8, (lo, hi) -> {
            for (int b = lo; b < hi; b++) {
                int from = b * block;
                int to = Math.min(wl, from + block);
                System.arraycopy(partial, from, dw, from, to - from);
                for (int ch = 1; ch < chunks; ch++) {
                    int o = ch * wl;
                    for (int i = from; i < to; i++) {
                        dw[i] += partial[o + i];
                    }
                }
            }
        });
    }

    /**
     * Each chunk keeps vector lanes per weight over all its images ({@link VectorSgemm#dotAccumulate}: dY rows against
     * im2col rows, both contiguous along the output positions, padded with zeros to whole vectors), then sums the lanes
     * once. No operand is transposed or packed.
     */
    static void backwardWeightSimd(ConvGeometry g, float[] x, float[] dy, float[] partial, int chunks,
                                           Parallel par, Supplier<Scratch> scratch) {
        int ckk = g.inChannels() * g.kernelH() * g.kernelW();
        int ohw = g.outH() * g.outW();
        int oc = g.outChannels();
        int inImage = g.inChannels() * g.inH() * g.inW();
        int wl = oc * ckk;
        int lanesPerVector = VectorSgemm.L;
        int ld = (ohw + lanesPerVector - 1) / lanesPerVector * lanesPerVector;
        boolean direct = pointwise(g) && ld == ohw;
        int n = g.n();
        par.parallelFor(chunks, 1, (lo, hi) -> {
            Scratch s = scratch.get();
            float[] col = direct ? null : s.col(ckk * ld);
            float[] dyRows = ld == ohw ? null : s.paddedRows(oc * ld);
            float[] lanes = s.vectorLanes(wl * lanesPerVector);
            for (int ch = lo; ch < hi; ch++) {
                int first = (int) ((long) n * ch / chunks);
                int last = (int) ((long) n * (ch + 1) / chunks);
                Arrays.fill(lanes, 0, wl * lanesPerVector, 0f);
                for (int img = first; img < last; img++) {
                    float[] src = x;
                    int srcOff = img * inImage;
                    if (!direct) {
                        im2col(g, x, srcOff, col, ld);
                        src = col;
                        srcOff = 0;
                    }
                    float[] grad = dy;
                    int gradOff = img * oc * ohw;
                    if (dyRows != null) {
                        for (int o = 0; o < oc; o++) {
                            System.arraycopy(dy, gradOff + o * ohw, dyRows, o * ld, ohw);
                            Arrays.fill(dyRows, o * ld + ohw, (o + 1) * ld, 0f);
                        }
                        grad = dyRows;
                        gradOff = 0;
                    }
                    VectorSgemm.dotAccumulate(oc, ckk, ld, grad, gradOff, ld, src, srcOff, ld, lanes);
                }
                VectorSgemm.reduceLanes(lanes, wl, partial, chunks == 1 ? 0 : ch * wl);
            }
        });
    }

    /** Floats of lane accumulators ({@link #backwardWeightSimd}: L per weight) that still stay in the L2 cache. */
    static final int LANE_FLOATS_IN_CACHE = 64 * 1024;

    /** Depth (images x output positions) of one GEMM in {@link #backwardWeightGemm}: one {@link VectorSgemm#KC} pass. */
    static final int GEMM_DEPTH = VectorSgemm.KC;

    /**
     * Many weights (ResNet's 3x3 convolutions from 32 channels on): {@link #backwardWeightSimd}'s lane accumulators
     * would outgrow the cache and be streamed through memory once per image.
     */
    static boolean weightGradientAsGemm(ConvGeometry g) {
        long weights = (long) g.outChannels() * g.inChannels() * g.kernelH() * g.kernelW();
        return weights * VectorSgemm.L > LANE_FLOATS_IN_CACHE;
    }

    /**
     * Each chunk's dW as GEMMs over groups of images laid side by side along the depth: the group's dY rows
     * ({@code OC x G*OH*OW}) times its im2col matrices ({@code C*KH*KW x G*OH*OW}) transposed, added into the chunk's
     * partial. The C of these GEMMs is the weight gradient itself ({@code OC x C*KH*KW}, in cache), and the group fills
     * one depth pass even when the planes are small (7x7). The groups depend on the batch size and geometry only, so
     * the result is the same for every thread count.
     */
    static void backwardWeightGemm(ConvGeometry g, float[] x, float[] dy, float[] partial, int chunks, Parallel par,
                                   Supplier<Scratch> scratch) {
        int ckk = g.inChannels() * g.kernelH() * g.kernelW();
        int ohw = g.outH() * g.outW();
        int oc = g.outChannels();
        int inImage = g.inChannels() * g.inH() * g.inW();
        int wl = oc * ckk;
        int group = Math.max(1, GEMM_DEPTH / ohw);
        int n = g.n();
        par.parallelFor(chunks, 1, (lo, hi) -> {
            Scratch s = scratch.get();
            float[] col = s.col(ckk * group * ohw);
            float[] dyRows = s.wideRows(oc * group * ohw);
            for (int ch = lo; ch < hi; ch++) {
                int first = (int) ((long) n * ch / chunks);
                int last = (int) ((long) n * (ch + 1) / chunks);
                int po = chunks == 1 ? 0 : ch * wl;
                if (first == last) {
                    Arrays.fill(partial, po, po + wl, 0f);
                }
                for (int img0 = first; img0 < last; img0 += group) {
                    int count = Math.min(group, last - img0);
                    int depth = count * ohw;
                    for (int k = 0; k < count; k++) {
                        int img = img0 + k;
                        im2colRows(g, x, img * inImage, col, k * ohw, depth);
                        for (int o = 0; o < oc; o++) {
                            System.arraycopy(dy, (img * oc + o) * ohw, dyRows, o * depth + k * ohw, ohw);
                        }
                    }
                    Sgemm.gemm(false, true, oc, ckk, depth, 1f, dyRows, 0, depth, col, 0, depth,
                            img0 == first ? 0f : 1f, partial, po, ckk, s);
                }
            }
        });
    }

    /**
     * {@link #backwardWeightSimd} on wide positions ({@link #wide}): the lowered row of window tap {@code (c, ky, kx)}
     * is the input plane itself from offset {@code ky*IW + kx}, so it is read in place from a copy of the image (with
     * a zero tail for the last rows' overrun) instead of being built by im2col; dY's rows are spread to the input's
     * row width with zeros between them, which zeroes the products at positions that are not outputs.
     */
    static void backwardWeightWide(ConvGeometry g, float[] x, float[] dy, float[] partial, int chunks, Parallel par,
                                   Supplier<Scratch> scratch) {
        int cin = g.inChannels();
        int kh = g.kernelH(), kw = g.kernelW();
        int ckk = cin * kh * kw;
        int oh = g.outH(), ow = g.outW(), ohw = oh * ow;
        int ih = g.inH(), iw = g.inW(), plane = ih * iw;
        int oc = g.outChannels();
        int inImage = cin * plane;
        int wl = oc * ckk;
        int lanesPerVector = VectorSgemm.L;
        int t = (oh - 1) * iw + ow;
        int ld = (t + lanesPerVector - 1) / lanesPerVector * lanesPerVector;
        int[] rows = new int[ckk];
        int maxOffset = 0;
        for (int c = 0, r = 0; c < cin; c++) {
            for (int ky = 0; ky < kh; ky++) {
                for (int kx = 0; kx < kw; kx++, r++) {
                    rows[r] = c * plane + ky * iw + kx;
                    maxOffset = Math.max(maxOffset, rows[r]);
                }
            }
        }
        int imageLength = Math.max(inImage, maxOffset + ld);
        int n = g.n();
        par.parallelFor(chunks, 1, (lo, hi) -> {
            Scratch s = scratch.get();
            float[] image = s.col(imageLength);
            float[] dyRows = s.wideRows(oc * ld);
            float[] lanes = s.vectorLanes(wl * lanesPerVector);
            Arrays.fill(image, inImage, imageLength, 0f);
            for (int o = 0; o < oc; o++) {
                Arrays.fill(dyRows, o * ld, (o + 1) * ld, 0f);
            }
            for (int ch = lo; ch < hi; ch++) {
                int first = (int) ((long) n * ch / chunks);
                int last = (int) ((long) n * (ch + 1) / chunks);
                Arrays.fill(lanes, 0, wl * lanesPerVector, 0f);
                for (int img = first; img < last; img++) {
                    System.arraycopy(x, img * inImage, image, 0, inImage);
                    int gradOff = img * oc * ohw;
                    for (int o = 0; o < oc; o++) {
                        for (int oy = 0; oy < oh; oy++) {
                            // the gaps between rows stay zero from the fill above
                            System.arraycopy(dy, gradOff + (o * oh + oy) * ow, dyRows, o * ld + oy * iw, ow);
                        }
                    }
                    VectorSgemm.dotAccumulateRows(oc, ckk, ld, dyRows, 0, ld, image, rows, lanes);
                }
                VectorSgemm.reduceLanes(lanes, wl, partial, chunks == 1 ? 0 : ch * wl);
            }
        });
    }

    static void backwardWeightScalar(ConvGeometry g, float[] x, float[] dy, float[] partial, int chunks,
                                             Parallel par, Supplier<Scratch> scratch) {
        int ckk = g.inChannels() * g.kernelH() * g.kernelW();
        int ohw = g.outH() * g.outW();
        int oc = g.outChannels();
        int inImage = g.inChannels() * g.inH() * g.inW();
        int wl = oc * ckk;
        boolean pw = pointwise(g);
        int n = g.n();
        par.parallelFor(chunks, 1, (lo, hi) -> {
            Scratch s = scratch.get();
            float[] col = pw ? null : s.col(ckk * ohw);
            for (int ch = lo; ch < hi; ch++) {
                int first = (int) ((long) n * ch / chunks);
                int last = (int) ((long) n * (ch + 1) / chunks);
                int po = chunks == 1 ? 0 : ch * wl;
                if (Sgemm.lanesFit(oc, ckk)) {
                    // few outputs, long depth: lane accumulators over every image of the chunk, reduced once
                    float[][] acc = s.lanes(wl);
                    Sgemm.zeroLanes(acc, wl);
                    for (int img = first; img < last; img++) {
                        float[] src = x;
                        int srcOff = img * inImage;
                        if (!pw) {
                            im2col(g, x, srcOff, col);
                            src = col;
                            srcOff = 0;
                        }
                        Sgemm.dotLanes(oc, ckk, ohw, dy, img * oc * ohw, ohw, src, srcOff, ohw, acc, s);
                    }
                    Sgemm.reduceLanes(acc, wl, partial, po);
                    continue;
                }
                for (int img = first; img < last; img++) {
                    float beta = img == first ? 0f : 1f;
                    float[] src = x;
                    int srcOff = img * inImage;
                    if (!pw) {
                        im2col(g, x, srcOff, col);
                        src = col;
                        srcOff = 0;
                    }
                    Sgemm.gemmScalar(false, true, oc, ckk, ohw, 1f, dy, img * oc * ohw, ohw, src, srcOff, ohw, beta,
                            partial, po, ckk, s);
                }
            }
        });
    }

    /**
     * Parallel over channels; each channel's sum is taken in image order (in float vector lanes flushed to double with
     * the SIMD kernels), so the result is thread-count independent.
     */
    static void backwardBias(ConvGeometry g, float[] dy, float[] db, Parallel par) {
        int ohw = g.outH() * g.outW();
        int oc = g.outChannels();
        par.parallelFor(oc, Math.max(1, 16384 / Math.max(1, g.n() * ohw)), (lo, hi) -> {
            for (int c = lo; c < hi; c++) {
                if (SimdSupport.ENABLED && ohw >= VectorSgemm.L) {
                    db[c] = (float) VectorBatchNorm.channelSum(dy, g.n(), oc, ohw, c);
                    continue;
                }
                double sum = 0;
                for (int img = 0; img < g.n(); img++) {
                    sum += ReductionKernels.sum(dy, (img * oc + c) * ohw, ohw);
                }
                db[c] = (float) sum;
            }
        });
    }

    /** Lowers image {@code x[xo ..]} to {@code col ((C*KH*KW) x (OH*OW))}, zeros where the window leaves the input. */
    static void im2col(ConvGeometry g, float[] x, int xo, float[] col) {
        im2col(g, x, xo, col, g.outH() * g.outW());
    }

    /** {@link #im2col} with rows {@code ld >= OH*OW} floats apart, the {@code ld - OH*OW} floats after each row zero. */
    static void im2col(ConvGeometry g, float[] x, int xo, float[] col, int ld) {
        im2colRows(g, x, xo, col, 0, ld);
        int ohw = g.outH() * g.outW();
        if (ld > ohw) {
            int rows = g.inChannels() * g.kernelH() * g.kernelW();
            for (int r = 0; r < rows; r++) {
                Arrays.fill(col, r * ld + ohw, (r + 1) * ld, 0f);
            }
        }
    }

    /**
     * Lowers image {@code x[xo ..]} into the first {@code OH*OW} floats of rows {@code colOff + r*ld} of {@code col}
     * (several images side by side when {@code ld} spans them), zeros where the window leaves the input.
     */
    static void im2colRows(ConvGeometry g, float[] x, int xo, float[] col, int colOff, int ld) {
        int ih = g.inH(), iw = g.inW(), oh = g.outH(), ow = g.outW();
        int kh = g.kernelH(), kw = g.kernelW(), sh = g.strideH(), sw = g.strideW();
        int ph = g.padH(), pw = g.padW(), dh = g.dilationH(), dw = g.dilationW();
        int row = 0;
        for (int c = 0; c < g.inChannels(); c++) {
            int plane = xo + c * ih * iw;
            for (int ky = 0; ky < kh; ky++) {
                for (int kx = 0; kx < kw; kx++, row++) {
                    int base = colOff + row * ld;
                    int xoff = kx * dw - pw;
                    // valid output columns: 0 <= ox*sw + xoff < iw
                    int oxLo = xoff >= 0 ? 0 : Math.min(ow, (-xoff + sw - 1) / sw);
                    int oxHi = Math.max(oxLo, Math.min(ow, iw - xoff <= 0 ? 0 : (iw - xoff - 1) / sw + 1));
                    for (int oy = 0; oy < oh; oy++) {
                        int y = oy * sh - ph + ky * dh;
                        int o = base + oy * ow;
                        if (y < 0 || y >= ih) {
                            Arrays.fill(col, o, o + ow, 0f);
                            continue;
                        }
                        for (int ox = 0; ox < oxLo; ox++) {
                            col[o + ox] = 0f;
                        }
                        int src = plane + y * iw + xoff;
                        if (sw == 1) {
                            System.arraycopy(x, src + oxLo, col, o + oxLo, oxHi - oxLo);
                        } else {
                            for (int ox = oxLo; ox < oxHi; ox++) {
                                col[o + ox] = x[src + ox * sw];
                            }
                        }
                        for (int ox = oxHi; ox < ow; ox++) {
                            col[o + ox] = 0f;
                        }
                    }
                }
            }
        }
    }

    /** Adds {@code col ((C*KH*KW) x (OH*OW))} back into image {@code dx[dxo ..]} (the adjoint of im2col). */
    static void col2im(ConvGeometry g, float[] col, float[] dx, int dxo) {
        col2im(g, col, 0, g.outH() * g.outW(), dx, dxo);
    }

    /** {@link #col2im} from rows {@code colOff + r*ld} of {@code col} (one image of several side by side). */
    static void col2im(ConvGeometry g, float[] col, int colOff, int ld, float[] dx, int dxo) {
        int ih = g.inH(), iw = g.inW(), oh = g.outH(), ow = g.outW();
        int kh = g.kernelH(), kw = g.kernelW(), sh = g.strideH(), sw = g.strideW();
        int ph = g.padH(), pw = g.padW(), dh = g.dilationH(), dw = g.dilationW();
        int row = 0;
        for (int c = 0; c < g.inChannels(); c++) {
            int plane = dxo + c * ih * iw;
            for (int ky = 0; ky < kh; ky++) {
                for (int kx = 0; kx < kw; kx++, row++) {
                    int base = colOff + row * ld;
                    int xoff = kx * dw - pw;
                    int oxLo = xoff >= 0 ? 0 : Math.min(ow, (-xoff + sw - 1) / sw);
                    int oxHi = Math.max(oxLo, Math.min(ow, iw - xoff <= 0 ? 0 : (iw - xoff - 1) / sw + 1));
                    for (int oy = 0; oy < oh; oy++) {
                        int y = oy * sh - ph + ky * dh;
                        if (y < 0 || y >= ih) {
                            continue;
                        }
                        int o = base + oy * ow;
                        int dst = plane + y * iw + xoff;
                        for (int ox = oxLo; ox < oxHi; ox++) {
                            dx[dst + ox * sw] += col[o + ox];
                        }
                    }
                }
            }
        }
    }
}
