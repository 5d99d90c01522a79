package dev.kiln.cpu;

import dev.kiln.backend.ConvGeometry;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

import java.util.Arrays;
import java.util.function.Supplier;

/**
 * Convolutions with padding and strides (ResNet's 3x3 pad 1, stride 1 and 2, and 1x1 stride-2 shortcuts) as an
 * implicit GEMM on the Vector API, without im2col. Each image is gathered once into a per-thread buffer holding its
 * padded planes split by stride phase ({@code SH x SW} sub-planes per channel of {@code PH x PW}, where padded pixel
 * {@code (y, x)} sits in phase {@code (y % SH, x % SW)} at {@code (y / SH, x / SW)}; at stride 1 across, a row's
 * padding on the right is the next row's on the left, {@link #planeWidth}). On that layout the window tap
 * {@code (c, ky, kx)} of the output at "wide" position {@code p = oy * PW + ox} is the pixel at {@code rows[r] + p}
 * with a fixed offset per tap: the lowered matrix of im2col is read in place, row {@code r} starting at
 * {@code rows[r]}. The {@code PW - OW} positions at the end of each wide row are not outputs; they are computed and
 * dropped (forward), or skipped (weight gradient).
 *
 * <p>Forward: blocks of 8 output channels x 3 vectors of positions in 24 registers over the whole depth, weights
 * packed once per call so each depth step broadcasts 8 consecutive floats. Every output is its taps in {@code (c, ky, kx)}
 * order, one fused multiply-add each starting from zero, then the bias: the same for every thread count and batch
 * split. The input gradient of a stride-1 convolution is this forward on dY with the kernel rotated by 180 degrees and
 * its channel axes swapped (padding {@code K - 1 - P}). The weight gradient accumulates, per chunk of images,
 * {@code dW^T[r][o] += sum_p x[rows[r] + p] * dY[o][p]} (blocks of 8 taps x 2 vectors of output channels in
 * registers, dY transposed per image), or, when the weights are few, vector lanes along the positions
 * ({@link VectorSgemm#dotAccumulateRows}).
 */
final class ImplicitConv {

    private static final VectorSpecies<Float> S = VectorSgemm.SPECIES;
    private static final int L = VectorSgemm.L;
    /** Positions per forward block: two vectors. */
    private static final int NR = 2 * L;
    /** Bytes of a weight-gradient group's gathered images and transposed dY. */
    static final int GROUP_BYTES = 512 * 1024;

    private ImplicitConv() {
    }

    /**
     * Padded or strided, one group, no dilation, a kernel larger than 1x1: the shapes the other SIMD paths do not take
     * ({@link VectorConv} one input channel, {@link Conv2dKernels#wide} stride 1 unpadded). A 1x1 convolution reads
     * each pixel once: its im2col is a plain (strided) copy and the GEMM on it is as fast as this kernel.
     */
    static boolean fits(ConvGeometry g) {
        boolean oneByOne = g.kernelH() == 1 && g.kernelW() == 1;
        return g.groups() == 1 && g.dilationH() == 1 && g.dilationW() == 1 && !oneByOne
                && (g.padH() > 0 || g.padW() > 0 || g.strideH() > 1 || g.strideW() > 1);
    }

    /**
     * The weight gradient ({@link #weightGradient}): what {@link #fits} takes, and strided 1x1 convolutions (ResNet's
     * shortcuts), which read x through the same position map without im2col.
     */
    static boolean fitsWeightGradient(ConvGeometry g) {
        return fits(g) || stridedOneByOne(g);
    }

    private static boolean stridedOneByOne(ConvGeometry g) {
        return g.groups() == 1 && g.dilationH() == 1 && g.dilationW() == 1 && g.kernelH() == 1 && g.kernelW() == 1
                && (g.strideH() > 1 || g.strideW() > 1);
    }

    /**
     * The input gradient as a forward convolution ({@link #backwardData}): stride 1 and padding at most the kernel
     * size less one; or by stride phase ({@link #backwardDataStrided}) when strided.
     */
    static boolean fitsBackwardData(ConvGeometry g) {
        if (!fits(g)) {
            return false;
        }
        boolean strided = g.strideH() > 1 || g.strideW() > 1;
        return strided || g.padH() <= g.kernelH() - 1 && g.padW() <= g.kernelW() - 1;
    }

    /**
     * Width of a plane row of {@link Layout}: at stride 1 across, the input row and one side's padding, since the
     * zeros after a row serve as the padding before the next (a window reaching past the right edge reads the next
     * row's left padding); at stride {@code SW}, a phase's share of the padded row.
     */
    static int planeWidth(ConvGeometry g) {
        return g.strideW() == 1 ? g.inW() + g.padW() : (g.inW() + 2 * g.padW() + g.strideW() - 1) / g.strideW();
    }

    /** Wide positions up to the last output: {@code (OH - 1) * PW + OW}. */
    static int widePositions(ConvGeometry g) {
        return (g.outH() - 1) * planeWidth(g) + g.outW();
    }

    /** The layout of {@code g}, from the calling thread's scratch when that thread built it before. */
    static Layout layout(Supplier<Scratch> scratch, ConvGeometry g, int readable) {
        return scratch.get().plan(new Scratch.PlanKey("ImplicitConv", g, readable), k -> new Layout(g, readable));
    }

    /**
     * Geometry of the phase-split padded layout of one image and the tap offsets on it. Immutable once the calling
     * thread has asked for what a kernel needs ({@link #tapRows}, {@link #imagePositions}) before handing it to the
     * workers.
     */
    static final class Layout {
        final int cin, ih, iw, ph, pw, sh, sw, oh, ow;
        /** Phase plane height and width (PW is the wide row length). */
        final int planeH, planeW;
        final int planeSize, channelStride;
        /** Offset of tap r = (c, ky, kx) for wide position 0. */
        final int[] rows;
        /** Wide positions up to the last output. */
        final int wide;
        /** Floats of the buffer: every tap's row readable for {@code readable} positions. */
        final int length;
        final int readable;
        /**
         * Where input row y starts in its channel's phase planes (-1: no tap reads its phase, as three of a 1x1
         * stride-2 convolution's four), and per column phase b the first input column, the count and the offset in
         * the row's planes.
         */
        final int[] rowTarget, columnFirst, columnCount, columnTarget;
        /** The column phase of input column 0. */
        final int evenPhase;
        /**
         * Strided layouts whose taps read every phase, unless their rows are split by {@link PhaseSplit}: the offset of
         * each pixel of a channel from the channel's first float (other strided layouts go row by row, leaving the
         * phases no tap reads at zero).
         */
        private final int[] scatter;
        /** Rows split by column phase with {@link PhaseSplit} (stride 2 across, rows of a vector or more). */
        private final boolean splitRows;

        Layout(ConvGeometry g, int readable) {
            splitRows = g.strideW() == 2 && PhaseSplit.splits(g.inW());
            cin = g.inChannels();
            ih = g.inH();
            iw = g.inW();
            ph = g.padH();
            pw = g.padW();
            sh = g.strideH();
            sw = g.strideW();
            oh = g.outH();
            ow = g.outW();
            int kh = g.kernelH(), kw = g.kernelW();
            planeH = (ih + 2 * ph + sh - 1) / sh;
            planeW = planeWidth(g);
            planeSize = planeH * planeW;
            channelStride = sh * sw * planeSize;
            rows = new int[cin * kh * kw];
            int maxRow = 0;
            for (int c = 0, r = 0; c < cin; c++) {
                for (int ky = 0; ky < kh; ky++) {
                    for (int kx = 0; kx < kw; kx++, r++) {
                        rows[r] = c * channelStride + ((ky % sh) * sw + kx % sw) * planeSize
                                + (ky / sh) * planeW + kx / sw;
                        maxRow = Math.max(maxRow, rows[r]);
                    }
                }
            }
            wide = (oh - 1) * planeW + ow;
            boolean[] rowPhaseUsed = new boolean[sh];
            boolean[] columnPhaseUsed = new boolean[sw];
            for (int ky = 0; ky < kh; ky++) {
                rowPhaseUsed[ky % sh] = true;
            }
            for (int kx = 0; kx < kw; kx++) {
                columnPhaseUsed[kx % sw] = true;
            }
            rowTarget = new int[ih];
            for (int y = 0; y < ih; y++) {
                int yp = y + ph;
                rowTarget[y] = rowPhaseUsed[yp % sh] ? (yp % sh) * sw * planeSize + (yp / sh) * planeW : -1;
            }
            evenPhase = pw % sw;
            columnFirst = new int[sw];
            columnCount = new int[sw];
            columnTarget = new int[sw];
            for (int b = 0; b < sw; b++) {
                // first column of phase b: (x + pw) % sw == b
                int x0 = Math.floorMod(b - pw, sw);
                columnFirst[b] = x0;
                columnCount[b] = columnPhaseUsed[b] && x0 < iw ? (iw - x0 + sw - 1) / sw : 0;
                columnTarget[b] = b * planeSize + (x0 + pw) / sw;
            }
            this.readable = readable;
            // at stride 1 across, the last row's padding after it is the zeros past the last channel
            length = Math.max(cin * channelStride + (sw == 1 ? pw : 0), maxRow + readable);
            boolean everyPhase = true;
            for (boolean used : rowPhaseUsed) {
                everyPhase &= used;
            }
            for (boolean used : columnPhaseUsed) {
                everyPhase &= used;
            }
            if ((sh > 1 || sw > 1) && everyPhase && !splitRows) {
                scatter = new int[ih * iw];
                for (int y = 0, i = 0; y < ih; y++) {
                    for (int x = 0; x < iw; x++, i++) {
                        int b = (x + pw) % sw;
                        scatter[i] = rowTarget[y] + columnTarget[b] + (x - columnFirst[b]) / sw;
                    }
                }
            } else {
                scatter = null;
            }
        }

        private int[] tapRows;

        /** {@link #rows} padded to {@code count} with offset 0 (a valid index whose sums are dropped). */
        int[] tapRows(int count) {
            if (tapRows == null || tapRows.length != count) {
                tapRows = Arrays.copyOf(rows, count);
            }
            return tapRows;
        }

        private int[] imagePositions;
        private int positionsStrideH, positionsStrideW, positionsHeight, positionsWidth;

        /**
         * Where output {@code (oy, ox)} of image {@code i} of a group reads this layout, at {@code i * OH * OW + oy * OW
         * + ox}: {@code i * length + (oy * strideH) * PW + ox * strideW}, for {@code images} images side by side (a
         * strided convolution read on the layout of its stride-1 twin, as the weight gradient reads it).
         */
        int[] imagePositions(int strideH, int strideW, int outH, int outW, int images) {
            int count = images * outH * outW;
            if (imagePositions == null || imagePositions.length != count || positionsStrideH != strideH
                    || positionsStrideW != strideW || positionsHeight != outH || positionsWidth != outW) {
                imagePositions = new int[count];
                for (int i = 0, q = 0; i < images; i++) {
                    for (int oy = 0; oy < outH; oy++) {
                        for (int ox = 0; ox < outW; ox++, q++) {
                            imagePositions[q] = i * length + oy * strideH * planeW + ox * strideW;
                        }
                    }
                }
                positionsStrideH = strideH;
                positionsStrideW = strideW;
                positionsHeight = outH;
                positionsWidth = outW;
            }
            return imagePositions;
        }

        /** Zeros the whole buffer: padding and margins are never written by {@link #gather}. */
        void clear(float[] xp) {
            Arrays.fill(xp, 0, length, 0f);
        }

        /** Writes image {@code x[xo ..]}'s pixels that some tap reads into their places in {@code xp}. */
        void gather(float[] x, int xo, float[] xp) {
            gather(x, xo, xp, 0);
        }

        /** {@link #gather(float[], int, float[])} into the layout starting at {@code xp[base]}. */
        void gather(float[] x, int xo, float[] xp, int base) {
            if (scatter != null) {
                // strided: one pass over each channel through the pixel map, without a loop per row and phase (rows of
                // 14 or 28 pixels split by phase spent most of their time in loop entry and exit)
                int ihw = ih * iw;
                for (int c = 0; c < cin; c++) {
                    int src = xo + c * ihw;
                    int dst = base + c * channelStride;
                    for (int i = 0; i < ihw; i++) {
                        xp[dst + scatter[i]] = x[src + i];
                    }
                }
                return;
            }
            for (int c = 0; c < cin; c++) {
                int src = xo + c * ih * iw;
                int dst = base + c * channelStride;
                for (int y = 0; y < ih; y++) {
                    int rowBase = rowTarget[y];
                    if (rowBase < 0) {
                        continue;
                    }
                    rowBase += dst;
                    int s = src + y * iw;
                    if (sw == 1) {
                        copyRow(x, s, xp, rowBase + pw, iw, false, 0f);
                        continue;
                    }
                    if (sw == 2 && columnCount[0] > 0 && columnCount[1] > 0) {
                        // both column phases at once: input columns 2j and 2j+1 go to the two phase rows
                        int de = rowBase + columnTarget[evenPhase];
                        int dn = rowBase + columnTarget[1 - evenPhase];
                        // the vector split writes zeros past each run: padding, or later rows of the same plane
                        // (written after this one), as long as it stays in the plane
                        int planes = dst + (y + ph) % sh * sw * planeSize;
                        int extent = PhaseSplit.splitExtent(iw);
                        if (splitRows && de + extent <= planes + (evenPhase + 1) * planeSize
                                && dn + extent <= planes + (2 - evenPhase) * planeSize) {
                            PhaseSplit.split(x, s, iw, xp, de, dn);
                            continue;
                        }
                        int pairs = iw / 2;
                        for (int j = 0; j < pairs; j++) {
                            xp[de + j] = x[s + 2 * j];
                            xp[dn + j] = x[s + 2 * j + 1];
                        }
                        if ((iw & 1) != 0) {
                            xp[de + pairs] = x[s + iw - 1];
                        }
                        continue;
                    }
                    for (int b = 0; b < sw; b++) {
                        int count = columnCount[b];
                        int d = rowBase + columnTarget[b];
                        int from = s + columnFirst[b];
                        for (int j = 0; j < count; j++) {
                            xp[d + j] = x[from + j * sw];
                        }
                    }
                }
            }
        }
    }

    // ---------------------------------------------------------------- forward

    /** The forward of a {@link #fits} geometry, on the stacked layout where that {@link StackedConv#pays}. */
    static void forward(ConvGeometry g, float[] x, float[] w, float[] bias, float[] y, Parallel par,
                        Supplier<Scratch> scratch) {
        forward(g, x, w, bias, y, par, scratch, StackedConv.fits(g) && StackedConv.pays(g, scratch));
    }

    /** {@link #forward} on {@link StackedConv}'s layout or ({@code stacked} false) the padded one. */
    static void forward(ConvGeometry g, float[] x, float[] w, float[] bias, float[] y, Parallel par,
                        Supplier<Scratch> scratch, boolean stacked) {
        int oc = g.outChannels();
        int k = g.inChannels() * g.kernelH() * g.kernelW();
        float[] packed = scratch.get().packedWeights(packedLength(oc, k));
        pack(w, oc, k, packed, 0);
        if (stacked) {
            StackedConv.forwardPacked(g, packed, oc, k, bias, x, y, par, scratch);
            return;
        }
        Layout lay = layout(scratch, g, positionsComputed(widePositions(g), oc));
        forwardPacked(g.n(), lay, packed, oc, k, bias, x, y, par, scratch);
    }

    /**
     * Input gradient of a {@link #fitsBackwardData} convolution: the forward convolution of dY ({@code OC} channels,
     * {@code OH x OW}) with {@code W'[c][o][ky][kx] = W[o][c][KH-1-ky][KW-1-kx]} and padding {@code K - 1 - P}, whose
     * output is {@code C x IH x IW}. Each input gradient is its {@code (o, ky, kx)} terms in that order.
     */
    static void backwardData(ConvGeometry g, float[] w, float[] dy, float[] dx, Parallel par,
                             Supplier<Scratch> scratch) {
        backwardData(g, w, dy, dx, par, scratch, null);
    }

    /**
     * {@link #backwardData}, at stride 1 on {@link StackedConv}'s layout ({@code stacked} true, where it fits), the
     * padded one (false), or whichever {@link StackedConv#pays} (null).
     */
    static void backwardData(ConvGeometry g, float[] w, float[] dy, float[] dx, Parallel par,
                             Supplier<Scratch> scratch, Boolean stacked) {
        if (g.strideH() > 1 || g.strideW() > 1) {
            backwardDataStrided(g, w, dy, dx, par, scratch);
            return;
        }
        int cin = g.inChannels(), oc = g.outChannels(), kh = g.kernelH(), kw = g.kernelW();
        ConvGeometry t = new ConvGeometry(g.n(), oc, g.outH(), g.outW(), cin, kh, kw, 1, 1,
                kh - 1 - g.padH(), kw - 1 - g.padW(), 1, 1);
        int kk = kh * kw;
        int k = oc * kk;
        Scratch caller = scratch.get();
        float[] rotated = caller.arrangedWeights(cin * k);
        for (int o = 0; o < oc; o++) {
            for (int c = 0; c < cin; c++) {
                int src = (o * cin + c) * kk;
                int dst = (c * oc + o) * kk;
                for (int i = 0; i < kk; i++) {
                    rotated[dst + i] = w[src + kk - 1 - i];
                }
            }
        }
        float[] packed = caller.packedWeights(packedLength(cin, k));
        pack(rotated, cin, k, packed, 0);
        if (StackedConv.fits(t) && (stacked == null ? StackedConv.pays(t, scratch) : stacked)) {
            StackedConv.forwardPacked(t, packed, cin, k, null, dy, dx, par, scratch);
            return;
        }
        Layout lay = layout(scratch, t, positionsComputed(widePositions(t), cin));
        forwardPacked(g.n(), lay, packed, cin, k, null, dy, dx, par, scratch);
    }

    /**
     * Input gradient of a strided convolution, one stride phase of dX at a time: the input pixels {@code (y, x)} with
     * {@code (y + PH) % SH == a} and {@code (x + PW) % SW == b} receive only the taps {@code ky = a + SH*m},
     * {@code kx = b + SW*n}, from {@code dY[o][i - m][j - n]} where {@code i = (y + PH) / SH}, {@code j = (x + PW) / SW}:
     * a stride-1 correlation of dY (padded once per image) with that phase's sub-kernel, the implicit GEMM of
     * {@link #forward} with rows {@code (o, m, n)}. Each input gradient is its terms in {@code (o, m, n)} order, so the
     * result does not depend on the thread count; a phase that no tap reaches (a kernel smaller than the stride) is
     * zero.
     */
    static void backwardDataStrided(ConvGeometry g, float[] w, float[] dy, float[] dx, Parallel par,
                                    Supplier<Scratch> scratch) {
        int cin = g.inChannels(), oc = g.outChannels(), kh = g.kernelH(), kw = g.kernelW();
        int sh = g.strideH(), sw = g.strideW(), ph = g.padH(), pw = g.padW();
        int ih = g.inH(), iw = g.inW(), oh = g.outH(), ow = g.outW();
        int mh = (kh + sh - 1) / sh, mw = (kw + sw - 1) / sw;
        // row range of each row phase: i in [lo, hi] holds input row y = SH*i + a - PH in [0, IH)
        int[] iLo = new int[sh], iHi = new int[sh], jLo = new int[sw], jHi = new int[sw];
        int padBottom = 0, padRight = 0;
        for (int a = 0; a < sh; a++) {
            iLo[a] = Math.max(0, Math.floorDiv(ph - a + sh - 1, sh));
            iHi[a] = Math.floorDiv(ih - 1 + ph - a, sh);
            padBottom = Math.max(padBottom, iHi[a] - (oh - 1));
        }
        for (int b = 0; b < sw; b++) {
            jLo[b] = Math.max(0, Math.floorDiv(pw - b + sw - 1, sw));
            jHi[b] = Math.floorDiv(iw - 1 + pw - b, sw);
            padRight = Math.max(padRight, jHi[b] - (ow - 1));
        }
        // dY planes padded by MH-1 rows on top and MW-1 columns on the left (taps reaching back), and enough below and
        // to the right for the last phase rows
        int top = mh - 1, left = mw - 1;
        int planeW = left + ow + padRight;
        int planeH = top + oh + padBottom;
        int planeSize = planeH * planeW;
        int mp = (cin + 3) / 4 * 4;
        int phases = sh * sw;
        int[][] rows = new int[phases][];
        int[] packedAt = new int[phases];
        int[] positions = new int[phases];
        // at stride 2 across, each row of dX joins its two column phases' rows (PhaseSplit), the rows in order, so a
        // row narrower than a vector may spill onto rows written after it; otherwise each phase is scattered into dX
        // through its pixel maps
        boolean joinRows = sw == 2 && PhaseSplit.joins(iw);
        int[][] fromOut = new int[phases][], toDx = new int[phases][];
        Scratch caller = scratch.get();
        float[] packed = caller.packedWeights(packedLength(cin, oc * mh * mw) * phases);
        float[] sub = caller.arrangedWeights(cin * oc * mh * mw);
        int packedEnd = 0;
        int maxRead = oc * planeSize;
        int maxPositions = 0;
        for (int a = 0; a < sh; a++) {
            for (int b = 0; b < sw; b++) {
                int f = a * sw + b;
                int ma = a < kh ? (kh - a + sh - 1) / sh : 0;
                int nb = b < kw ? (kw - b + sw - 1) / sw : 0;
                int k = oc * ma * nb;
                rows[f] = new int[k];
                for (int o = 0, r = 0; o < oc; o++) {
                    for (int m = 0; m < ma; m++) {
                        for (int n = 0; n < nb; n++, r++) {
                            rows[f][r] = o * planeSize + (top - m) * planeW + (left - n);
                            int ky = a + sh * m, kx = b + sw * n;
                            for (int c = 0; c < cin; c++) {
                                sub[c * k + r] = w[((o * cin + c) * kh + ky) * kw + kx];
                            }
                        }
                    }
                }
                packedAt[f] = packedEnd;
                pack(sub, cin, k, packed, packedEnd);
                packedEnd += packedLength(cin, k);
                int wide = iHi[a] < iLo[a] || jHi[b] < jLo[b] ? 0 : iHi[a] * planeW + jHi[b] + 1;
                if (!joinRows) {
                    // the phase's pixels: where each is in its channel's rows of the product and of dX
                    int count = Math.max(0, iHi[a] - iLo[a] + 1) * Math.max(0, jHi[b] - jLo[b] + 1);
                    fromOut[f] = new int[count];
                    toDx[f] = new int[count];
                    for (int i = iLo[a], t = 0; i <= iHi[a]; i++) {
                        for (int j = jLo[b]; j <= jHi[b]; j++, t++) {
                            fromOut[f][t] = i * planeW + j;
                            toDx[f][t] = (sh * i + a - ph) * iw - pw + b + sw * j;
                        }
                    }
                }
                positions[f] = positionsComputed(wide, cin);
                maxPositions = Math.max(maxPositions, positions[f]);
                for (int r : rows[f]) {
                    maxRead = Math.max(maxRead, r + positions[f]);
                }
            }
        }
        int length = maxRead;
        int maxPositionsFinal = maxPositions;
        int ohw = oh * ow;
        int inImage = cin * ih * iw;
        int evenPhase = pw % 2;
        int phaseOut = mp * maxPositions;
        par.parallelForGuided(g.n(), (lo, hi) -> {
            Scratch s = scratch.get();
            float[] dyp = s.col(length);
            // every phase's product; the join reads up to a vector past a row of one
            float[] out = s.wideRows(phases * mp * maxPositionsFinal + L);
            Arrays.fill(dyp, 0, length, 0f);
            for (int img = lo; img < hi; img++) {
                for (int o = 0; o < oc; o++) {
                    for (int i = 0; i < oh; i++) {
                        System.arraycopy(dy, (img * oc + o) * ohw + i * ow, dyp,
                                o * planeSize + (top + i) * planeW + left, ow);
                    }
                }
                int dxo = img * inImage;
                // every phase's product first: the join reads two of them per row of dX
                for (int f = 0; f < phases; f++) {
                    int k = rows[f].length;
                    if (positions[f] == 0) {
                        continue;
                    }
                    if (k == 0) {
                        Arrays.fill(out, f * phaseOut, f * phaseOut + mp * positions[f], 0f);
                    } else {
                        multiply(dyp, rows[f], k, packed, packedAt[f], mp, out, positions[f], f * phaseOut);
                    }
                }
                if (joinRows) {
                    int imageEnd = dxo + inImage;
                    for (int c = 0; c < cin; c++) {
                        for (int y = 0; y < ih; y++) {
                            // input column x of phase b = (x + PW) % 2 is that phase's product at (x + PW - b) / 2
                            int a = (y + ph) % sh, i = (y + ph) / sh;
                            int fe = a * 2 + evenPhase, fo = a * 2 + 1 - evenPhase;
                            int d = dxo + (c * ih + y) * iw;
                            PhaseSplit.join(out, fe * phaseOut + c * positions[fe] + i * planeW + (pw - evenPhase) / 2,
                                    out, fo * phaseOut + c * positions[fo] + i * planeW + (pw + evenPhase) / 2, iw, dx,
                                    d, imageEnd);
                        }
                    }
                    continue;
                }
                for (int f = 0; f < phases; f++) {
                    int tp = positions[f];
                    if (tp == 0) {
                        continue;
                    }
                    // one pass per channel through the phase's pixel maps: its rows are 7 to 14 pixels, where
                    // a loop per row spent most of its time entering and leaving
                    int[] from = fromOut[f], to = toDx[f];
                    for (int c = 0; c < cin; c++) {
                        int src = f * phaseOut + c * tp;
                        int dst = dxo + c * ih * iw;
                        for (int t = 0; t < from.length; t++) {
                            dx[dst + to[t]] = out[src + from[t]];
                        }
                    }
                }
            }
        });
    }

    /** Wide positions the forward computes: whole vectors, whole blocks of two with a 4-channel block. */
    static int positionsComputed(int wide, int outChannels) {
        int step = (outChannels + 3) / 4 * 4 % 8 == 0 ? L : NR;
        return (wide + step - 1) / step * step;
    }

    /**
     * Weights {@code (M, K)} row-major into {@code packed[off ..]} in blocks of 8 rows (then one of 4, rows past M
     * zero): block {@code b}'s depth step {@code r} is the 8 (4) floats at {@code off + b*8*K + r*8 (4)}. The buffer
     * is the calling thread's scratch, read by every worker of the call.
     */
    static void pack(float[] w, int m, int k, float[] packed, int off) {
        int mp = (m + 3) / 4 * 4;
        for (int i0 = 0; i0 < mp; ) {
            int rowsInBlock = mp - i0 >= 8 ? 8 : 4;
            int base = off + i0 * k;
            for (int i = 0; i < rowsInBlock; i++) {
                if (i0 + i >= m) {
                    for (int r = 0; r < k; r++) {
                        packed[base + r * rowsInBlock + i] = 0f;
                    }
                    continue;
                }
                int src = (i0 + i) * k;
                for (int r = 0; r < k; r++) {
                    packed[base + r * rowsInBlock + i] = w[src + r];
                }
            }
            i0 += rowsInBlock;
        }
    }

    /** Floats of {@link #pack}'s output for {@code m} rows of depth {@code k}. */
    static int packedLength(int m, int k) {
        return (m + 3) / 4 * 4 * k;
    }

    private static void forwardPacked(int n, Layout lay, float[] packed, int oc, int k, float[] bias, float[] x,
                                      float[] y, Parallel par, Supplier<Scratch> scratch) {
        int mp = (oc + 3) / 4 * 4;
        int tp = lay.readable;
        int ohw = lay.oh * lay.ow;
        int inImage = lay.cin * lay.ih * lay.iw;
        par.parallelForGuided(n, (lo, hi) -> {
            Scratch s = scratch.get();
            float[] xp = s.col(lay.length);
            float[] out = s.wideRows(mp * tp);
            lay.clear(xp);
            for (int img = lo; img < hi; img++) {
                lay.gather(x, img * inImage, xp);
                multiply(xp, lay.rows, k, packed, 0, mp, out, tp);
                int yo = img * oc * ohw;
                int imageEnd = yo + oc * ohw;
                for (int o = 0; o < oc; o++) {
                    float bv = bias == null ? 0f : bias[o];
                    for (int oy = 0; oy < lay.oh; oy++) {
                        int src = o * tp + oy * lay.planeW;
                        int dst = yo + o * ohw + oy * lay.ow;
                        if (lay.ow < L && dst + L <= imageEnd) {
                            // a row narrower than a vector in one vector: the lanes past it land on this image's
                            // outputs that later rows overwrite (the out rows hold every channel's readable positions)
                            FloatVector v = FloatVector.fromArray(S, out, src);
                            if (bias != null) {
                                v = v.add(bv);
                            }
                            v.intoArray(y, dst);
                        } else {
                            copyRow(out, src, y, dst, lay.ow, bias != null, bv);
                        }
                    }
                }
            }
        });
    }

    /**
     * {@code dst[d + i] = src[s + i] (+ bias)} for {@code i < len}. Rows of a vector or more in whole vectors, the
     * last one ending at the row's end (overlapping the one before with the same values): an arraycopy call per
     * 28-float row cost several percent of layer1's forward.
     */
    static void copyRow(float[] src, int s, float[] dst, int d, int len, boolean addBias, float bias) {
        if (len < L) {
            if (addBias) {
                for (int i = 0; i < len; i++) {
                    dst[d + i] = src[s + i] + bias;
                }
            } else {
                System.arraycopy(src, s, dst, d, len);
            }
            return;
        }
        for (int i = 0; ; i += L) {
            int at = Math.min(i, len - L);
            FloatVector v = FloatVector.fromArray(S, src, s + at);
            if (addBias) {
                v = v.add(bias);
            }
            v.intoArray(dst, d + at);
            if (at == len - L) {
                break;
            }
        }
    }

    /**
     * {@code out[i][p] = sum_r packed(i, r) * xp[rows[r] + p]} for the {@code mp} rows of the weights packed at
     * {@code packed[po ..]} and
     * positions {@code p < tp} (a whole number of vectors, of 2-vector blocks unless {@code mp} is a multiple of 8).
     */
    static void multiply(float[] xp, int[] rows, int k, float[] packed, int po, int mp, float[] out,
                                 int tp) {
        multiply(xp, rows, k, packed, po, mp, out, tp, 0);
    }

    /** {@link #multiply} into {@code out[outAt ..]}. */
    static void multiply(float[] xp, int[] rows, int k, float[] packed, int po, int mp, float[] out, int tp,
                         int outAt) {
        if (mp % 8 == 0) {
            // 8 channels x 3 vectors (24 accumulators: fewer loads per FMA), the tail in 2 or 1 vectors
            int p0 = 0;
            for (; p0 + 3 * L <= tp; p0 += 3 * L) {
                for (int i0 = 0; i0 < mp; i0 += 8) {
                    forward8x3(xp, rows, k, p0, packed, po + i0 * k, out, outAt + i0 * tp + p0, tp);
                }
            }
            for (; p0 + NR <= tp; p0 += NR) {
                for (int i0 = 0; i0 < mp; i0 += 8) {
                    forward8(xp, rows, k, p0, packed, po + i0 * k, out, outAt + i0 * tp + p0, tp);
                }
            }
            for (; p0 < tp; p0 += L) {
                for (int i0 = 0; i0 < mp; i0 += 8) {
                    forward8x1(xp, rows, k, p0, packed, po + i0 * k, out, outAt + i0 * tp + p0, tp);
                }
            }
        } else {
            for (int p0 = 0; p0 < tp; p0 += NR) {
                int i0 = 0;
                for (; i0 + 8 <= mp; i0 += 8) {
                    forward8(xp, rows, k, p0, packed, po + i0 * k, out, outAt + i0 * tp + p0, tp);
                }
                if (i0 < mp) {
                    forward4(xp, rows, k, p0, packed, po + i0 * k, out, outAt + i0 * tp + p0, tp);
                }
            }
        }
    }

    // one flat loop over the depth: C2 (JDK 17) keeps vector accumulators of a single loop in registers
    private static void forward8(float[] xp, int[] rows, int k, int p0, float[] wp, int wo, float[] out, int oo,
                                 int ld) {
        FloatVector z = FloatVector.zero(S);
        FloatVector c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z, c30 = z, c31 = z;
        FloatVector c40 = z, c41 = z, c50 = z, c51 = z, c60 = z, c61 = z, c70 = z, c71 = z;
        for (int r = 0; r < k; r++) {
            int xo = rows[r] + p0;
            FloatVector b0 = FloatVector.fromArray(S, xp, xo);
            FloatVector b1 = FloatVector.fromArray(S, xp, xo + L);
            int q = wo + r * 8;
            FloatVector a = FloatVector.broadcast(S, wp[q]);
            c00 = a.fma(b0, c00);
            c01 = a.fma(b1, c01);
            a = FloatVector.broadcast(S, wp[q + 1]);
            c10 = a.fma(b0, c10);
            c11 = a.fma(b1, c11);
            a = FloatVector.broadcast(S, wp[q + 2]);
            c20 = a.fma(b0, c20);
            c21 = a.fma(b1, c21);
            a = FloatVector.broadcast(S, wp[q + 3]);
            c30 = a.fma(b0, c30);
            c31 = a.fma(b1, c31);
            a = FloatVector.broadcast(S, wp[q + 4]);
            c40 = a.fma(b0, c40);
            c41 = a.fma(b1, c41);
            a = FloatVector.broadcast(S, wp[q + 5]);
            c50 = a.fma(b0, c50);
            c51 = a.fma(b1, c51);
            a = FloatVector.broadcast(S, wp[q + 6]);
            c60 = a.fma(b0, c60);
            c61 = a.fma(b1, c61);
            a = FloatVector.broadcast(S, wp[q + 7]);
            c70 = a.fma(b0, c70);
            c71 = a.fma(b1, c71);
        }
        c00.intoArray(out, oo);
        c01.intoArray(out, oo + L);
        c10.intoArray(out, oo + ld);
        c11.intoArray(out, oo + ld + L);
        c20.intoArray(out, oo + 2 * ld);
        c21.intoArray(out, oo + 2 * ld + L);
        c30.intoArray(out, oo + 3 * ld);
        c31.intoArray(out, oo + 3 * ld + L);
        c40.intoArray(out, oo + 4 * ld);
        c41.intoArray(out, oo + 4 * ld + L);
        c50.intoArray(out, oo + 5 * ld);
        c51.intoArray(out, oo + 5 * ld + L);
        c60.intoArray(out, oo + 6 * ld);
        c61.intoArray(out, oo + 6 * ld + L);
        c70.intoArray(out, oo + 7 * ld);
        c71.intoArray(out, oo + 7 * ld + L);
    }

    private static void forward8x3(float[] xp, int[] rows, int k, int p0, float[] wp, int wo, float[] out, int oo,
                                   int ld) {
        FloatVector z = FloatVector.zero(S);
        FloatVector c00 = z, c01 = z, c02 = z, c10 = z, c11 = z, c12 = z, c20 = z, c21 = z;
        FloatVector c22 = z, c30 = z, c31 = z, c32 = z, c40 = z, c41 = z, c42 = z, c50 = z;
        FloatVector c51 = z, c52 = z, c60 = z, c61 = z, c62 = z, c70 = z, c71 = z, c72 = z;
        for (int r = 0; r < k; r++) {
            int xo = rows[r] + p0;
            FloatVector b0 = FloatVector.fromArray(S, xp, xo);
            FloatVector b1 = FloatVector.fromArray(S, xp, xo + 1 * L);
            FloatVector b2 = FloatVector.fromArray(S, xp, xo + 2 * L);
            int q = wo + r * 8;
            FloatVector a = FloatVector.broadcast(S, wp[q]);
            c00 = a.fma(b0, c00);
            c01 = a.fma(b1, c01);
            c02 = a.fma(b2, c02);
            a = FloatVector.broadcast(S, wp[q + 1]);
            c10 = a.fma(b0, c10);
            c11 = a.fma(b1, c11);
            c12 = a.fma(b2, c12);
            a = FloatVector.broadcast(S, wp[q + 2]);
            c20 = a.fma(b0, c20);
            c21 = a.fma(b1, c21);
            c22 = a.fma(b2, c22);
            a = FloatVector.broadcast(S, wp[q + 3]);
            c30 = a.fma(b0, c30);
            c31 = a.fma(b1, c31);
            c32 = a.fma(b2, c32);
            a = FloatVector.broadcast(S, wp[q + 4]);
            c40 = a.fma(b0, c40);
            c41 = a.fma(b1, c41);
            c42 = a.fma(b2, c42);
            a = FloatVector.broadcast(S, wp[q + 5]);
            c50 = a.fma(b0, c50);
            c51 = a.fma(b1, c51);
            c52 = a.fma(b2, c52);
            a = FloatVector.broadcast(S, wp[q + 6]);
            c60 = a.fma(b0, c60);
            c61 = a.fma(b1, c61);
            c62 = a.fma(b2, c62);
            a = FloatVector.broadcast(S, wp[q + 7]);
            c70 = a.fma(b0, c70);
            c71 = a.fma(b1, c71);
            c72 = a.fma(b2, c72);
        }
        c00.intoArray(out, oo);
        c01.intoArray(out, oo + 1 * L);
        c02.intoArray(out, oo + 2 * L);
        c10.intoArray(out, oo + 1 * ld);
        c11.intoArray(out, oo + 1 * ld + 1 * L);
        c12.intoArray(out, oo + 1 * ld + 2 * L);
        c20.intoArray(out, oo + 2 * ld);
        c21.intoArray(out, oo + 2 * ld + 1 * L);
        c22.intoArray(out, oo + 2 * ld + 2 * L);
        c30.intoArray(out, oo + 3 * ld);
        c31.intoArray(out, oo + 3 * ld + 1 * L);
        c32.intoArray(out, oo + 3 * ld + 2 * L);
        c40.intoArray(out, oo + 4 * ld);
        c41.intoArray(out, oo + 4 * ld + 1 * L);
        c42.intoArray(out, oo + 4 * ld + 2 * L);
        c50.intoArray(out, oo + 5 * ld);
        c51.intoArray(out, oo + 5 * ld + 1 * L);
        c52.intoArray(out, oo + 5 * ld + 2 * L);
        c60.intoArray(out, oo + 6 * ld);
        c61.intoArray(out, oo + 6 * ld + 1 * L);
        c62.intoArray(out, oo + 6 * ld + 2 * L);
        c70.intoArray(out, oo + 7 * ld);
        c71.intoArray(out, oo + 7 * ld + 1 * L);
        c72.intoArray(out, oo + 7 * ld + 2 * L);
    }

    private static void forward8x1(float[] xp, int[] rows, int k, int p0, float[] wp, int wo, float[] out, int oo,
                                   int ld) {
        FloatVector z = FloatVector.zero(S);
        FloatVector c00 = z, c10 = z, c20 = z, c30 = z, c40 = z, c50 = z, c60 = z, c70 = z;
        for (int r = 0; r < k; r++) {
            int xo = rows[r] + p0;
            FloatVector b0 = FloatVector.fromArray(S, xp, xo);
            int q = wo + r * 8;
            FloatVector a = FloatVector.broadcast(S, wp[q]);
            c00 = a.fma(b0, c00);
            a = FloatVector.broadcast(S, wp[q + 1]);
            c10 = a.fma(b0, c10);
            a = FloatVector.broadcast(S, wp[q + 2]);
            c20 = a.fma(b0, c20);
            a = FloatVector.broadcast(S, wp[q + 3]);
            c30 = a.fma(b0, c30);
            a = FloatVector.broadcast(S, wp[q + 4]);
            c40 = a.fma(b0, c40);
            a = FloatVector.broadcast(S, wp[q + 5]);
            c50 = a.fma(b0, c50);
            a = FloatVector.broadcast(S, wp[q + 6]);
            c60 = a.fma(b0, c60);
            a = FloatVector.broadcast(S, wp[q + 7]);
            c70 = a.fma(b0, c70);
        }
        c00.intoArray(out, oo);
        c10.intoArray(out, oo + 1 * ld);
        c20.intoArray(out, oo + 2 * ld);
        c30.intoArray(out, oo + 3 * ld);
        c40.intoArray(out, oo + 4 * ld);
        c50.intoArray(out, oo + 5 * ld);
        c60.intoArray(out, oo + 6 * ld);
        c70.intoArray(out, oo + 7 * ld);
    }

    private static void forward4(float[] xp, int[] rows, int k, int p0, float[] wp, int wo, float[] out, int oo,
                                 int ld) {
        FloatVector z = FloatVector.zero(S);
        FloatVector c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z, c30 = z, c31 = z;
        for (int r = 0; r < k; r++) {
            int xo = rows[r] + p0;
            FloatVector b0 = FloatVector.fromArray(S, xp, xo);
            FloatVector b1 = FloatVector.fromArray(S, xp, xo + L);
            int q = wo + r * 4;
            FloatVector a = FloatVector.broadcast(S, wp[q]);
            c00 = a.fma(b0, c00);
            c01 = a.fma(b1, c01);
            a = FloatVector.broadcast(S, wp[q + 1]);
            c10 = a.fma(b0, c10);
            c11 = a.fma(b1, c11);
            a = FloatVector.broadcast(S, wp[q + 2]);
            c20 = a.fma(b0, c20);
            c21 = a.fma(b1, c21);
            a = FloatVector.broadcast(S, wp[q + 3]);
            c30 = a.fma(b0, c30);
            c31 = a.fma(b1, c31);
        }
        c00.intoArray(out, oo);
        c01.intoArray(out, oo + L);
        c10.intoArray(out, oo + ld);
        c11.intoArray(out, oo + ld + L);
        c20.intoArray(out, oo + 2 * ld);
        c21.intoArray(out, oo + 2 * ld + L);
        c30.intoArray(out, oo + 3 * ld);
        c31.intoArray(out, oo + 3 * ld + L);
    }

    // ---------------------------------------------------------------- weight gradient

    /** Floats of lane accumulators that still stay in the L2 cache (as {@link Conv2dKernels#LANE_FLOATS_IN_CACHE}). */
    private static boolean lanesFit(ConvGeometry g) {
        long weights = (long) g.outChannels() * g.inChannels() * g.kernelH() * g.kernelW();
        return weights * L <= Conv2dKernels.LANE_FLOATS_IN_CACHE;
    }

    /**
     * Weight gradient into {@code dw}, the batch split into {@code chunks} as {@link Conv2dKernels#backwardWeight}
     * splits it and the chunks summed in order ({@link Conv2dKernels#sumChunks}). Few weights: vector lanes along the
     * wide positions, dY spread to the wide rows with zeros at the positions that are not outputs, summed once per
     * chunk into {@code partial} (one {@code OC x C*KH*KW} block per chunk). Many weights: {@code dW^T} per chunk in
     * memory, blocks of taps x vectors of output channels in registers, over the output positions only
     * ({@link #weightGradientGemm}).
     */
    static void weightGradient(ConvGeometry g, float[] x, float[] dy, float[] dw, float[] partial, int chunks,
                               Parallel par, Supplier<Scratch> scratch) {
        if (lanesFit(g) && !stridedOneByOne(g)) {
            weightGradientLanes(g, x, dy, chunks == 1 ? dw : partial, chunks, par, scratch);
            if (chunks > 1) {
                Conv2dKernels.sumChunks(partial, chunks, g.outChannels() * g.inChannels() * g.kernelH() * g.kernelW(),
                        dw, par);
            }
        } else {
            weightGradientGemm(g, x, dy, dw, chunks, par, scratch, true, true);
        }
    }

    private static void weightGradientLanes(ConvGeometry g, float[] x, float[] dy, float[] partial, int chunks,
                                            Parallel par, Supplier<Scratch> scratch) {
        int oc = g.outChannels();
        int k = g.inChannels() * g.kernelH() * g.kernelW();
        int wl = oc * k;
        int oh = g.outH(), ow = g.outW(), ohw = oh * ow;
        int planeW = planeWidth(g);
        int wide = widePositions(g);
        int ld = (wide + L - 1) / L * L;
        Layout lay = layout(scratch, g, ld);
        int inImage = g.inChannels() * g.inH() * g.inW();
        int n = g.n();
        par.parallelFor(chunks, 1, (lo, hi) -> {
            Scratch s = scratch.get();
            float[] xp = s.col(lay.length);
            float[] dyRows = s.wideRows(oc * ld);
            float[] lanes = s.vectorLanes(wl * L);
            lay.clear(xp);
            // positions that are not outputs stay zero
            Arrays.fill(dyRows, 0, oc * ld, 0f);
            for (int ch = lo; ch < hi; ch++) {
                int first = (int) ((long) n * ch / chunks);
                int last = (int) ((long) n * (ch + 1) / chunks);
                Arrays.fill(lanes, 0, wl * L, 0f);
                for (int img = first; img < last; img++) {
                    lay.gather(x, img * inImage, xp);
                    int dyo = img * oc * ohw;
                    for (int o = 0; o < oc; o++) {
                        for (int oy = 0; oy < oh; oy++) {
                            System.arraycopy(dy, dyo + (o * oh + oy) * ow, dyRows, o * ld + oy * planeW, ow);
                        }
                    }
                    VectorSgemm.dotAccumulateRows(oc, k, ld, dyRows, 0, ld, xp, lay.rows, lanes);
                }
                VectorSgemm.reduceLanes(lanes, wl, partial, chunks == 1 ? 0 : ch * wl);
            }
        });
    }

    /**
     * Weight gradient into {@code dw}: each chunk's {@code dW^T} ({@code C*KH*KW x OC}, rows padded to the blocking)
     * accumulated in its own block of one buffer, then the chunks summed in chunk order (in float, as
     * {@link Conv2dKernels#sumChunks} sums) and transposed once, where each chunk used to be transposed into
     * {@code dW}'s layout before summing (16 strided copies of all the weights at batch 128). {@code wideBlocks} and
     * {@code grouped} off select the 8 x 2 blocking and one image per pass (for side-by-side timing and tests).
     */
    static void weightGradientGemm(ConvGeometry g, float[] x, float[] dy, float[] dw, int chunks,
                                   Parallel par, Supplier<Scratch> scratch, boolean wideBlocks,
                                   boolean grouped) {
        int oc = g.outChannels();
        int k = g.inChannels() * g.kernelH() * g.kernelW();
        int oh = g.outH(), ow = g.outW(), ohw = oh * ow;
        // one vector of output channels (16 taps per block) when they fit in one; four vectors x 6 taps or two
        // vectors x 12 taps (24 accumulators) when the output channels fill them; else two vectors x 8 taps
        boolean single = oc <= L;
        int blockTaps;
        int ocp;
        if (single) {
            blockTaps = 16;
            ocp = L;
        } else if (wideBlocks && oc % (4 * L) == 0 && fewPaddedTaps(k, 6)) {
            blockTaps = 6;
            ocp = oc;
        } else if (wideBlocks && oc % (2 * L) == 0 && fewPaddedTaps(k, 12)) {
            blockTaps = 12;
            ocp = oc;
        } else {
            blockTaps = 8;
            ocp = (oc + NR - 1) / NR * NR;
        }
        int kp = (k + blockTaps - 1) / blockTaps * blockTaps;
        // x is read through a position map, so a strided convolution needs no split by stride phase: the padded
        // planes as they are (a gather of whole rows, a third of the cost of splitting a stride-2 row), output
        // (oy, ox) at (oy * SH) * PW + ox * SW
        int sh = g.strideH(), sw = g.strideW();
        Layout lay = layout(scratch, sh == 1 && sw == 1 ? g : new ConvGeometry(g.n(), g.inChannels(), g.inH(),
                g.inW(), oc, g.kernelH(), g.kernelW(), 1, 1, g.padH(), g.padW(), 1, 1), 1);
        // the taps of rows past K read position 0 of channel 0 (a valid index); their sums are dropped
        int[] rows = lay.tapRows(kp);
        int inImage = g.inChannels() * g.inH() * g.inW();
        int n = g.n();
        // images side by side, as many as keep their gathered planes and dY within about half a core's L2 cache: the
        // accumulators go through memory once per group and block
        int perChunk = (n + chunks - 1) / chunks;
        int group = grouped ? (int) Math.max(1, Math.min(perChunk,
                GROUP_BYTES / (4L * (lay.length + (long) ohw * ocp)))) : 1;
        int[] groupPos = lay.imagePositions(sh, sw, oh, ow, group);
        int chunkFloats = kp * ocp;
        float[] acc = scratch.get().partial(chunks * chunkFloats);
        par.parallelFor(chunks, 1, (lo, hi) -> {
            Scratch s = scratch.get();
            float[] xp = s.col(group * lay.length);
            float[] dyT = s.wideRows(group * ohw * ocp);
            Arrays.fill(xp, 0, group * lay.length, 0f);
            // output channels past OC stay zero
            Arrays.fill(dyT, 0, group * ohw * ocp, 0f);
            for (int ch = lo; ch < hi; ch++) {
                int first = (int) ((long) n * ch / chunks);
                int last = (int) ((long) n * (ch + 1) / chunks);
                int ao = ch * chunkFloats;
                Arrays.fill(acc, ao, ao + chunkFloats, 0f);
                for (int g0 = first; g0 < last; g0 += group) {
                    int images = Math.min(group, last - g0);
                    for (int i = 0; i < images; i++) {
                        int img = g0 + i;
                        lay.gather(x, img * inImage, xp, i * lay.length);
                        int dyo = img * oc * ohw;
                        int base = i * ohw * ocp;
                        for (int o = 0; o < oc; o++) {
                            int src = dyo + o * ohw;
                            for (int q = 0; q < ohw; q++) {
                                dyT[base + q * ocp + o] = dy[src + q];
                            }
                        }
                    }
                    int positions = images * ohw;
                    if (single) {
                        for (int r = 0; r < kp; r += 16) {
                            gradient16(xp, rows, r, groupPos, positions, dyT, acc, ao + r * L);
                        }
                    } else if (blockTaps == 6) {
                        for (int r = 0; r < kp; r += 6) {
                            for (int o0 = 0; o0 < ocp; o0 += 4 * L) {
                                gradient6x4(xp, rows, r, groupPos, positions, dyT, ocp, o0, acc, ao + r * ocp + o0);
                            }
                        }
                    } else if (blockTaps == 12) {
                        for (int r = 0; r < kp; r += 12) {
                            for (int o0 = 0; o0 < ocp; o0 += 2 * L) {
                                gradient12x2(xp, rows, r, groupPos, positions, dyT, ocp, o0, acc, ao + r * ocp + o0);
                            }
                        }
                    } else {
                        for (int r = 0; r < kp; r += 8) {
                            for (int o0 = 0; o0 < ocp; o0 += NR) {
                                gradient8(xp, rows, r, groupPos, positions, dyT, ocp, o0, acc, ao + r * ocp + o0);
                            }
                        }
                    }
                }
            }
        });
        // dW[o][r] = sum over chunks, in chunk order, of dW^T[r][o]: rows of taps in parallel
        par.parallelFor(k, 16, (lo, hi) -> {
            float[] row = scratch.get().floats(ocp);
            for (int r = lo; r < hi; r++) {
                int base = r * ocp;
                System.arraycopy(acc, base, row, 0, oc);
                for (int ch = 1; ch < chunks; ch++) {
                    int from = ch * chunkFloats + base;
                    for (int o = 0; o < oc; o++) {
                        row[o] += acc[from + o];
                    }
                }
                for (int o = 0; o < oc; o++) {
                    dw[o * k + r] = row[o];
                }
            }
        });
    }

    /** Whether rounding {@code k} taps up to blocks of {@code taps} adds at most 1/16 to the work. */
    private static boolean fewPaddedTaps(int k, int taps) {
        int padded = (k + taps - 1) / taps * taps;
        return (padded - k) * 16 <= k;
    }

    private static void gradient16(float[] xp, int[] rows, int r, int[] pos, int positions, float[] dyT, float[] acc,
                                   int ao) {
        int x0 = rows[r + 0];
        int x1 = rows[r + 1];
        int x2 = rows[r + 2];
        int x3 = rows[r + 3];
        int x4 = rows[r + 4];
        int x5 = rows[r + 5];
        int x6 = rows[r + 6];
        int x7 = rows[r + 7];
        int x8 = rows[r + 8];
        int x9 = rows[r + 9];
        int x10 = rows[r + 10];
        int x11 = rows[r + 11];
        int x12 = rows[r + 12];
        int x13 = rows[r + 13];
        int x14 = rows[r + 14];
        int x15 = rows[r + 15];
        FloatVector c0 = FloatVector.fromArray(S, acc, ao + 0 * L);
        FloatVector c1 = FloatVector.fromArray(S, acc, ao + 1 * L);
        FloatVector c2 = FloatVector.fromArray(S, acc, ao + 2 * L);
        FloatVector c3 = FloatVector.fromArray(S, acc, ao + 3 * L);
        FloatVector c4 = FloatVector.fromArray(S, acc, ao + 4 * L);
        FloatVector c5 = FloatVector.fromArray(S, acc, ao + 5 * L);
        FloatVector c6 = FloatVector.fromArray(S, acc, ao + 6 * L);
        FloatVector c7 = FloatVector.fromArray(S, acc, ao + 7 * L);
        FloatVector c8 = FloatVector.fromArray(S, acc, ao + 8 * L);
        FloatVector c9 = FloatVector.fromArray(S, acc, ao + 9 * L);
        FloatVector c10 = FloatVector.fromArray(S, acc, ao + 10 * L);
        FloatVector c11 = FloatVector.fromArray(S, acc, ao + 11 * L);
        FloatVector c12 = FloatVector.fromArray(S, acc, ao + 12 * L);
        FloatVector c13 = FloatVector.fromArray(S, acc, ao + 13 * L);
        FloatVector c14 = FloatVector.fromArray(S, acc, ao + 14 * L);
        FloatVector c15 = FloatVector.fromArray(S, acc, ao + 15 * L);
        for (int q = 0; q < positions; q++) {
            int p = pos[q];
            FloatVector b = FloatVector.fromArray(S, dyT, q * L);
            c0 = FloatVector.broadcast(S, xp[x0 + p]).fma(b, c0);
            c1 = FloatVector.broadcast(S, xp[x1 + p]).fma(b, c1);
            c2 = FloatVector.broadcast(S, xp[x2 + p]).fma(b, c2);
            c3 = FloatVector.broadcast(S, xp[x3 + p]).fma(b, c3);
            c4 = FloatVector.broadcast(S, xp[x4 + p]).fma(b, c4);
            c5 = FloatVector.broadcast(S, xp[x5 + p]).fma(b, c5);
            c6 = FloatVector.broadcast(S, xp[x6 + p]).fma(b, c6);
            c7 = FloatVector.broadcast(S, xp[x7 + p]).fma(b, c7);
            c8 = FloatVector.broadcast(S, xp[x8 + p]).fma(b, c8);
            c9 = FloatVector.broadcast(S, xp[x9 + p]).fma(b, c9);
            c10 = FloatVector.broadcast(S, xp[x10 + p]).fma(b, c10);
            c11 = FloatVector.broadcast(S, xp[x11 + p]).fma(b, c11);
            c12 = FloatVector.broadcast(S, xp[x12 + p]).fma(b, c12);
            c13 = FloatVector.broadcast(S, xp[x13 + p]).fma(b, c13);
            c14 = FloatVector.broadcast(S, xp[x14 + p]).fma(b, c14);
            c15 = FloatVector.broadcast(S, xp[x15 + p]).fma(b, c15);
        }
        c0.intoArray(acc, ao + 0 * L);
        c1.intoArray(acc, ao + 1 * L);
        c2.intoArray(acc, ao + 2 * L);
        c3.intoArray(acc, ao + 3 * L);
        c4.intoArray(acc, ao + 4 * L);
        c5.intoArray(acc, ao + 5 * L);
        c6.intoArray(acc, ao + 6 * L);
        c7.intoArray(acc, ao + 7 * L);
        c8.intoArray(acc, ao + 8 * L);
        c9.intoArray(acc, ao + 9 * L);
        c10.intoArray(acc, ao + 10 * L);
        c11.intoArray(acc, ao + 11 * L);
        c12.intoArray(acc, ao + 12 * L);
        c13.intoArray(acc, ao + 13 * L);
        c14.intoArray(acc, ao + 14 * L);
        c15.intoArray(acc, ao + 15 * L);
    }

    private static void gradient8(float[] xp, int[] rows, int r, int[] pos, int positions, float[] dyT, int ld,
                                  int o0, float[] acc, int ao) {
        int x0 = rows[r], x1 = rows[r + 1], x2 = rows[r + 2], x3 = rows[r + 3];
        int x4 = rows[r + 4], x5 = rows[r + 5], x6 = rows[r + 6], x7 = rows[r + 7];
        FloatVector c00 = FloatVector.fromArray(S, acc, ao), c01 = FloatVector.fromArray(S, acc, ao + L);
        FloatVector c10 = FloatVector.fromArray(S, acc, ao + ld), c11 = FloatVector.fromArray(S, acc, ao + ld + L);
        FloatVector c20 = FloatVector.fromArray(S, acc, ao + 2 * ld);
        FloatVector c21 = FloatVector.fromArray(S, acc, ao + 2 * ld + L);
        FloatVector c30 = FloatVector.fromArray(S, acc, ao + 3 * ld);
        FloatVector c31 = FloatVector.fromArray(S, acc, ao + 3 * ld + L);
        FloatVector c40 = FloatVector.fromArray(S, acc, ao + 4 * ld);
        FloatVector c41 = FloatVector.fromArray(S, acc, ao + 4 * ld + L);
        FloatVector c50 = FloatVector.fromArray(S, acc, ao + 5 * ld);
        FloatVector c51 = FloatVector.fromArray(S, acc, ao + 5 * ld + L);
        FloatVector c60 = FloatVector.fromArray(S, acc, ao + 6 * ld);
        FloatVector c61 = FloatVector.fromArray(S, acc, ao + 6 * ld + L);
        FloatVector c70 = FloatVector.fromArray(S, acc, ao + 7 * ld);
        FloatVector c71 = FloatVector.fromArray(S, acc, ao + 7 * ld + L);
        for (int q = 0; q < positions; q++) {
            int p = pos[q];
            int d = q * ld + o0;
            FloatVector b0 = FloatVector.fromArray(S, dyT, d);
            FloatVector b1 = FloatVector.fromArray(S, dyT, d + L);
            FloatVector a = FloatVector.broadcast(S, xp[x0 + p]);
            c00 = a.fma(b0, c00);
            c01 = a.fma(b1, c01);
            a = FloatVector.broadcast(S, xp[x1 + p]);
            c10 = a.fma(b0, c10);
            c11 = a.fma(b1, c11);
            a = FloatVector.broadcast(S, xp[x2 + p]);
            c20 = a.fma(b0, c20);
            c21 = a.fma(b1, c21);
            a = FloatVector.broadcast(S, xp[x3 + p]);
            c30 = a.fma(b0, c30);
            c31 = a.fma(b1, c31);
            a = FloatVector.broadcast(S, xp[x4 + p]);
            c40 = a.fma(b0, c40);
            c41 = a.fma(b1, c41);
            a = FloatVector.broadcast(S, xp[x5 + p]);
            c50 = a.fma(b0, c50);
            c51 = a.fma(b1, c51);
            a = FloatVector.broadcast(S, xp[x6 + p]);
            c60 = a.fma(b0, c60);
            c61 = a.fma(b1, c61);
            a = FloatVector.broadcast(S, xp[x7 + p]);
            c70 = a.fma(b0, c70);
            c71 = a.fma(b1, c71);
        }
        c00.intoArray(acc, ao);
        c01.intoArray(acc, ao + L);
        c10.intoArray(acc, ao + ld);
        c11.intoArray(acc, ao + ld + L);
        c20.intoArray(acc, ao + 2 * ld);
        c21.intoArray(acc, ao + 2 * ld + L);
        c30.intoArray(acc, ao + 3 * ld);
        c31.intoArray(acc, ao + 3 * ld + L);
        c40.intoArray(acc, ao + 4 * ld);
        c41.intoArray(acc, ao + 4 * ld + L);
        c50.intoArray(acc, ao + 5 * ld);
        c51.intoArray(acc, ao + 5 * ld + L);
        c60.intoArray(acc, ao + 6 * ld);
        c61.intoArray(acc, ao + 6 * ld + L);
        c70.intoArray(acc, ao + 7 * ld);
        c71.intoArray(acc, ao + 7 * ld + L);
    }

    private static void gradient6x4(float[] xp, int[] rows, int r, int[] pos, int positions, float[] dyT, int ld,
                                   int o0, float[] acc, int ao) {
        int x0 = rows[r + 0];
        int x1 = rows[r + 1];
        int x2 = rows[r + 2];
        int x3 = rows[r + 3];
        int x4 = rows[r + 4];
        int x5 = rows[r + 5];
        FloatVector c0_0 = FloatVector.fromArray(S, acc, ao + 0 * ld + 0 * L);
        FloatVector c0_1 = FloatVector.fromArray(S, acc, ao + 0 * ld + 1 * L);
        FloatVector c0_2 = FloatVector.fromArray(S, acc, ao + 0 * ld + 2 * L);
        FloatVector c0_3 = FloatVector.fromArray(S, acc, ao + 0 * ld + 3 * L);
        FloatVector c1_0 = FloatVector.fromArray(S, acc, ao + 1 * ld + 0 * L);
        FloatVector c1_1 = FloatVector.fromArray(S, acc, ao + 1 * ld + 1 * L);
        FloatVector c1_2 = FloatVector.fromArray(S, acc, ao + 1 * ld + 2 * L);
        FloatVector c1_3 = FloatVector.fromArray(S, acc, ao + 1 * ld + 3 * L);
        FloatVector c2_0 = FloatVector.fromArray(S, acc, ao + 2 * ld + 0 * L);
        FloatVector c2_1 = FloatVector.fromArray(S, acc, ao + 2 * ld + 1 * L);
        FloatVector c2_2 = FloatVector.fromArray(S, acc, ao + 2 * ld + 2 * L);
        FloatVector c2_3 = FloatVector.fromArray(S, acc, ao + 2 * ld + 3 * L);
        FloatVector c3_0 = FloatVector.fromArray(S, acc, ao + 3 * ld + 0 * L);
        FloatVector c3_1 = FloatVector.fromArray(S, acc, ao + 3 * ld + 1 * L);
        FloatVector c3_2 = FloatVector.fromArray(S, acc, ao + 3 * ld + 2 * L);
        FloatVector c3_3 = FloatVector.fromArray(S, acc, ao + 3 * ld + 3 * L);
        FloatVector c4_0 = FloatVector.fromArray(S, acc, ao + 4 * ld + 0 * L);
        FloatVector c4_1 = FloatVector.fromArray(S, acc, ao + 4 * ld + 1 * L);
        FloatVector c4_2 = FloatVector.fromArray(S, acc, ao + 4 * ld + 2 * L);
        FloatVector c4_3 = FloatVector.fromArray(S, acc, ao + 4 * ld + 3 * L);
        FloatVector c5_0 = FloatVector.fromArray(S, acc, ao + 5 * ld + 0 * L);
        FloatVector c5_1 = FloatVector.fromArray(S, acc, ao + 5 * ld + 1 * L);
        FloatVector c5_2 = FloatVector.fromArray(S, acc, ao + 5 * ld + 2 * L);
        FloatVector c5_3 = FloatVector.fromArray(S, acc, ao + 5 * ld + 3 * L);
        for (int q = 0; q < positions; q++) {
            int p = pos[q];
            int d = q * ld + o0;
            FloatVector b0 = FloatVector.fromArray(S, dyT, d + 0 * L);
            FloatVector b1 = FloatVector.fromArray(S, dyT, d + 1 * L);
            FloatVector b2 = FloatVector.fromArray(S, dyT, d + 2 * L);
            FloatVector b3 = FloatVector.fromArray(S, dyT, d + 3 * L);
            FloatVector a = FloatVector.broadcast(S, xp[x0 + p]);
            c0_0 = a.fma(b0, c0_0);
            c0_1 = a.fma(b1, c0_1);
            c0_2 = a.fma(b2, c0_2);
            c0_3 = a.fma(b3, c0_3);
            a = FloatVector.broadcast(S, xp[x1 + p]);
            c1_0 = a.fma(b0, c1_0);
            c1_1 = a.fma(b1, c1_1);
            c1_2 = a.fma(b2, c1_2);
            c1_3 = a.fma(b3, c1_3);
            a = FloatVector.broadcast(S, xp[x2 + p]);
            c2_0 = a.fma(b0, c2_0);
            c2_1 = a.fma(b1, c2_1);
            c2_2 = a.fma(b2, c2_2);
            c2_3 = a.fma(b3, c2_3);
            a = FloatVector.broadcast(S, xp[x3 + p]);
            c3_0 = a.fma(b0, c3_0);
            c3_1 = a.fma(b1, c3_1);
            c3_2 = a.fma(b2, c3_2);
            c3_3 = a.fma(b3, c3_3);
            a = FloatVector.broadcast(S, xp[x4 + p]);
            c4_0 = a.fma(b0, c4_0);
            c4_1 = a.fma(b1, c4_1);
            c4_2 = a.fma(b2, c4_2);
            c4_3 = a.fma(b3, c4_3);
            a = FloatVector.broadcast(S, xp[x5 + p]);
            c5_0 = a.fma(b0, c5_0);
            c5_1 = a.fma(b1, c5_1);
            c5_2 = a.fma(b2, c5_2);
            c5_3 = a.fma(b3, c5_3);
        }
        c0_0.intoArray(acc, ao + 0 * ld + 0 * L);
        c0_1.intoArray(acc, ao + 0 * ld + 1 * L);
        c0_2.intoArray(acc, ao + 0 * ld + 2 * L);
        c0_3.intoArray(acc, ao + 0 * ld + 3 * L);
        c1_0.intoArray(acc, ao + 1 * ld + 0 * L);
        c1_1.intoArray(acc, ao + 1 * ld + 1 * L);
        c1_2.intoArray(acc, ao + 1 * ld + 2 * L);
        c1_3.intoArray(acc, ao + 1 * ld + 3 * L);
        c2_0.intoArray(acc, ao + 2 * ld + 0 * L);
        c2_1.intoArray(acc, ao + 2 * ld + 1 * L);
        c2_2.intoArray(acc, ao + 2 * ld + 2 * L);
        c2_3.intoArray(acc, ao + 2 * ld + 3 * L);
        c3_0.intoArray(acc, ao + 3 * ld + 0 * L);
        c3_1.intoArray(acc, ao + 3 * ld + 1 * L);
        c3_2.intoArray(acc, ao + 3 * ld + 2 * L);
        c3_3.intoArray(acc, ao + 3 * ld + 3 * L);
        c4_0.intoArray(acc, ao + 4 * ld + 0 * L);
        c4_1.intoArray(acc, ao + 4 * ld + 1 * L);
        c4_2.intoArray(acc, ao + 4 * ld + 2 * L);
        c4_3.intoArray(acc, ao + 4 * ld + 3 * L);
        c5_0.intoArray(acc, ao + 5 * ld + 0 * L);
        c5_1.intoArray(acc, ao + 5 * ld + 1 * L);
        c5_2.intoArray(acc, ao + 5 * ld + 2 * L);
        c5_3.intoArray(acc, ao + 5 * ld + 3 * L);
    }

    private static void gradient12x2(float[] xp, int[] rows, int r, int[] pos, int positions, float[] dyT, int ld,
                                   int o0, float[] acc, int ao) {
        int x0 = rows[r + 0];
        int x1 = rows[r + 1];
        int x2 = rows[r + 2];
        int x3 = rows[r + 3];
        int x4 = rows[r + 4];
        int x5 = rows[r + 5];
        int x6 = rows[r + 6];
        int x7 = rows[r + 7];
        int x8 = rows[r + 8];
        int x9 = rows[r + 9];
        int x10 = rows[r + 10];
        int x11 = rows[r + 11];
        FloatVector c0_0 = FloatVector.fromArray(S, acc, ao + 0 * ld + 0 * L);
        FloatVector c0_1 = FloatVector.fromArray(S, acc, ao + 0 * ld + 1 * L);
        FloatVector c1_0 = FloatVector.fromArray(S, acc, ao + 1 * ld + 0 * L);
        FloatVector c1_1 = FloatVector.fromArray(S, acc, ao + 1 * ld + 1 * L);
        FloatVector c2_0 = FloatVector.fromArray(S, acc, ao + 2 * ld + 0 * L);
        FloatVector c2_1 = FloatVector.fromArray(S, acc, ao + 2 * ld + 1 * L);
        FloatVector c3_0 = FloatVector.fromArray(S, acc, ao + 3 * ld + 0 * L);
        FloatVector c3_1 = FloatVector.fromArray(S, acc, ao + 3 * ld + 1 * L);
        FloatVector c4_0 = FloatVector.fromArray(S, acc, ao + 4 * ld + 0 * L);
        FloatVector c4_1 = FloatVector.fromArray(S, acc, ao + 4 * ld + 1 * L);
        FloatVector c5_0 = FloatVector.fromArray(S, acc, ao + 5 * ld + 0 * L);
        FloatVector c5_1 = FloatVector.fromArray(S, acc, ao + 5 * ld + 1 * L);
        FloatVector c6_0 = FloatVector.fromArray(S, acc, ao + 6 * ld + 0 * L);
        FloatVector c6_1 = FloatVector.fromArray(S, acc, ao + 6 * ld + 1 * L);
        FloatVector c7_0 = FloatVector.fromArray(S, acc, ao + 7 * ld + 0 * L);
        FloatVector c7_1 = FloatVector.fromArray(S, acc, ao + 7 * ld + 1 * L);
        FloatVector c8_0 = FloatVector.fromArray(S, acc, ao + 8 * ld + 0 * L);
        FloatVector c8_1 = FloatVector.fromArray(S, acc, ao + 8 * ld + 1 * L);
        FloatVector c9_0 = FloatVector.fromArray(S, acc, ao + 9 * ld + 0 * L);
        FloatVector c9_1 = FloatVector.fromArray(S, acc, ao + 9 * ld + 1 * L);
        FloatVector c10_0 = FloatVector.fromArray(S, acc, ao + 10 * ld + 0 * L);
        FloatVector c10_1 = FloatVector.fromArray(S, acc, ao + 10 * ld + 1 * L);
        FloatVector c11_0 = FloatVector.fromArray(S, acc, ao + 11 * ld + 0 * L);
        FloatVector c11_1 = FloatVector.fromArray(S, acc, ao + 11 * ld + 1 * L);
        for (int q = 0; q < positions; q++) {
            int p = pos[q];
            int d = q * ld + o0;
            FloatVector b0 = FloatVector.fromArray(S, dyT, d + 0 * L);
            FloatVector b1 = FloatVector.fromArray(S, dyT, d + 1 * L);
            FloatVector a = FloatVector.broadcast(S, xp[x0 + p]);
            c0_0 = a.fma(b0, c0_0);
            c0_1 = a.fma(b1, c0_1);
            a = FloatVector.broadcast(S, xp[x1 + p]);
            c1_0 = a.fma(b0, c1_0);
            c1_1 = a.fma(b1, c1_1);
            a = FloatVector.broadcast(S, xp[x2 + p]);
            c2_0 = a.fma(b0, c2_0);
            c2_1 = a.fma(b1, c2_1);
            a = FloatVector.broadcast(S, xp[x3 + p]);
            c3_0 = a.fma(b0, c3_0);
            c3_1 = a.fma(b1, c3_1);
            a = FloatVector.broadcast(S, xp[x4 + p]);
            c4_0 = a.fma(b0, c4_0);
            c4_1 = a.fma(b1, c4_1);
            a = FloatVector.broadcast(S, xp[x5 + p]);
            c5_0 = a.fma(b0, c5_0);
            c5_1 = a.fma(b1, c5_1);
            a = FloatVector.broadcast(S, xp[x6 + p]);
            c6_0 = a.fma(b0, c6_0);
            c6_1 = a.fma(b1, c6_1);
            a = FloatVector.broadcast(S, xp[x7 + p]);
            c7_0 = a.fma(b0, c7_0);
            c7_1 = a.fma(b1, c7_1);
            a = FloatVector.broadcast(S, xp[x8 + p]);
            c8_0 = a.fma(b0, c8_0);
            c8_1 = a.fma(b1, c8_1);
            a = FloatVector.broadcast(S, xp[x9 + p]);
            c9_0 = a.fma(b0, c9_0);
            c9_1 = a.fma(b1, c9_1);
            a = FloatVector.broadcast(S, xp[x10 + p]);
            c10_0 = a.fma(b0, c10_0);
            c10_1 = a.fma(b1, c10_1);
            a = FloatVector.broadcast(S, xp[x11 + p]);
            c11_0 = a.fma(b0, c11_0);
            c11_1 = a.fma(b1, c11_1);
        }
        c0_0.intoArray(acc, ao + 0 * ld + 0 * L);
        c0_1.intoArray(acc, ao + 0 * ld + 1 * L);
        c1_0.intoArray(acc, ao + 1 * ld + 0 * L);
        c1_1.intoArray(acc, ao + 1 * ld + 1 * L);
        c2_0.intoArray(acc, ao + 2 * ld + 0 * L);
        c2_1.intoArray(acc, ao + 2 * ld + 1 * L);
        c3_0.intoArray(acc, ao + 3 * ld + 0 * L);
        c3_1.intoArray(acc, ao + 3 * ld + 1 * L);
        c4_0.intoArray(acc, ao + 4 * ld + 0 * L);
        c4_1.intoArray(acc, ao + 4 * ld + 1 * L);
        c5_0.intoArray(acc, ao + 5 * ld + 0 * L);
        c5_1.intoArray(acc, ao + 5 * ld + 1 * L);
        c6_0.intoArray(acc, ao + 6 * ld + 0 * L);
        c6_1.intoArray(acc, ao + 6 * ld + 1 * L);
        c7_0.intoArray(acc, ao + 7 * ld + 0 * L);
        c7_1.intoArray(acc, ao + 7 * ld + 1 * L);
        c8_0.intoArray(acc, ao + 8 * ld + 0 * L);
        c8_1.intoArray(acc, ao + 8 * ld + 1 * L);
        c9_0.intoArray(acc, ao + 9 * ld + 0 * L);
        c9_1.intoArray(acc, ao + 9 * ld + 1 * L);
        c10_0.intoArray(acc, ao + 10 * ld + 0 * L);
        c10_1.intoArray(acc, ao + 10 * ld + 1 * L);
        c11_0.intoArray(acc, ao + 11 * ld + 0 * L);
        c11_1.intoArray(acc, ao + 11 * ld + 1 * L);
    }
}
