package dev.kiln.cpu;

import dev.kiln.backend.ConvGeometry;

import java.util.Arrays;
import java.util.function.Supplier;

/**
 * Convolutions as {@link ImplicitConv}'s implicit GEMM on rows as wide as the output, several images per GEMM stacked
 * down the rows. The layout takes padded and strided convolutions alike ({@link #fits}); the dispatcher uses it where
 * it measured faster than the padded layout ({@link #pays}): ResNet's 7x7 stage, forward and input gradient.
 *
 * <p>Tap {@code (ky, kx)} of output {@code (oy, ox)} reads input {@code (SH*oy + ky - PH, SW*ox + kx - PW)}. Writing
 * {@code kx - PW = SW*qx + b} ({@code 0 <= b < SW}), that is column {@code j = ox + qx} of the column phase {@code b}
 * (the input columns {@code SW*j + b}), and likewise row {@code i = oy + qy} of row phase {@code a}. Each phase plane
 * is stored in rows of {@code R = OW} floats, so a tap reads its plane at a fixed offset {@code qy*R + qx} from the
 * position {@code oy*R + ox}. A tap reaching past the left edge ({@code j < 0}) lands on the previous row's last
 * {@code -qx} columns, past the right edge on the next row's first {@code qx}: each {@code (b, qx)} has its own copy of
 * the planes in which exactly those columns are zero, and no tap of that copy reads them legitimately. Images follow
 * each other down the rows with enough zero rows between them for the taps reaching above and below, so output
 * {@code (oy, ox)} of the group's image {@code i} is position {@code i*T*R + oy*R + ox} ({@code T} rows per image):
 * an image's outputs are contiguous, and the positions computed and dropped are the zero rows and the last vector's
 * tail. At 7x7 that is 49 outputs in every 56 positions (the padded layout computes 64 per image), at 14x14 196 in
 * 210 (224), and none at all for a 1x1 stride-2 shortcut.
 *
 * <p>Every output is its taps in {@code (c, ky, kx)} order, one fused multiply-add each from zero (a tap over the
 * padding adds an exact zero), then the bias: bit for bit {@link ImplicitConv#forward}'s padded layout, whatever the
 * grouping of images.
 */
final class StackedConv {

    /** GEMM positions of a group of images, about: a 7x7 group (4 images) keeps its copies and outputs in L2. */
    static final int GROUP_POSITIONS = 256;

    private StackedConv() {
    }

    /**
     * One group, no dilation, not a plain 1x1 (a GEMM as it is), every phase plane no wider than the output and no
     * tap reaching a whole row sideways.
     */
    static boolean fits(ConvGeometry g) {
        if (g.groups() != 1 || g.dilationH() != 1 || g.dilationW() != 1 || g.outH() < 1 || g.outW() < 1) {
            return false;
        }
        if (g.kernelH() == 1 && g.kernelW() == 1 && g.strideH() == 1 && g.strideW() == 1
                && g.padH() == 0 && g.padW() == 0) {
            return false;
        }
        int r = g.outW(), sw = g.strideW();
        for (int kx = 0; kx < g.kernelW(); kx++) {
            int b = Math.floorMod(kx - g.padW(), sw), qx = Math.floorDiv(kx - g.padW(), sw);
            int planeWidth = b < g.inW() ? (g.inW() - b + sw - 1) / sw : 0;
            if (planeWidth > r || qx <= -r || qx >= r) {
                return false;
            }
        }
        return true;
    }

    /**
     * Whether the stacked layout is the faster one for {@code g} (which {@link #fits}): at stride 1 where it computes
     * at least a tenth fewer positions per image than the padded layout (7x7: 56 against 64; not 14x14, 210 against
     * 224, nor 28x28). Its column copies spread a block's reads over several times the cache lines of the padded
     * layout, which costs 3-8% where few positions are saved; a strided gather into several copies costs more than
     * the positions it saves (7x7 at stride 2: 20-45% slower), and 1x1 stride-2 shortcuts, bound by memory traffic,
     * measured no faster than their GEMM.
     */
    static boolean pays(ConvGeometry g, Supplier<Scratch> scratch) {
        if (g.strideH() != 1 || g.strideW() != 1) {
            return false;
        }
        Layout lay = layout(g, 1, scratch);
        int padded = ImplicitConv.positionsComputed(ImplicitConv.widePositions(g), g.outChannels());
        return 9L * padded >= 10L * lay.imageRows * lay.r;
    }

    /** Images per GEMM: about {@link #GROUP_POSITIONS} positions, and at least one group per thread. */
    static int imagesPerGroup(ConvGeometry g, int threads, Supplier<Scratch> scratch) {
        Layout lay = layout(g, 1, scratch);
        int byCache = Math.max(1, GROUP_POSITIONS / (lay.imageRows * lay.r));
        int byThreads = Math.max(1, (g.n() + threads - 1) / threads);
        return Math.min(byCache, byThreads);
    }


    /** The layout of {@code images} images of {@code g}, from the calling thread's scratch when it built it before. */
    static Layout layout(ConvGeometry g, int images, Supplier<Scratch> scratch) {
        return scratch.get().plan(new Scratch.PlanKey("StackedConv", g, images), key -> new Layout(g, images));
    }

    /** Where each tap reads, for a group of {@code images} images of {@code g}. */
    static final class Layout {
        final int cin, ih, iw, sh, sw, oh, ow, images;
        /** Row length: the output width. */
        final int r;
        /** Rows of a phase plane some tap reads. */
        final int tallest;
        /** Rows per image: {@link #tallest} (or the output's height) and the zero rows below it. */
        final int imageRows;
        /** GEMM positions computed: whole blocks of {@link ImplicitConv#multiply}. */
        final int positions;
        /** Offset of image 0's phase-plane pixel (0, 0) in its plane's floats (zero rows and a row before it). */
        final int origin;
        final int planeStride, length;
        /** Offset of tap {@code (c, ky, kx)} for position 0. */
        final int[] rows;
        /** Column copies ({@code (b, qx)} pairs): phase b, shift qx. */
        final int[] copyPhase, copyShift;
        /** Whether copy {@code k}'s row phase {@code a} is read by some tap: {@code [k * SH + a]}. */
        final boolean[] planeUsed;

        Layout(ConvGeometry g, int images) {
            cin = g.inChannels();
            ih = g.inH();
            iw = g.inW();
            sh = g.strideH();
            sw = g.strideW();
            oh = g.outH();
            ow = g.outW();
            this.images = images;
            r = ow;
            int kh = g.kernelH(), kw = g.kernelW(), ph = g.padH(), pw = g.padW();
            int[] tapCopy = new int[kw];
            int[] phases = new int[kw], shifts = new int[kw];
            int copies = 0;
            int qxMin = 0, qxMax = 0;
            for (int kx = 0; kx < kw; kx++) {
                int b = Math.floorMod(kx - pw, sw), qx = Math.floorDiv(kx - pw, sw);
                qxMin = Math.min(qxMin, qx);
                qxMax = Math.max(qxMax, qx);
                int found = -1;
                for (int k = 0; k < copies; k++) {
                    if (phases[k] == b && shifts[k] == qx) {
                        found = k;
                    }
                }
                if (found < 0) {
                    phases[copies] = b;
                    shifts[copies] = qx;
                    found = copies++;
                }
                tapCopy[kx] = found;
            }
            copyPhase = Arrays.copyOf(phases, copies);
            copyShift = Arrays.copyOf(shifts, copies);
            int qyMin = 0, qyMax = 0, planeRows = 0;
            for (int ky = 0; ky < kh; ky++) {
                int a = Math.floorMod(ky - ph, sh), qy = Math.floorDiv(ky - ph, sh);
                qyMin = Math.min(qyMin, qy);
                qyMax = Math.max(qyMax, qy);
                planeRows = Math.max(planeRows, a < ih ? (ih - a + sh - 1) / sh : 0);
            }
            // rows past the last output's lowest tap are never read
            tallest = Math.min(planeRows, oh + qyMax);
            // taps reaching above an image read the zero rows below the one before; taps reaching below read its own
            int zeroRows = Math.max(0, Math.max(-qyMin, oh + qyMax - tallest));
            imageRows = Math.max(tallest, oh) + zeroRows;
            positions = ImplicitConv.positionsComputed((images - 1) * imageRows * r + oh * r, g.outChannels());
            // the first position's top-left tap and the last one's bottom-right tap stay inside the plane
            origin = zeroRows * r - qxMin;
            planeStride = origin + positions + qyMax * r + qxMax;
            length = copies * cin * sh * planeStride;
            planeUsed = new boolean[copies * sh];
            rows = new int[cin * kh * kw];
            for (int c = 0, t = 0; c < cin; c++) {
                for (int ky = 0; ky < kh; ky++) {
                    int a = Math.floorMod(ky - ph, sh), qy = Math.floorDiv(ky - ph, sh);
                    for (int kx = 0; kx < kw; kx++, t++) {
                        int k = tapCopy[kx];
                        planeUsed[k * sh + a] = true;
                        rows[t] = ((k * cin + c) * sh + a) * planeStride + origin + qy * r + copyShift[k];
                    }
                }
            }
        }

        /**
         * Writes image {@code x[xo ..]} into slot {@code slot} of every plane a tap reads. Only the places of pixels
         * are written, and never a copy's wrapped columns, so the zero rows, columns and margins of a cleared buffer
         * stay zero.
         */
        void gather(float[] x, int xo, int slot, float[] xp) {
            int ihw = ih * iw;
            int slotOffset = origin + slot * imageRows * r;
            for (int k = 0; k < copyPhase.length; k++) {
                int b = copyPhase[k], qx = copyShift[k];
                // columns of the phase plane this copy holds: not those a wrap past an edge reads
                int jFrom = Math.max(0, qx), jTo = qx < 0 ? r + qx : r;
                for (int c = 0; c < cin; c++) {
                    int src = xo + c * ihw;
                    for (int a = 0; a < sh; a++) {
                        if (!planeUsed[k * sh + a]) {
                            continue;
                        }
                        int dst = ((k * cin + c) * sh + a) * planeStride + slotOffset;
                        if (sh == 1 && sw == 1 && iw == r && tallest == ih) {
                            // the plane is the image: one copy, then the wrapped columns back to zero
                            System.arraycopy(x, src, xp, dst, ihw);
                            for (int y = 0; y < ih; y++) {
                                int row = dst + y * r;
                                for (int j = 0; j < jFrom; j++) {
                                    xp[row + j] = 0f;
                                }
                                for (int j = jTo; j < r; j++) {
                                    xp[row + j] = 0f;
                                }
                            }
                            continue;
                        }
                        int jEnd = Math.min(jTo, (iw - b + sw - 1) / sw);
                        for (int y = a, i = 0; y < ih && i < tallest; y += sh, i++) {
                            int from = src + y * iw + b;
                            int row = dst + i * r;
                            for (int j = jFrom; j < jEnd; j++) {
                                xp[row + j] = x[from + j * sw];
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
        forwardPacked(g, imagesPerGroup(g, par.threads(), scratch), packed, oc, k, bias, x, y, par, scratch);
    }

    /** {@link #forwardPacked} with {@code images} images per GEMM. */
    static void forwardPacked(ConvGeometry g, int images, float[] packed, int oc, int k, float[] bias, float[] x,
                              float[] y, Parallel par, Supplier<Scratch> scratch) {
        int n = g.n();
        Layout lay = layout(g, images, scratch);
        int mp = (oc + 3) / 4 * 4;
        int tp = lay.positions;
        int ohw = lay.oh * lay.ow;
        int inImage = lay.cin * lay.ih * lay.iw;
        int imageStride = lay.imageRows * lay.r;
        int groups = (n + images - 1) / images;
        par.parallelForGuided(groups, (lo, hi) -> {
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
                    int yo = (first + i) * oc * ohw;
                    for (int o = 0; o < oc; o++) {
                        ImplicitConv.copyRow(out, o * tp + i * imageStride, y, yo + o * ohw, ohw, bias != null,
                                bias == null ? 0f : bias[o]);
                    }
                }
            }
        });
    }
}
