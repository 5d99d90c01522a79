package dev.kiln.cpu;

/**
 * Single-threaded row-major SGEMM {@code C = alpha * op(A) * op(B) + beta * C} with explicit leading dimensions.
 *
 * <p>Design: C is produced in column panels of at most {@link #NC_MAX} columns, sized so the B panel
 * ({@code k x nc} floats) stays in L2. B is used in place when not transposed (its rows are contiguous) and packed
 * into a per-thread buffer when transposed. Four rows of C are accumulated at a time in four per-thread float rows
 * (the register/L1 block) with the depth unrolled by two, so the inner loop reads two B rows once for eight
 * multiply-adds over contiguous arrays, which C2 auto-vectorises. {@code alpha} and {@code beta} are applied once
 * when a block is stored; with {@code beta == 0} C is never read.
 */
final class Sgemm {

    static final int NC_MAX = 256;
    /** Depth of one packed B panel. */
    static final int KC_MAX = 256;
    /** Target size of one B panel in floats (256 KB, well inside L2). */
    private static final int PANEL_FLOATS = 64 * 1024;

    private Sgemm() {
    }

    static void gemm(boolean transA, boolean transB, int m, int n, int k, float alpha,
                     float[] a, int aOff, int lda, float[] b, int bOff, int ldb,
                     float beta, float[] c, int cOff, int ldc, Scratch s) {
        // empty products (C only scaled by beta) take the scalar path's early exits
        if (SimdSupport.ENABLED && m > 0 && n > 0 && k > 0 && alpha != 0f) {
            VectorSgemm.gemm(transA, transB, m, n, k, alpha, a, aOff, lda, b, bOff, ldb, beta, c, cOff, ldc, s);
            return;
        }
        gemmScalar(transA, transB, m, n, k, alpha, a, aOff, lda, b, bOff, ldb, beta, c, cOff, ldc, s);
    }

    /** The auto-vectorised scalar path (also the reference the SIMD path is tested against). */
    static void gemmScalar(boolean transA, boolean transB, int m, int n, int k, float alpha,
                           float[] a, int aOff, int lda, float[] b, int bOff, int ldb,
                           float beta, float[] c, int cOff, int ldc, Scratch s) {
        if (m <= 0 || n <= 0) {
            return;
        }
        if (k <= 0 || alpha == 0f) {
            scale(m, n, beta, c, cOff, ldc);
            return;
        }
        int blocks = (k + KC_MAX - 1) / KC_MAX;
        int kc = (k + blocks - 1) / blocks;
        int nc = panelWidth(n, kc);
        float[] c0 = s.acc0, c1 = s.acc1, c2 = s.acc2, c3 = s.acc3;
        float[][] rows = s.panel(kc);
        // element (i, p) of op(A) is a[aOff + i * rs + p * ps]
        int rs = transA ? 1 : lda;
        int ps = transA ? lda : 1;
        for (int j0 = 0; j0 < n; j0 += nc) {
            int w = Math.min(nc, n - j0);
            for (int p0 = 0; p0 < k; p0 += kc) {
                int d = Math.min(kc, k - p0);
                if (transB) {
                    packTransposed(b, bOff + j0 * ldb + p0, ldb, d, w, rows);
                } else {
                    for (int p = 0; p < d; p++) {
                        System.arraycopy(b, bOff + (p0 + p) * ldb + j0, rows[p], 0, w);
                    }
                }
                float bt = p0 == 0 ? beta : 1f;
                int i = 0;
                for (; i + 4 <= m; i += 4) {
                    kernel4(a, aOff + i * rs + p0 * ps, rs, ps, d, rows, w, c0, c1, c2, c3);
                    int co = cOff + i * ldc + j0;
                    store(alpha, bt, c0, c, co, w);
                    store(alpha, bt, c1, c, co + ldc, w);
                    store(alpha, bt, c2, c, co + 2 * ldc, w);
                    store(alpha, bt, c3, c, co + 3 * ldc, w);
                }
                for (; i < m; i++) {
                    kernel1(a, aOff + i * rs + p0 * ps, ps, d, rows, w, c0);
                    store(alpha, bt, c0, c, cOff + i * ldc + j0, w);
                }
            }
        }
    }

    /**
     * {@code dst[p * rows + j] = src[j * cols + p]} for source columns {@code from <= p < to}: that part of the
     * transpose of a row-major rows x cols matrix (the rows {@code [from, to)} of the result).
     */
    static void transpose(float[] src, int rows, int cols, float[] dst, int from, int to) {
        // 16 x 16 blocks keep both the strided reads and the strided writes inside L1
        for (int j0 = 0; j0 < rows; j0 += 16) {
            int j1 = Math.min(rows, j0 + 16);
            for (int p0 = from; p0 < to; p0 += 16) {
                int p1 = Math.min(to, p0 + 16);
                for (int j = j0; j < j1; j++) {
                    int so = j * cols;
                    for (int p = p0; p < p1; p++) {
                        dst[p * rows + j] = src[so + p];
                    }
                }
            }
        }
    }

    /** Panel width: a multiple of 8 with {@code kc * nc <= PANEL_FLOATS}, at most NC_MAX, panels balanced. */
    static int panelWidth(int n, int kc) {
        int nc = Math.max(32, Math.min(NC_MAX, PANEL_FLOATS / Math.max(1, kc)));
        nc &= ~7;
        if (n <= nc) {
            return n;
        }
        int panels = (n + nc - 1) / nc;
        int even = (n + panels - 1) / panels;
        return Math.min(NC_MAX, (even + 7) & ~7);
    }

    /**
     * {@code rows[p][j] = src[off + j * ld + p]} for p < d, j < w, in blocks of 16 columns: each pass reads 16 source
     * rows sequentially and writes 16 contiguous floats of each panel row, so both sides stay in L1 (the unblocked
     * column-at-a-time loop touched d panel rows per source row and dominated the conv weight gradient).
     */
    private static void packTransposed(float[] src, int off, int ld, int d, int w, float[][] rows) {
        int j0 = 0;
        for (; j0 + 16 <= w; j0 += 16) {
            int so = off + j0 * ld;
            for (int p = 0; p < d; p++) {
                float[] r = rows[p];
                int o = so + p;
                for (int j = 0; j < 16; j++) {
                    r[j0 + j] = src[o + j * ld];
                }
            }
        }
        for (int j = j0; j < w; j++) {
            int so = off + j * ld;
            for (int p = 0; p < d; p++) {
                rows[p][j] = src[so + p];
            }
        }
    }

    /*
     * The inner loops index every array from 0 with the same induction variable: C2 (JDK 17) only vectorises a
     * loop whose memory references share one alignment, so B rows are separate arrays and the accumulators are
     * separate rows. One depth per iteration: an unrolled two-depth body defeats SuperWord.
     */
    private static void kernel4(float[] a, int ao, int rs, int ps, int d, float[][] rows, int w,
                                float[] c0, float[] c1, float[] c2, float[] c3) {
        {
            float a0 = a[ao], a1 = a[ao + rs], a2 = a[ao + 2 * rs], a3 = a[ao + 3 * rs];
            float[] x = rows[0];
            for (int j = 0; j < w; j++) {
                float v = x[j];
                c0[j] = a0 * v;
                c1[j] = a1 * v;
                c2[j] = a2 * v;
                c3[j] = a3 * v;
            }
        }
        for (int p = 1; p < d; p++) {
            int o = ao + p * ps;
            float a0 = a[o], a1 = a[o + rs], a2 = a[o + 2 * rs], a3 = a[o + 3 * rs];
            float[] x = rows[p];
            for (int j = 0; j < w; j++) {
                float v = x[j];
                c0[j] += a0 * v;
                c1[j] += a1 * v;
                c2[j] += a2 * v;
                c3[j] += a3 * v;
            }
        }
    }

    private static void kernel1(float[] a, int ao, int ps, int d, float[][] rows, int w, float[] c0) {
        {
            float a0 = a[ao];
            float[] x = rows[0];
            for (int j = 0; j < w; j++) {
                c0[j] = a0 * x[j];
            }
        }
        for (int p = 1; p < d; p++) {
            float a0 = a[ao + p * ps];
            float[] x = rows[p];
            for (int j = 0; j < w; j++) {
                c0[j] += a0 * x[j];
            }
        }
    }

    private static void store(float alpha, float beta, float[] acc, float[] c, int co, int w) {
        if (beta == 0f) {
            if (alpha == 1f) {
                System.arraycopy(acc, 0, c, co, w);
            } else {
                for (int j = 0; j < w; j++) {
                    c[co + j] = alpha * acc[j];
                }
            }
        } else if (beta == 1f) {
            for (int j = 0; j < w; j++) {
                c[co + j] += alpha * acc[j];
            }
        } else {
            for (int j = 0; j < w; j++) {
                c[co + j] = alpha * acc[j] + beta * c[co + j];
            }
        }
    }

    private static void scale(int m, int n, float beta, float[] c, int cOff, int ldc) {
        for (int i = 0; i < m; i++) {
            int co = cOff + i * ldc;
            if (beta == 0f) {
                java.util.Arrays.fill(c, co, co + n, 0f);
            } else if (beta != 1f) {
                for (int j = 0; j < n; j++) {
                    c[co + j] *= beta;
                }
            }
        }
    }

    // ---------------------------------------------------------------- long-depth, small-output products

    /** Width of a lane accumulator (and of a packed depth tile) in {@link #dotLanes}. */
    static final int LANES = 64;

    /** Whether {@link #dotLanes} fits: an output of at most this many elements keeps its lanes in L1/L2. */
    static boolean lanesFit(int m, int n) {
        return (long) m * n <= 256;
    }

    /**
     * {@code acc[i*n+j][t] += sum over depth tiles of A[i, p] * B[j, p]} for {@code p = tile*LANES + t}, with A
     * {@code (m, k)} and B {@code (n, k)} both row-major along the depth: the shape of a convolution's weight gradient
     * with few outputs and a long depth ({@code dY * col^T}: 6x25 outputs over 784 positions for LeNet's conv1), where a
     * blocked GEMM has nothing wide to vectorise. Each output keeps {@link #LANES} partial sums, so the inner loop is an
     * element-wise multiply-add over contiguous tiles that C2 vectorises; {@link #reduceLanes} sums the lanes at the
     * end. A and B tiles are first copied into separate arrays indexed from 0 (C2 on JDK 17 vectorises only loops
     * whose references share one alignment).
     */
    static void dotLanes(int m, int n, int k, float[] a, int aOff, int lda, float[] b, int bOff, int ldb,
                         float[][] acc, Scratch s) {
        float[][] rows = s.tileRows(m + n);
        for (int p0 = 0; p0 < k; p0 += LANES) {
            int w = Math.min(LANES, k - p0);
            for (int i = 0; i < m; i++) {
                float[] r = rows[i];
                System.arraycopy(a, aOff + i * lda + p0, r, 0, w);
                if (w < LANES) {
                    java.util.Arrays.fill(r, w, LANES, 0f);
                }
            }
            for (int j = 0; j < n; j++) {
                float[] r = rows[m + j];
                System.arraycopy(b, bOff + j * ldb + p0, r, 0, w);
                if (w < LANES) {
                    java.util.Arrays.fill(r, w, LANES, 0f);
                }
            }
            for (int i = 0; i < m; i++) {
                float[] x = rows[i];
                int j = 0;
                for (; j + 2 <= n; j += 2) {
                    lanes2(x, rows[m + j], rows[m + j + 1], acc[i * n + j], acc[i * n + j + 1]);
                }
                if (j < n) {
                    lanes1(x, rows[m + j], acc[i * n + j]);
                }
            }
        }
    }

    private static void lanes2(float[] x, float[] y0, float[] y1, float[] c0, float[] c1) {
        for (int t = 0; t < LANES; t++) {
            float v = x[t];
            c0[t] += v * y0[t];
            c1[t] += v * y1[t];
        }
    }

    private static void lanes1(float[] x, float[] y0, float[] c0) {
        for (int t = 0; t < LANES; t++) {
            c0[t] += x[t] * y0[t];
        }
    }

    static void zeroLanes(float[][] acc, int count) {
        for (int i = 0; i < count; i++) {
            java.util.Arrays.fill(acc[i], 0f);
        }
    }

    /** {@code out[off + i] = sum of acc[i]'s lanes} (in double, fixed order) for {@code i < count}. */
    static void reduceLanes(float[][] acc, int count, float[] out, int off) {
        for (int i = 0; i < count; i++) {
            float[] l = acc[i];
            double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            for (int t = 0; t < LANES; t += 4) {
                s0 += l[t];
                s1 += l[t + 1];
                s2 += l[t + 2];
                s3 += l[t + 3];
            }
            out[off + i] = (float) ((s0 + s1) + (s2 + s3));
        }
    }
}
