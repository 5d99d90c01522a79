package dev.kiln.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@link Sgemm#gemm} with a register-blocked micro-kernel on the JDK's Vector API ({@code jdk.incubator.vector}): a
 * block of up to {@link #MR} rows x {@link #NR} columns of C (two vectors per row: 16 accumulators of 16 lanes with
 * AVX-512, of 8 lanes with AVX2) lives in vector registers for the whole depth, each depth step loads two B vectors
 * once and broadcasts one A scalar per row into fused multiply-adds. The auto-vectorised scalar kernel keeps its
 * accumulators in memory and is bound by their loads and stores; this one is bound by the FMA units.
 *
 * <p>Loaded only when {@link SimdSupport#ENABLED} (the module is present and the switch allows it). Each element of C
 * is the sum over the depth in ascending order, one fused multiply-add per term, whatever its position in a block: the
 * result does not depend on the blocking, the column tail or the thread count. It differs from the scalar path only
 * by the rounding of the multiply (once per term instead of twice).
 *
 * <p>B is read in place when not transposed (full-width blocks straight from its rows, the column tail copied into a
 * zero-padded strip); a transposed B is packed into a row-major panel first.
 */
final class VectorSgemm {

    static final VectorSpecies<Float> SPECIES = FloatVector.SPECIES_PREFERRED;
    static final int L = SPECIES.length();
    /** Columns of C per micro-kernel call: two vectors. */
    static final int NR = 2 * L;
    /** Rows of C per micro-kernel call. */
    static final int MR = 8;
    /** Depth of one pass over C (C is updated with beta = 1 between passes). */
    static final int KC = 256;
    /** Floats of one packed B panel (kc x nc), inside L2. */
    private static final int PANEL_FLOATS = 64 * 1024;

    private VectorSgemm() {
    }

    static void gemm(boolean transA, boolean transB, int m, int n, int k, float alpha,
                     float[] a, int aOff, int lda, float[] b, int bOff, int ldb,
                     float beta, float[] c, int cOff, int ldc, Scratch s) {
        int blocks = (k + KC - 1) / KC;
        int kc = (k + blocks - 1) / blocks;
        int rs = transA ? 1 : lda;
        int ps = transA ? lda : 1;
        float[] tile = s.vectorTile(MR * NR);
        float[] strip = s.vectorStrip(kc * NR);
        // panel width: a multiple of NR whose kc x nc floats stay in L2
        int nc = transB ? Math.max(NR, (PANEL_FLOATS / Math.max(1, kc)) / NR * NR) : n;
        float[] panel = transB ? s.vectorPanel(kc * Math.min(nc, (n + NR - 1) / NR * NR)) : null;
        for (int j0 = 0; j0 < n; j0 += nc) {
            int w = Math.min(nc, n - j0);
            int wp = (w + NR - 1) / NR * NR;
            for (int p0 = 0; p0 < k; p0 += kc) {
                int d = Math.min(kc, k - p0);
                float bt = p0 == 0 ? beta : 1f;
                if (transB) {
                    packTransposed(b, bOff + j0 * ldb + p0, ldb, d, w, wp, panel);
                }
                for (int jb = 0; jb < w; jb += NR) {
                    int cols = Math.min(NR, w - jb);
                    float[] bb;
                    int bo;
                    int bs;
                    if (transB) {
                        bb = panel;
                        bo = jb;
                        bs = wp;
                    } else if (cols == NR) {
                        bb = b;
                        bo = bOff + p0 * ldb + j0 + jb;
                        bs = ldb;
                    } else {
                        int src = bOff + p0 * ldb + j0 + jb;
                        for (int p = 0; p < d; p++) {
                            System.arraycopy(b, src + p * ldb, strip, p * NR, cols);
                            java.util.Arrays.fill(strip, p * NR + cols, (p + 1) * NR, 0f);
                        }
                        bb = strip;
                        bo = 0;
                        bs = NR;
                    }
                    // a whole block of C = A * B (no scaling, nothing added) goes from the registers straight to C
                    boolean direct = cols == NR && alpha == 1f && bt == 0f;
                    int i = 0;
                    int ao = aOff + p0 * ps;
                    int co = cOff + j0 + jb;
                    for (; i + 8 <= m; i += 8) {
                        if (direct) {
                            kernel8(a, ao + i * rs, rs, ps, d, bb, bo, bs, c, co + i * ldc, ldc);
                        } else {
                            kernel8(a, ao + i * rs, rs, ps, d, bb, bo, bs, tile, 0, NR);
                            store(tile, 8, cols, alpha, bt, c, co + i * ldc, ldc);
                        }
                    }
                    if (i + 4 <= m) {
                        if (direct) {
                            kernel4(a, ao + i * rs, rs, ps, d, bb, bo, bs, c, co + i * ldc, ldc);
                        } else {
                            kernel4(a, ao + i * rs, rs, ps, d, bb, bo, bs, tile, 0, NR);
                            store(tile, 4, cols, alpha, bt, c, co + i * ldc, ldc);
                        }
                        i += 4;
                    }
                    if (i + 2 <= m) {
                        if (direct) {
                            kernel2(a, ao + i * rs, rs, ps, d, bb, bo, bs, c, co + i * ldc, ldc);
                        } else {
                            kernel2(a, ao + i * rs, rs, ps, d, bb, bo, bs, tile, 0, NR);
                            store(tile, 2, cols, alpha, bt, c, co + i * ldc, ldc);
                        }
                        i += 2;
                    }
                    if (i < m) {
                        if (direct) {
                            kernel1(a, ao + i * rs, ps, d, bb, bo, bs, c, co + i * ldc);
                        } else {
                            kernel1(a, ao + i * rs, ps, d, bb, bo, bs, tile, 0);
                            store(tile, 1, cols, alpha, bt, c, co + i * ldc, ldc);
                        }
                    }
                }
            }
        }
    }

    /** {@code panel[p * wp + j] = src[off + j * ld + p]} for p < d, j < w; columns w..wp-1 are zero. */
    private static void packTransposed(float[] src, int off, int ld, int d, int w, int wp, float[] panel) {
        int j0 = 0;
        for (; j0 + 16 <= w; j0 += 16) {
            int so = off + j0 * ld;
            for (int p = 0; p < d; p++) {
                int o = so + p;
                int po = p * wp + j0;
                for (int j = 0; j < 16; j++) {
                    panel[po + j] = src[o + j * ld];
                }
            }
        }
        for (int j = j0; j < w; j++) {
            int so = off + j * ld;
            for (int p = 0; p < d; p++) {
                panel[p * wp + j] = src[so + p];
            }
        }
        if (w < wp) {
            for (int p = 0; p < d; p++) {
                java.util.Arrays.fill(panel, p * wp + w, (p + 1) * wp, 0f);
            }
        }
    }

    /** C rows from the tile with the scalar path's store rule: alpha * acc, plus beta * C unless beta is 0. */
    private static void store(float[] tile, int rows, int cols, float alpha, float beta, float[] c, int co, int ldc) {
        for (int r = 0; r < rows; r++) {
            int t = r * NR;
            int o = co + r * ldc;
            if (cols == NR) {
                for (int h = 0; h < NR; h += L) {
                    FloatVector v = FloatVector.fromArray(SPECIES, tile, t + h);
                    if (alpha != 1f) {
                        v = v.mul(alpha);
                    }
                    if (beta == 1f) {
                        v = FloatVector.fromArray(SPECIES, c, o + h).add(v);
                    } else if (beta != 0f) {
                        v = v.add(FloatVector.fromArray(SPECIES, c, o + h).mul(beta));
                    }
                    v.intoArray(c, o + h);
                }
            } else {
                for (int j = 0; j < cols; j++) {
                    float v = alpha == 1f ? tile[t + j] : alpha * tile[t + j];
                    if (beta == 1f) {
                        c[o + j] += v;
                    } else if (beta != 0f) {
                        c[o + j] = v + beta * c[o + j];
                    } else {
                        c[o + j] = v;
                    }
                }
            }
        }
    }

    /*
     * Micro-kernels: rows x 2 vectors of accumulators held in locals over the whole depth (C2 keeps them in
     * registers: 16 + 2 B vectors + 1 broadcast for the 8-row kernel, inside AVX-512's 32 and AVX2's 16 + spills of
     * none because the broadcast is folded into the FMA's memory operand).
     */
    private static void kernel8(float[] a, int ao, int rs, int ps, int d, float[] b, int bo, int bs, float[] out,
                                int oo, int os) {
        FloatVector z = FloatVector.zero(SPECIES);
        FloatVector c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z, c30 = z, c31 = z;
        FloatVector c40 = z, c41 = z, c50 = z, c51 = z, c60 = z, c61 = z, c70 = z, c71 = z;
        for (int p = 0; p < d; p++) {
            int o = bo + p * bs;
            FloatVector b0 = FloatVector.fromArray(SPECIES, b, o);
            FloatVector b1 = FloatVector.fromArray(SPECIES, b, o + L);
            int q = ao + p * ps;
            FloatVector x = FloatVector.broadcast(SPECIES, a[q]);
            c00 = x.fma(b0, c00);
            c01 = x.fma(b1, c01);
            x = FloatVector.broadcast(SPECIES, a[q + rs]);
            c10 = x.fma(b0, c10);
            c11 = x.fma(b1, c11);
            x = FloatVector.broadcast(SPECIES, a[q + 2 * rs]);
            c20 = x.fma(b0, c20);
            c21 = x.fma(b1, c21);
            x = FloatVector.broadcast(SPECIES, a[q + 3 * rs]);
            c30 = x.fma(b0, c30);
            c31 = x.fma(b1, c31);
            x = FloatVector.broadcast(SPECIES, a[q + 4 * rs]);
            c40 = x.fma(b0, c40);
            c41 = x.fma(b1, c41);
            x = FloatVector.broadcast(SPECIES, a[q + 5 * rs]);
            c50 = x.fma(b0, c50);
            c51 = x.fma(b1, c51);
            x = FloatVector.broadcast(SPECIES, a[q + 6 * rs]);
            c60 = x.fma(b0, c60);
            c61 = x.fma(b1, c61);
            x = FloatVector.broadcast(SPECIES, a[q + 7 * rs]);
            c70 = x.fma(b0, c70);
            c71 = x.fma(b1, c71);
        }
        c00.intoArray(out, oo);
        c01.intoArray(out, oo + L);
        c10.intoArray(out, oo + os);
        c11.intoArray(out, oo + os + L);
        c20.intoArray(out, oo + 2 * os);
        c21.intoArray(out, oo + 2 * os + L);
        c30.intoArray(out, oo + 3 * os);
        c31.intoArray(out, oo + 3 * os + L);
        c40.intoArray(out, oo + 4 * os);
        c41.intoArray(out, oo + 4 * os + L);
        c50.intoArray(out, oo + 5 * os);
        c51.intoArray(out, oo + 5 * os + L);
        c60.intoArray(out, oo + 6 * os);
        c61.intoArray(out, oo + 6 * os + L);
        c70.intoArray(out, oo + 7 * os);
        c71.intoArray(out, oo + 7 * os + L);
    }

    private static void kernel4(float[] a, int ao, int rs, int ps, int d, float[] b, int bo, int bs, float[] out,
                                int oo, int os) {
        FloatVector z = FloatVector.zero(SPECIES);
        FloatVector c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z, c30 = z, c31 = z;
        for (int p = 0; p < d; p++) {
            int o = bo + p * bs;
            FloatVector b0 = FloatVector.fromArray(SPECIES, b, o);
            FloatVector b1 = FloatVector.fromArray(SPECIES, b, o + L);
            int q = ao + p * ps;
            FloatVector x = FloatVector.broadcast(SPECIES, a[q]);
            c00 = x.fma(b0, c00);
            c01 = x.fma(b1, c01);
            x = FloatVector.broadcast(SPECIES, a[q + rs]);
            c10 = x.fma(b0, c10);
            c11 = x.fma(b1, c11);
            x = FloatVector.broadcast(SPECIES, a[q + 2 * rs]);
            c20 = x.fma(b0, c20);
            c21 = x.fma(b1, c21);
            x = FloatVector.broadcast(SPECIES, a[q + 3 * rs]);
            c30 = x.fma(b0, c30);
            c31 = x.fma(b1, c31);
        }
        c00.intoArray(out, oo);
        c01.intoArray(out, oo + L);
        c10.intoArray(out, oo + os);
        c11.intoArray(out, oo + os + L);
        c20.intoArray(out, oo + 2 * os);
        c21.intoArray(out, oo + 2 * os + L);
        c30.intoArray(out, oo + 3 * os);
        c31.intoArray(out, oo + 3 * os + L);
    }

    private static void kernel2(float[] a, int ao, int rs, int ps, int d, float[] b, int bo, int bs, float[] out,
                                int oo, int os) {
        FloatVector z = FloatVector.zero(SPECIES);
        FloatVector c00 = z, c01 = z, c10 = z, c11 = z;
        for (int p = 0; p < d; p++) {
            int o = bo + p * bs;
            FloatVector b0 = FloatVector.fromArray(SPECIES, b, o);
            FloatVector b1 = FloatVector.fromArray(SPECIES, b, o + L);
            int q = ao + p * ps;
            FloatVector x = FloatVector.broadcast(SPECIES, a[q]);
            c00 = x.fma(b0, c00);
            c01 = x.fma(b1, c01);
            x = FloatVector.broadcast(SPECIES, a[q + rs]);
            c10 = x.fma(b0, c10);
            c11 = x.fma(b1, c11);
        }
        c00.intoArray(out, oo);
        c01.intoArray(out, oo + L);
        c10.intoArray(out, oo + os);
        c11.intoArray(out, oo + os + L);
    }

    private static void kernel1(float[] a, int ao, int ps, int d, float[] b, int bo, int bs, float[] out, int oo) {
        FloatVector z = FloatVector.zero(SPECIES);
        FloatVector c00 = z, c01 = z;
        for (int p = 0; p < d; p++) {
            int o = bo + p * bs;
            FloatVector x = FloatVector.broadcast(SPECIES, a[ao + p * ps]);
            c00 = x.fma(FloatVector.fromArray(SPECIES, b, o), c00);
            c01 = x.fma(FloatVector.fromArray(SPECIES, b, o + L), c01);
        }
        c00.intoArray(out, oo);
        c01.intoArray(out, oo + L);
    }

    // ---------------------------------------------------------------- long-depth products (weight gradients)

    /**
     * {@code lanes[(i*n + j)*L + t] += sum over p = t (mod L) of A[i, p] * B[j, p]} for i < m, j < n, p < kp, with A
     * {@code (m, kp)} and B {@code (n, kp)} row-major along the depth and {@code kp} a multiple of {@link #L}: a
     * convolution's weight gradient {@code dY * col^T} without transposing either operand. Blocks of 4 x 3 outputs keep
     * 12 vector accumulators in registers while A and B stream along the depth (7 loads per 12 FMAs); outputs outside
     * the 4 x 3 grid take one accumulator each. The caller sums the lanes once, after every image of a chunk
     * ({@link #reduceLanes}), so the order of every sum is fixed by the shapes alone.
     */
    static void dotAccumulate(int m, int n, int kp, float[] a, int aOff, int lda, float[] b, int bOff, int ldb,
                              float[] lanes) {
        int m4 = m / 4 * 4;
        int n3 = n / 3 * 3;
        for (int i = 0; i < m4; i += 4) {
            for (int j = 0; j < n3; j += 3) {
                int bo = bOff + j * ldb;
                dot4x3(kp, a, aOff + i * lda, lda, b, bo, bo + ldb, bo + 2 * ldb, lanes, (i * n + j) * L, n * L);
            }
        }
        for (int i = 0; i < m; i++) {
            for (int j = i < m4 ? n3 : 0; j < n; j++) {
                dot1x1(kp, a, aOff + i * lda, b, bOff + j * ldb, lanes, (i * n + j) * L);
            }
        }
    }

    /**
     * {@link #dotAccumulate} with row {@code j} of B starting at {@code b[bRows[j]]} (rows that overlap, such as the
     * shifted windows of one image plane, read in place).
     */
    static void dotAccumulateRows(int m, int n, int kp, float[] a, int aOff, int lda, float[] b, int[] bRows,
                                  float[] lanes) {
        int m4 = m / 4 * 4;
        int n3 = n / 3 * 3;
        for (int i = 0; i < m4; i += 4) {
            for (int j = 0; j < n3; j += 3) {
                dot4x3(kp, a, aOff + i * lda, lda, b, bRows[j], bRows[j + 1], bRows[j + 2], lanes, (i * n + j) * L,
                        n * L);
            }
        }
        for (int i = 0; i < m; i++) {
            for (int j = i < m4 ? n3 : 0; j < n; j++) {
                dot1x1(kp, a, aOff + i * lda, b, bRows[j], lanes, (i * n + j) * L);
            }
        }
    }

    private static void dot4x3(int kp, float[] a, int ao, int lda, float[] b, int bo0, int bo1, int bo2,
                               float[] lanes, int lo, int rowStride) {
        FloatVector c00 = FloatVector.fromArray(SPECIES, lanes, lo);
        FloatVector c01 = FloatVector.fromArray(SPECIES, lanes, lo + L);
        FloatVector c02 = FloatVector.fromArray(SPECIES, lanes, lo + 2 * L);
        FloatVector c10 = FloatVector.fromArray(SPECIES, lanes, lo + rowStride);
        FloatVector c11 = FloatVector.fromArray(SPECIES, lanes, lo + rowStride + L);
        FloatVector c12 = FloatVector.fromArray(SPECIES, lanes, lo + rowStride + 2 * L);
        FloatVector c20 = FloatVector.fromArray(SPECIES, lanes, lo + 2 * rowStride);
        FloatVector c21 = FloatVector.fromArray(SPECIES, lanes, lo + 2 * rowStride + L);
        FloatVector c22 = FloatVector.fromArray(SPECIES, lanes, lo + 2 * rowStride + 2 * L);
        FloatVector c30 = FloatVector.fromArray(SPECIES, lanes, lo + 3 * rowStride);
        FloatVector c31 = FloatVector.fromArray(SPECIES, lanes, lo + 3 * rowStride + L);
        FloatVector c32 = FloatVector.fromArray(SPECIES, lanes, lo + 3 * rowStride + 2 * L);
        for (int p = 0; p < kp; p += L) {
            FloatVector b0 = FloatVector.fromArray(SPECIES, b, bo0 + p);
            FloatVector b1 = FloatVector.fromArray(SPECIES, b, bo1 + p);
            FloatVector b2 = FloatVector.fromArray(SPECIES, b, bo2 + p);
            FloatVector x = FloatVector.fromArray(SPECIES, a, ao + p);
            c00 = x.fma(b0, c00);
            c01 = x.fma(b1, c01);
            c02 = x.fma(b2, c02);
            x = FloatVector.fromArray(SPECIES, a, ao + lda + p);
            c10 = x.fma(b0, c10);
            c11 = x.fma(b1, c11);
            c12 = x.fma(b2, c12);
            x = FloatVector.fromArray(SPECIES, a, ao + 2 * lda + p);
            c20 = x.fma(b0, c20);
            c21 = x.fma(b1, c21);
            c22 = x.fma(b2, c22);
            x = FloatVector.fromArray(SPECIES, a, ao + 3 * lda + p);
            c30 = x.fma(b0, c30);
            c31 = x.fma(b1, c31);
            c32 = x.fma(b2, c32);
        }
        c00.intoArray(lanes, lo);
        c01.intoArray(lanes, lo + L);
        c02.intoArray(lanes, lo + 2 * L);
        c10.intoArray(lanes, lo + rowStride);
        c11.intoArray(lanes, lo + rowStride + L);
        c12.intoArray(lanes, lo + rowStride + 2 * L);
        c20.intoArray(lanes, lo + 2 * rowStride);
        c21.intoArray(lanes, lo + 2 * rowStride + L);
        c22.intoArray(lanes, lo + 2 * rowStride + 2 * L);
        c30.intoArray(lanes, lo + 3 * rowStride);
        c31.intoArray(lanes, lo + 3 * rowStride + L);
        c32.intoArray(lanes, lo + 3 * rowStride + 2 * L);
    }

    private static void dot1x1(int kp, float[] a, int ao, float[] b, int bo, float[] lanes, int lo) {
        FloatVector c = FloatVector.fromArray(SPECIES, lanes, lo);
        for (int p = 0; p < kp; p += L) {
            c = FloatVector.fromArray(SPECIES, a, ao + p).fma(FloatVector.fromArray(SPECIES, b, bo + p), c);
        }
        c.intoArray(lanes, lo);
    }

    /** {@code out[off + i] = sum of the L lanes of output i} (in double, fixed order) for {@code i < count}. */
    static void reduceLanes(float[] lanes, int count, float[] out, int off) {
        for (int i = 0; i < count; i++) {
            int o = i * L;
            double s0 = 0, s1 = 0;
            for (int t = 0; t < L; t += 2) {
                s0 += lanes[o + t];
                s1 += lanes[o + t + 1];
            }
            out[off + i] = (float) (s0 + s1);
        }
    }
}
