package dev.kiln.cpu;

import dev.kiln.backend.BinaryOp;
import dev.kiln.backend.ScalarOp;
import dev.kiln.backend.UnaryOp;

/**
 * Unary, scalar and broadcasting binary element-wise ops. Same-shape operands run one flat loop (split across
 * threads); broadcasting runs over the rows of a {@link BroadcastPlan} with an inner loop specialised for
 * vector-vector, vector-scalar and scalar-vector operands (row-vector and per-channel broadcasting).
 */
final class ElementwiseKernels {

    static final int GRAIN = 16384;

    private ElementwiseKernels() {
    }

    static void unary(UnaryOp op, float[] x, float[] y, int n, Parallel par) {
        par.parallelFor(n, GRAIN, (lo, hi) -> unaryRange(op, x, y, lo, hi));
    }

    private static void unaryRange(UnaryOp op, float[] x, float[] y, int lo, int hi) {
        switch (op) {
            case NEG -> {
                for (int i = lo; i < hi; i++) y[i] = -x[i];
            }
            case EXP -> {
                for (int i = lo; i < hi; i++) y[i] = (float) Math.exp(x[i]);
            }
            case LOG -> {
                for (int i = lo; i < hi; i++) y[i] = (float) Math.log(x[i]);
            }
            case SQRT -> {
                for (int i = lo; i < hi; i++) y[i] = (float) Math.sqrt(x[i]);
            }
            case ABS -> {
                for (int i = lo; i < hi; i++) y[i] = Math.abs(x[i]);
            }
            case SQUARE -> {
                for (int i = lo; i < hi; i++) y[i] = x[i] * x[i];
            }
            case RECIPROCAL -> {
                for (int i = lo; i < hi; i++) y[i] = 1f / x[i];
            }
            default -> throw new IllegalArgumentException("unsupported unary op " + op);
        }
    }

    static void scalar(ScalarOp op, float[] x, float s, float[] y, int n, Parallel par) {
        par.parallelFor(n, GRAIN, (lo, hi) -> scalarRange(op, x, s, y, lo, hi));
    }

    private static void scalarRange(ScalarOp op, float[] x, float s, float[] y, int lo, int hi) {
        switch (op) {
            case ADD -> {
                for (int i = lo; i < hi; i++) y[i] = x[i] + s;
            }
            case MUL -> {
                for (int i = lo; i < hi; i++) y[i] = x[i] * s;
            }
            case POW -> {
                if (s == 2f) {
                    for (int i = lo; i < hi; i++) y[i] = x[i] * x[i];
                } else if (s == 1f) {
                    if (x != y) System.arraycopy(x, lo, y, lo, hi - lo);
                } else {
                    double e = s;
                    for (int i = lo; i < hi; i++) y[i] = (float) Math.pow(x[i], e);
                }
            }
            case RSUB -> {
                for (int i = lo; i < hi; i++) y[i] = s - x[i];
            }
            case MAX -> {
                for (int i = lo; i < hi; i++) y[i] = Math.max(x[i], s);
            }
            case MIN -> {
                for (int i = lo; i < hi; i++) y[i] = Math.min(x[i], s);
            }
            default -> throw new IllegalArgumentException("unsupported scalar op " + op);
        }
    }

    static void axpy(float alpha, float[] x, float[] y, int n, Parallel par) {
        par.parallelFor(n, GRAIN, (lo, hi) -> {
            for (int i = lo; i < hi; i++) {
                y[i] += alpha * x[i];
            }
        });
    }

    static void binary(BinaryOp op, float[] a, int[] aShape, float[] b, int[] bShape, float[] out, int[] outShape,
                       Parallel par) {
        long total = BroadcastPlan.volume(outShape);
        if (total == 0) {
            return;
        }
        if (java.util.Arrays.equals(aShape, outShape) && java.util.Arrays.equals(bShape, outShape)) {
            par.parallelFor((int) total, GRAIN, (lo, hi) -> vvFlat(op, a, b, out, lo, hi));
            return;
        }
        BroadcastPlan plan = new BroadcastPlan(outShape, aShape, bShape);
        int inner = plan.inner;
        int as = plan.innerStride(0);
        int bs = plan.innerStride(1);
        par.parallelFor(plan.rows, Math.max(1, GRAIN / inner), (lo, hi) -> {
            for (int r = lo; r < hi; r++) {
                int oo = r * inner;
                int ao = plan.rowOffset(0, r);
                int bo = plan.rowOffset(1, r);
                if (as == 1 && bs == 1) {
                    vv(op, a, ao, b, bo, out, oo, inner);
                } else if (as == 1) {
                    vs(op, a, ao, b[bo], out, oo, inner);
                } else if (bs == 1) {
                    sv(op, a[ao], b, bo, out, oo, inner);
                } else {
                    java.util.Arrays.fill(out, oo, oo + inner, apply(op, a[ao], b[bo]));
                }
            }
        });
    }

    static float apply(BinaryOp op, float x, float y) {
        return switch (op) {
            case ADD -> x + y;
            case SUB -> x - y;
            case MUL -> x * y;
            case DIV -> x / y;
            case MAX -> Math.max(x, y);
            case MIN -> Math.min(x, y);
        };
    }

    /** Same index in every array: the form C2 vectorises. */
    private static void vvFlat(BinaryOp op, float[] a, float[] b, float[] o, int lo, int hi) {
        switch (op) {
            case ADD -> {
                for (int i = lo; i < hi; i++) o[i] = a[i] + b[i];
            }
            case SUB -> {
                for (int i = lo; i < hi; i++) o[i] = a[i] - b[i];
            }
            case MUL -> {
                for (int i = lo; i < hi; i++) o[i] = a[i] * b[i];
            }
            case DIV -> {
                for (int i = lo; i < hi; i++) o[i] = a[i] / b[i];
            }
            case MAX -> {
                for (int i = lo; i < hi; i++) o[i] = Math.max(a[i], b[i]);
            }
            case MIN -> {
                for (int i = lo; i < hi; i++) o[i] = Math.min(a[i], b[i]);
            }
        }
    }

    private static void vv(BinaryOp op, float[] a, int ao, float[] b, int bo, float[] o, int oo, int n) {
        switch (op) {
            case ADD -> {
                for (int i = 0; i < n; i++) o[oo + i] = a[ao + i] + b[bo + i];
            }
            case SUB -> {
                for (int i = 0; i < n; i++) o[oo + i] = a[ao + i] - b[bo + i];
            }
            case MUL -> {
                for (int i = 0; i < n; i++) o[oo + i] = a[ao + i] * b[bo + i];
            }
            case DIV -> {
                for (int i = 0; i < n; i++) o[oo + i] = a[ao + i] / b[bo + i];
            }
            case MAX -> {
                for (int i = 0; i < n; i++) o[oo + i] = Math.max(a[ao + i], b[bo + i]);
            }
            case MIN -> {
                for (int i = 0; i < n; i++) o[oo + i] = Math.min(a[ao + i], b[bo + i]);
            }
        }
    }

    private static void vs(BinaryOp op, float[] a, int ao, float s, float[] o, int oo, int n) {
        switch (op) {
            case ADD -> {
                for (int i = 0; i < n; i++) o[oo + i] = a[ao + i] + s;
            }
            case SUB -> {
                for (int i = 0; i < n; i++) o[oo + i] = a[ao + i] - s;
            }
            case MUL -> {
                for (int i = 0; i < n; i++) o[oo + i] = a[ao + i] * s;
            }
            case DIV -> {
                for (int i = 0; i < n; i++) o[oo + i] = a[ao + i] / s;
            }
            case MAX -> {
                for (int i = 0; i < n; i++) o[oo + i] = Math.max(a[ao + i], s);
            }
            case MIN -> {
                for (int i = 0; i < n; i++) o[oo + i] = Math.min(a[ao + i], s);
            }
        }
    }

    private static void sv(BinaryOp op, float s, float[] b, int bo, float[] o, int oo, int n) {
        switch (op) {
            case ADD -> {
                for (int i = 0; i < n; i++) o[oo + i] = s + b[bo + i];
            }
            case SUB -> {
                for (int i = 0; i < n; i++) o[oo + i] = s - b[bo + i];
            }
            case MUL -> {
                for (int i = 0; i < n; i++) o[oo + i] = s * b[bo + i];
            }
            case DIV -> {
                for (int i = 0; i < n; i++) o[oo + i] = s / b[bo + i];
            }
            case MAX -> {
                for (int i = 0; i < n; i++) o[oo + i] = Math.max(s, b[bo + i]);
            }
            case MIN -> {
                for (int i = 0; i < n; i++) o[oo + i] = Math.min(s, b[bo + i]);
            }
        }
    }
}
