package dev.kiln.cpu;

/** sumTo, broadcastTo and argmax; sums accumulate in double. */
final class ReductionKernels {

    private ReductionKernels() {
    }

    /** Double sum of {@code x[off .. off+len)}, four independent accumulators. */
    static double sum(float[] x, int off, int len) {
        double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        int i = 0;
        for (; i + 4 <= len; i += 4) {
            s0 += x[off + i];
            s1 += x[off + i + 1];
            s2 += x[off + i + 2];
            s3 += x[off + i + 3];
        }
        for (; i < len; i++) {
            s0 += x[off + i];
        }
        return (s0 + s1) + (s2 + s3);
    }

    /** Iterates over x (full shape); out (reduced shape) is read through the broadcast plan, accumulating in double. */
    static void sumTo(float[] x, int[] xShape, float[] out, int[] outShape, Scratch s) {
        int outLen = (int) BroadcastPlan.volume(outShape);
        if (java.util.Arrays.equals(xShape, outShape)) {
            System.arraycopy(x, 0, out, 0, outLen);
            return;
        }
        long xLen = BroadcastPlan.volume(xShape);
        double[] acc = s.dacc(outLen);
        java.util.Arrays.fill(acc, 0, outLen, 0.0);
        if (xLen > 0) {
            BroadcastPlan plan = new BroadcastPlan(xShape, xShape, outShape);
            int inner = plan.inner;
            boolean reduceInner = plan.innerStride(1) == 0;
            for (int r = 0; r < plan.rows; r++) {
                int xo = plan.rowOffset(0, r);
                int oo = plan.rowOffset(1, r);
                if (reduceInner) {
                    acc[oo] += sum(x, xo, inner);
                } else {
                    for (int j = 0; j < inner; j++) {
                        acc[oo + j] += x[xo + j];
                    }
                }
            }
        }
        for (int i = 0; i < outLen; i++) {
            out[i] = (float) acc[i];
        }
    }

    static void broadcastTo(float[] x, int[] xShape, float[] out, int[] outShape, Parallel par) {
        long outLen = BroadcastPlan.volume(outShape);
        if (outLen == 0) {
            return;
        }
        BroadcastPlan plan = new BroadcastPlan(outShape, outShape, xShape);
        int inner = plan.inner;
        boolean fill = plan.innerStride(1) == 0;
        par.parallelFor(plan.rows, Math.max(1, 32768 / inner), (lo, hi) -> {
            for (int r = lo; r < hi; r++) {
                int oo = plan.rowOffset(0, r);
                int xo = plan.rowOffset(1, r);
                if (fill) {
                    java.util.Arrays.fill(out, oo, oo + inner, x[xo]);
                } else {
                    System.arraycopy(x, xo, out, oo, inner);
                }
            }
        });
    }

    /** First maximum along the middle dimension; NaN counts as the maximum (the first NaN wins). */
    static void argmax(float[] x, int outer, int extent, int inner, float[] out) {
        for (int o = 0; o < outer; o++) {
            int base = o * extent * inner;
            for (int i = 0; i < inner; i++) {
                int best = 0;
                float bv = x[base + i];
                if (bv == bv) {
                    for (int e = 1; e < extent; e++) {
                        float v = x[base + e * inner + i];
                        if (v > bv || v != v) {
                            bv = v;
                            best = e;
                            if (v != v) {
                                break;
                            }
                        }
                    }
                }
                out[o * inner + i] = best;
            }
        }
    }
}
