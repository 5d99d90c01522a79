package dev.kiln.onnx;

import java.util.Arrays;

/**
 * The shape arithmetic of ONNX graphs on {@link HostArray}s, as the ONNX operators define it: {@code Shape},
 * {@code Gather}, {@code Unsqueeze}/{@code Squeeze}, {@code Concat}, {@code Reshape}'s target and element-wise integer
 * arithmetic. Bad arguments throw {@link IllegalArgumentException} (a load-time fold turns it into a format error
 * naming the node); every result is bounded by {@link Onnx#MAX_FOLDED_VALUES}.
 */
final class HostOps {

    private HostOps() {
    }

    static HostArray shape(int[] dims, int start, Integer end) {
        int r = dims.length;
        int s = clampAxis(start, r);
        int e = end == null ? r : clampAxis(end, r);
        long[] out = new long[Math.max(0, e - s)];
        for (int i = 0; i < out.length; i++) {
            out[i] = dims[s + i];
        }
        return HostArray.longs(out, out.length);
    }

    private static int clampAxis(int axis, int rank) {
        int a = axis < 0 ? axis + rank : axis;
        return Math.max(0, Math.min(rank, a));
    }

    static int axis(long axis, int rank, String what) {
        if (axis < -rank || axis >= Math.max(rank, 1)) {
            throw new IllegalArgumentException(what + " axis " + axis + " is out of range for rank " + rank);
        }
        return (int) (axis < 0 ? axis + rank : axis);
    }

    static HostArray gather(HostArray data, HostArray indices, int axisAttr) {
        int[] ds = data.shape();
        if (ds.length == 0) {
            throw new IllegalArgumentException("Gather from a scalar");
        }
        int axis = axis(axisAttr, ds.length, "Gather");
        long[] idx = indices.toLongs();
        int dim = ds[axis];
        long outer = 1;
        for (int i = 0; i < axis; i++) {
            outer *= ds[i];
        }
        long inner = 1;
        for (int i = axis + 1; i < ds.length; i++) {
            inner *= ds[i];
        }
        long total = outer * idx.length * inner;
        check(total);
        int[] is = indices.shape();
        int[] outShape = new int[ds.length - 1 + is.length];
        System.arraycopy(ds, 0, outShape, 0, axis);
        System.arraycopy(is, 0, outShape, axis, is.length);
        System.arraycopy(ds, axis + 1, outShape, axis + is.length, ds.length - axis - 1);
        int[] src = new int[(int) total];
        if (total == 0) {
            return data.select(src, outShape);
        }
        int k = 0;
        for (int o = 0; o < outer; o++) {
            for (long j : idx) {
                long at = j < 0 ? j + dim : j;
                if (at < 0 || at >= dim) {
                    throw new IllegalArgumentException("Gather index " + j + " is out of range for dimension " + dim);
                }
                for (int in = 0; in < inner; in++) {
                    src[k++] = (int) ((o * dim + at) * inner + in);
                }
            }
        }
        return data.select(src, outShape);
    }

    static int[] unsqueezeShape(int[] dims, long[] axes) {
        if (axes == null || axes.length == 0) {
            throw new IllegalArgumentException("Unsqueeze needs axes");
        }
        int rank = dims.length + axes.length;
        boolean[] inserted = new boolean[rank];
        for (long a : axes) {
            int at = axis(a, rank, "Unsqueeze");
            if (inserted[at]) {
                throw new IllegalArgumentException("Unsqueeze axis " + a + " is given twice");
            }
            inserted[at] = true;
        }
        int[] out = new int[rank];
        int k = 0;
        for (int i = 0; i < rank; i++) {
            out[i] = inserted[i] ? 1 : dims[k++];
        }
        return out;
    }

    static int[] squeezeShape(int[] dims, long[] axes) {
        boolean[] drop = new boolean[dims.length];
        if (axes == null) {
            for (int i = 0; i < dims.length; i++) {
                drop[i] = dims[i] == 1;
            }
        } else {
            for (long a : axes) {
                int at = axis(a, dims.length, "Squeeze");
                if (dims[at] != 1) {
                    throw new IllegalArgumentException("Squeeze axis " + a + " has size " + dims[at] + ", not 1");
                }
                drop[at] = true;
            }
        }
        return java.util.stream.IntStream.range(0, dims.length).filter(i -> !drop[i]).map(i -> dims[i]).toArray();
    }

    static int[] flattenShape(int[] dims, int axisAttr) {
        int axis = axisAttr < 0 ? axisAttr + dims.length : axisAttr;
        if (axis < 0 || axis > dims.length) {
            throw new IllegalArgumentException("Flatten axis " + axisAttr + " is out of range for rank " + dims.length);
        }
        long a = 1;
        long b = 1;
        for (int i = 0; i < dims.length; i++) {
            if (i < axis) {
                a *= dims[i];
            } else {
                b *= dims[i];
            }
        }
        return new int[]{(int) a, (int) b};
    }

    /** ONNX Reshape's target: 0 copies the input's dimension (unless allowzero), one -1 takes what is left. */
    static int[] reshapeTarget(int[] dims, long[] shape, boolean allowZero) {
        if (shape.length > Onnx.MAX_RANK) {
            throw new IllegalArgumentException("Reshape to rank " + shape.length + ", more than " + Onnx.MAX_RANK);
        }
        long numel = 1;
        for (int d : dims) {
            numel *= d;
        }
        int[] out = new int[shape.length];
        int infer = -1;
        long known = 1;
        for (int i = 0; i < shape.length; i++) {
            long v = shape[i];
            if (v == -1) {
                if (infer >= 0) {
                    throw new IllegalArgumentException("Reshape target " + Arrays.toString(shape) + " has two -1");
                }
                infer = i;
                continue;
            }
            if (v == 0 && !allowZero) {
                if (i >= dims.length) {
                    throw new IllegalArgumentException("Reshape target " + Arrays.toString(shape) + " copies dimension "
                            + i + " of an input of rank " + dims.length);
                }
                v = dims[i];
            }
            if (v < 0 || v > Integer.MAX_VALUE) {
                throw new IllegalArgumentException("Reshape target " + Arrays.toString(shape) + " holds " + shape[i]);
            }
            out[i] = (int) v;
            known *= v;
            if (known > Integer.MAX_VALUE) {
                throw new IllegalArgumentException("Reshape target " + Arrays.toString(shape) + " is too large");
            }
        }
        if (infer >= 0) {
            if (known == 0 || numel % known != 0) {
                throw new IllegalArgumentException("cannot reshape " + Arrays.toString(dims) + " to " + Arrays.toString(shape));
            }
            out[infer] = (int) (numel / known);
            known *= out[infer];
        }
        if (known != numel) {
            throw new IllegalArgumentException("cannot reshape " + Arrays.toString(dims) + " (" + numel + " values) to "
                    + Arrays.toString(shape));
        }
        return out;
    }

    static HostArray concat(HostArray[] parts, int axisAttr) {
        int rank = parts[0].rank();
        if (rank == 0) {
            throw new IllegalArgumentException("Concat of scalars");
        }
        int axis = axis(axisAttr, rank, "Concat");
        HostArray.Kind kind = parts[0].kind();
        int[] outShape = parts[0].shape();
        long along = 0;
        for (HostArray h : parts) {
            int[] s = h.shape();
            if (s.length != rank || h.kind() != kind) {
                throw new IllegalArgumentException("Concat of " + Arrays.toString(outShape) + " and " + Arrays.toString(s));
            }
            for (int d = 0; d < rank; d++) {
                if (d != axis && s[d] != outShape[d]) {
                    throw new IllegalArgumentException("Concat of " + Arrays.toString(outShape) + " and " + Arrays.toString(s));
                }
            }
            along += s[axis];
        }
        if (along > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("Concat result is too large");
        }
        outShape[axis] = (int) along;
        long outer = 1;
        for (int d = 0; d < axis; d++) {
            outer *= outShape[d];
        }
        long inner = 1;
        for (int d = axis + 1; d < rank; d++) {
            inner *= outShape[d];
        }
        long total = outer * along * inner;
        check(total);
        double[] out = new double[(int) total];
        if (total == 0) {
            return of(kind, out, outShape);
        }
        int k = 0;
        for (int o = 0; o < outer; o++) {
            for (HostArray h : parts) {
                int chunk = (int) (h.shape()[axis] * inner);
                for (int i = 0; i < chunk; i++) {
                    out[k++] = h.get(o * chunk + i);
                }
            }
        }
        return of(kind, out, outShape);
    }

    /** Element-wise Add, Sub, Mul, Div with NumPy broadcasting; integer division truncates. */
    static HostArray arithmetic(String op, HostArray a, HostArray b) {
        int[] as = a.shape();
        int[] bs = b.shape();
        int rank = Math.max(as.length, bs.length);
        int[] out = new int[rank];
        for (int i = 0; i < rank; i++) {
            int da = i - (rank - as.length) >= 0 ? as[i - (rank - as.length)] : 1;
            int db = i - (rank - bs.length) >= 0 ? bs[i - (rank - bs.length)] : 1;
            if (da != db && da != 1 && db != 1) {
                throw new IllegalArgumentException(op + " of shapes " + Arrays.toString(as) + " and " + Arrays.toString(bs)
                        + " that do not broadcast");
            }
            out[i] = da == 1 ? db : da;
        }
        long total = 1;
        for (int d : out) {
            total = Math.min(total * d, Onnx.MAX_FOLDED_VALUES + 1L);
        }
        check(total);
        boolean floats = a.kind() == HostArray.Kind.FLOAT || b.kind() == HostArray.Kind.FLOAT;
        double[] v = new double[(int) total];
        int[] idx = new int[rank];
        for (int i = 0; i < v.length; i++) {
            double x = a.get(offset(idx, as, rank));
            double y = b.get(offset(idx, bs, rank));
            v[i] = switch (op) {
                case "Add" -> x + y;
                case "Sub" -> x - y;
                case "Mul" -> x * y;
                default -> {
                    if (!floats && y == 0) {
                        throw new IllegalArgumentException("integer division by zero");
                    }
                    yield floats ? x / y : (double) ((long) x / (long) y);
                }
            };
            for (int d = rank - 1; d >= 0; d--) {
                if (++idx[d] < out[d]) {
                    break;
                }
                idx[d] = 0;
            }
        }
        return of(floats ? HostArray.Kind.FLOAT : HostArray.Kind.INT64, v, out);
    }

    private static int offset(int[] idx, int[] shape, int rank) {
        int off = 0;
        int lead = rank - shape.length;
        for (int d = 0; d < shape.length; d++) {
            off = off * shape[d] + (shape[d] == 1 ? 0 : idx[d + lead]);
        }
        return off;
    }

    private static HostArray of(HostArray.Kind kind, double[] v, int[] shape) {
        if (kind == HostArray.Kind.FLOAT) {
            float[] f = new float[v.length];
            for (int i = 0; i < v.length; i++) {
                f[i] = (float) v[i];
            }
            return HostArray.floats(f, shape);
        }
        long[] l = new long[v.length];
        for (int i = 0; i < v.length; i++) {
            l[i] = (long) v[i];
        }
        return HostArray.longs(l, shape);
    }

    private static void check(long values) {
        if (values > Onnx.MAX_FOLDED_VALUES) {
            throw new IllegalArgumentException("a shape computation of " + values + " values, more than "
                    + Onnx.MAX_FOLDED_VALUES + " (Onnx.MAX_FOLDED_VALUES)");
        }
    }
}
