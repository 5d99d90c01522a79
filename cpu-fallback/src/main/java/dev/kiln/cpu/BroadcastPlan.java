package dev.kiln.cpu;

/**
 * Iteration plan for an output of shape {@code outShape} read through operands of broadcastable shapes: dimensions
 * of size 1 in the output are dropped and adjacent dimensions that every operand walks the same way are merged, so
 * the innermost dimension is as long as possible. Each operand then has stride 1 or 0 along the inner dimension.
 */
final class BroadcastPlan {

    /** Collapsed output dimensions, outermost first; at least one. */
    final int[] dims;
    /** {@code strides[op][d]}: element stride of operand {@code op} along collapsed dimension {@code d}. */
    final int[][] strides;
    final int inner;
    final int rows;

    BroadcastPlan(int[] outShape, int[]... operandShapes) {
        int rank = outShape.length;
        int ops = operandShapes.length;
        int[][] st = new int[ops][rank];
        for (int o = 0; o < ops; o++) {
            int[] sh = operandShapes[o];
            int stride = 1;
            for (int d = rank - 1; d >= 0; d--) {
                st[o][d] = sh[d] == 1 ? 0 : stride;
                stride *= sh[d];
            }
        }
        int[] dimsTmp = new int[Math.max(1, rank)];
        int[][] stTmp = new int[ops][Math.max(1, rank)];
        int r = 0;
        for (int d = 0; d < rank; d++) {
            if (outShape[d] == 1) {
                continue;
            }
            if (r > 0) {
                boolean merge = true;
                for (int o = 0; o < ops; o++) {
                    if (stTmp[o][r - 1] != st[o][d] * outShape[d]) {
                        merge = false;
                        break;
                    }
                }
                if (merge) {
                    dimsTmp[r - 1] *= outShape[d];
                    for (int o = 0; o < ops; o++) {
                        stTmp[o][r - 1] = st[o][d];
                    }
                    continue;
                }
            }
            dimsTmp[r] = outShape[d];
            for (int o = 0; o < ops; o++) {
                stTmp[o][r] = st[o][d];
            }
            r++;
        }
        if (r == 0) {
            dimsTmp[0] = 1;
            for (int o = 0; o < ops; o++) {
                stTmp[o][0] = 0;
            }
            r = 1;
        }
        dims = java.util.Arrays.copyOf(dimsTmp, r);
        strides = new int[ops][];
        for (int o = 0; o < ops; o++) {
            strides[o] = java.util.Arrays.copyOf(stTmp[o], r);
        }
        inner = dims[r - 1];
        int rw = 1;
        for (int d = 0; d < r - 1; d++) {
            rw *= dims[d];
        }
        rows = rw;
    }

    /** Inner stride (0 or 1) of operand {@code op}. */
    int innerStride(int op) {
        return strides[op][dims.length - 1];
    }

    /** Offset of operand {@code op} at the start of inner row {@code row}. */
    int rowOffset(int op, int row) {
        int off = 0;
        int[] s = strides[op];
        for (int d = dims.length - 2; d >= 0; d--) {
            int i = row % dims[d];
            row /= dims[d];
            off += i * s[d];
        }
        return off;
    }

    static long volume(int[] shape) {
        long v = 1;
        for (int s : shape) {
            v *= s;
        }
        return v;
    }
}
