package dev.kiln.cpu;

import dev.kiln.backend.ConvGeometry;

import java.util.Arrays;
import java.util.function.Supplier;

/**
 * Stride-1 convolutions whose output has the input's size (odd kernel, padding {@code (K - 1) / 2}: ResNet's 3x3 pad 1,
 * and the input gradient of one, which is one too) as {@link ImplicitConv}'s implicit GEMM on a layout without padding
 * columns, several images per GEMM.
 *
 * <p>Rows are the image width {@code W} long. A tap that reaches past the left or right edge then reads the last or
 * first pixels of the neighbouring row, so each kernel column {@code kx} reads its own copy of the image in which the
 * columns such a wrap lands on are zero: the last {@code PW - kx} when {@code kx < PW}, the first {@code kx - PW} when
 * {@code kx > PW} (no tap of that column reads them legitimately). Images follow each other down the rows with
 * {@code PH} zero rows between them, the bottom padding of one being the top padding of the next, so output
 * {@code (oy, ox)} of the group's image {@code i} is GEMM position {@code i * (H + PH) * W + oy * W + ox}: an image's
 * outputs are contiguous, and the positions computed and dropped are the {@code PH * W} between images and the last
 * vector's tail. At 7x7 that is 49 outputs in every 56 positions, where the padded layout computes 64 per image
 * (9-wide rows, one image per GEMM); at 14x14, 196 in 210 against 224.
 *
 * <p>Every output is its taps in {@code (c, ky, kx)} order, one fused multiply-add each from zero, then the bias:
 * bit for bit the padded layout's result ({@link ImplicitConv#forward}), whatever the grouping of images.
 */
final class SameConv {

    /** GEMM positions of a group of images, about: a 7x7 group (4 images) keeps its copies and outputs in L2. */
    static final int GROUP_POSITIONS = 256;

    private SameConv() {
    }

    /** Stride 1, one group, no dilation, odd kernel larger than 1x1 with padding {@code (K - 1) / 2} on both axes. */
    static boolean fits(ConvGeometry g) {
        int kh = g.kernelH(), kw = g.kernelW();
        return g.groups() == 1 && g.dilationH() == 1 && g.dilationW() == 1 && g.strideH() == 1 && g.strideW() == 1
                && kh % 2 == 1 && kw % 2 == 1 && (kh > 1 || kw > 1)
                && g.padH() == (kh - 1) / 2 && g.padW() == (kw - 1) / 2
                // a wrap past the edge lands on the neighbouring row, not further
                && g.inW() > g.padW();
    }

    /** Images per GEMM: about {@link #GROUP_POSITIONS} positions, and at least one group per thread. */
    static int imagesPerGroup(ConvGeometry g, int threads) {
        int perImage = (g.inH() + g.padH()) * g.inW();
        int byCache = Math.max(1, GROUP_POSITIONS / perImage);
        int byThreads = Math.max(1, (g.n() + threads - 1) / threads);
        return Math.min(byCache, byThreads);
    }

    private record LayoutKey(ConvGeometry g, int images) {
    }

    /**
     * Where each tap reads, for a group of {@code images} images of {@code g}'s input ({@code C x H x W}) and
     * {@code g.outChannels()} outputs (which set the GEMM's position blocking).
     */
    static final class Layout {
        final int cin, h, w, ph, pw, kw, images;
        /** Floats from one image's pixel (0, 0) to the next's, within a channel: its rows and PH zero rows. */
        final int imageStride;
        /** GEMM positions computed: whole blocks of {@link ImplicitConv#multiply}. */
        final int positions;
        /** Offset of image 0's pixel (0, 0) in a channel's floats: PH zero rows and PW zeros before it. */
        final int origin;
        final int channelStride, copyStride, length;
        /** Offset of tap {@code r = (c, ky, kx)} for position 0. */
        final int[] rows;

        Layout(ConvGeometry g, int images) {
            cin = g.inChannels();
            h = g.inH();
            w = g.inW();
            ph = g.padH();
            pw = g.padW();
            kw = g.kernelW();
            int kh = g.kernelH();
            this.images = images;
            imageStride = (h + ph) * w;
            positions = ImplicitConv.positionsComputed((images - 1) * imageStride + h * w, g.outChannels());
            origin = ph * w + pw;
            // the last position's bottom-right tap reads PH rows and PW floats past it
            channelStride = origin + positions + ph * w + pw;
            copyStride = cin * channelStride;
            length = kw * copyStride;
            rows = new int[cin * kh * kw];
            for (int c = 0, r = 0; c < cin; c++) {
                for (int ky = 0; ky < kh; ky++) {
                    for (int kx = 0; kx < kw; kx++, r++) {
                        rows[r] = kx * copyStride + c * channelStride + origin + (ky - ph) * w + (kx - pw);
                    }
                }
            }
        }

        /**
         * Writes image {@code x[xo ..]} into slot {@code slot} of every column copy. Only pixel places are written, so
         * the zero rows and margins of a cleared buffer stay zero.
         */
        void gather(float[] x, int xo, int slot, float[] xp) {
            int hw = h * w;
            for (int c = 0; c < cin; c++) {
                int src = xo + c * hw;
                int at = c * channelStride + origin + slot * imageStride;
                for (int kx = 0; kx < kw; kx++) {
                    int dst = kx * copyStride + at;
                    System.arraycopy(x, src, xp, dst, hw);
                    // the columns a wrap past the left (kx < PW) or right (kx > PW) edge reads
                    int from = kx < pw ? w - (pw - kx) : 0;
                    int to = kx < pw ? w : kx - pw;
                    if (from < to) {
                        for (int y = 0; y < h; y++) {
                            int row = dst + y * w;
                            for (int col = from; col < to; col++) {
                                xp[row + col] = 0f;
                            }
                        }
                    }
                }
            }
        }
    }

    /**
     * {@code y = conv(x, W) (+ bias)} for a {@link #fits} geometry {@code g}, the weights packed by
     * {@link ImplicitConv#pack} ({@code oc} rows of depth {@code k = C * KH * KW}).
     */
    static void forwardPacked(ConvGeometry g, float[] packed, int oc, int k, float[] bias, float[] x, float[] y,
                              Parallel par, Supplier<Scratch> scratch) {
        forwardPacked(g, imagesPerGroup(g, par.threads()), packed, oc, k, bias, x, y, par, scratch);
    }

    /** {@link #forwardPacked} with {@code images} images per GEMM. */
    static void forwardPacked(ConvGeometry g, int images, float[] packed, int oc, int k, float[] bias, float[] x,
                              float[] y, Parallel par, Supplier<Scratch> scratch) {
        int n = g.n();
        Layout lay = scratch.get().plan(new LayoutKey(g, images), key -> new Layout(g, images));
        int mp = (oc + 3) / 4 * 4;
        int tp = lay.positions;
        int hw = lay.h * lay.w;
        int inImage = lay.cin * hw;
        int groups = (n + images - 1) / images;
        par.parallelFor(groups, 1, (lo, hi) -> {
            Scratch s = scratch.get();
            float[] xp = s.col(lay.length);
            float[] out = s.wideRows(mp * tp);
            Arrays.fill(xp, 0, lay.length, 0f);
            for (int group = lo; group < hi; group++) {
                int first = group * images;
                int count = Math.min(images, n - first);
                // a last group's empty slots keep earlier images: their positions are dropped, and the zero rows
                // between slots keep them from the others' taps
                for (int i = 0; i < count; i++) {
                    lay.gather(x, (first + i) * inImage, i, xp);
                }
                ImplicitConv.multiply(xp, lay.rows, k, packed, 0, mp, out, tp);
                for (int i = 0; i < count; i++) {
                    int yo = (first + i) * oc * hw;
                    for (int o = 0; o < oc; o++) {
                        ImplicitConv.copyRow(out, o * tp + i * lay.imageStride, y, yo + o * hw, hw, bias != null,
                                bias == null ? 0f : bias[o]);
                    }
                }
            }
        });
    }
}
