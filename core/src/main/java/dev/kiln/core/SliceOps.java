package dev.kiln.core;

import dev.kiln.backend.Backend;
import dev.kiln.backend.Buffer;

import java.util.List;

/**
 * {@code narrow}, {@code cat} and {@code stack} with their backward, all on {@link Backend#copySlice}: a tensor viewed
 * as {@code (outer, extent, inner)} around the dimension they work along. Results are new contiguous tensors (Kiln
 * has no strided views), so a narrowed tensor does not share storage with its source, unlike PyTorch's view.
 */
final class SliceOps {

    private SliceOps() {
    }

    private static int outer(int[] shape, int d) {
        int n = 1;
        for (int i = 0; i < d; i++) {
            n *= shape[i];
        }
        return n;
    }

    private static int inner(int[] shape, int d) {
        int n = 1;
        for (int i = d + 1; i < shape.length; i++) {
            n *= shape[i];
        }
        return n;
    }

    /** {@code torch.narrow}: {@code length} entries of dimension {@code dim} from {@code start} (negative counts from the end). */
    static Tensor narrow(Tensor x, int dim, int start, int length) {
        int[] shape = x.shape();
        if (shape.length == 0) {
            throw new IllegalArgumentException("narrow: a 0-d tensor has no dimension to narrow");
        }
        int d = Shapes.dim(dim, shape.length);
        int size = shape[d];
        int s = start < 0 ? start + size : start;
        if (s < 0 || s > size || length < 0 || (long) s + length > size) {
            throw new IndexOutOfBoundsException("narrow: start " + start + " and length " + length + " do not fit in"
                    + " dimension " + dim + " of size " + size + " (shape " + Shapes.toString(shape) + ")");
        }
        int[] outShape = shape.clone();
        outShape[d] = length;
        int outer = outer(shape, d);
        int inner = inner(shape, d);
        Backend be = x.device().backend();
        Buffer out = be.allocateUninitialized(Shapes.numel(outShape));
        try {
            be.copySlice(x.buffer(), outer, size, s, out, length, 0, length, inner);
        } catch (RuntimeException e) {
            out.close();
            throw e;
        }
        return Tensor.fromOp("narrow", x.device(), out, outShape, g -> {
            // the gradient of a slice: zeros with g in the slice's place
            Buffer dx = be.allocate(Shapes.numel(shape));
            be.copySlice(g.buffer(), outer, length, 0, dx, size, s, length, inner);
            return new Tensor[]{Tensor.wrap(x.device(), dx, shape)};
        }, x).recordOpAttributes(java.util.Map.of("dim", d, "start", s, "length", length));
    }

    /** Python's {@code x[..., start:end]} along {@code dim}: negative bounds count from the end, bounds are clamped. */
    static Tensor slice(Tensor x, int dim, int start, int end) {
        int[] shape = x.shape();
        if (shape.length == 0) {
            throw new IllegalArgumentException("slice: a 0-d tensor has no dimension to slice");
        }
        int d = Shapes.dim(dim, shape.length);
        int size = shape[d];
        int s = clamp(start < 0 ? start + size : start, size);
        int e = clamp(end < 0 ? end + size : end, size);
        return narrow(x, d, s, Math.max(0, e - s));
    }

    private static int clamp(int i, int size) {
        return Math.max(0, Math.min(i, size));
    }

    /** {@code torch.cat}: the tensors joined along {@code dim}; every other dimension must agree. */
    static Tensor cat(List<Tensor> tensors, int dim) {
        if (tensors == null || tensors.isEmpty()) {
            throw new IllegalArgumentException("cat: expected a non-empty list of tensors");
        }
        Tensor first = tensors.get(0);
        if (first == null) {
            throw new IllegalArgumentException("cat: tensor 0 is null");
        }
        int[] base = first.shape();
        if (base.length == 0) {
            throw new IllegalArgumentException("cat: zero-dimensional tensor 0 cannot be concatenated");
        }
        int d = Shapes.dim(dim, base.length);
        long total = 0;
        for (int k = 0; k < tensors.size(); k++) {
            Tensor t = tensors.get(k);
            if (t == null) {
                throw new IllegalArgumentException("cat: tensor " + k + " is null");
            }
            first.requireSameDevice(t, "cat");
            int[] s = t.shape();
            boolean same = s.length == base.length;
            for (int i = 0; same && i < s.length; i++) {
                same = i == d || s[i] == base[i];
            }
            if (!same) {
                throw new IllegalArgumentException("cat: tensor " + k + " has shape " + Shapes.toString(s)
                        + ", which does not match tensor 0's " + Shapes.toString(base) + " outside dimension " + dim);
            }
            total += s[d];
        }
        if (total > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("cat: dimension " + dim + " would have " + total + " entries");
        }
        int extent = (int) total;
        int[] outShape = base.clone();
        outShape[d] = extent;
        int outer = outer(base, d);
        int inner = inner(base, d);
        Backend be = first.device().backend();
        Buffer out = be.allocateUninitialized(Shapes.numel(outShape));
        int[] starts = new int[tensors.size()];
        try {
            int at = 0;
            for (int k = 0; k < tensors.size(); k++) {
                int len = tensors.get(k).shape()[d];
                starts[k] = at;
                be.copySlice(tensors.get(k).buffer(), outer, len, 0, out, extent, at, len, inner);
                at += len;
            }
        } catch (RuntimeException e) {
            out.close();
            throw e;
        }
        Tensor[] inputs = tensors.toArray(new Tensor[0]);
        return Tensor.fromOp("cat", first.device(), out, outShape, g -> {
            Tensor[] grads = new Tensor[inputs.length];
            for (int k = 0; k < inputs.length; k++) {
                if (inputs[k].requiresGrad()) {
                    int[] ks = inputs[k].shape();
                    Buffer dk = be.allocateUninitialized(Shapes.numel(ks));
                    be.copySlice(g.buffer(), outer, extent, starts[k], dk, ks[d], 0, ks[d], inner);
                    grads[k] = Tensor.wrap(first.device(), dk, ks);
                }
            }
            return grads;
        }, inputs).recordOpAttributes(java.util.Map.of("dim", d));
    }

    /** {@code torch.stack}: tensors of one shape joined along a new dimension {@code dim}. */
    static Tensor stack(List<Tensor> tensors, int dim) {
        if (tensors == null || tensors.isEmpty()) {
            throw new IllegalArgumentException("stack: expected a non-empty list of tensors");
        }
        if (tensors.get(0) == null) {
            throw new IllegalArgumentException("stack: tensor 0 is null");
        }
        int[] base = tensors.get(0).shape();
        int d = Shapes.dim(dim, base.length + 1);
        Tensor[] expanded = new Tensor[tensors.size()];
        for (int k = 0; k < expanded.length; k++) {
            Tensor t = tensors.get(k);
            if (t == null) {
                throw new IllegalArgumentException("stack: tensor " + k + " is null");
            }
            if (!java.util.Arrays.equals(t.shape(), base)) {
                throw new IllegalArgumentException("stack: tensor " + k + " has shape " + Shapes.toString(t.shape())
                        + ", tensor 0 has " + Shapes.toString(base) + "; stack needs equal shapes");
            }
            expanded[k] = unsqueeze(t, d);
        }
        return cat(List.of(expanded), d);
    }

    /** A dimension of size 1 inserted at {@code dim} (in {@code [-(rank+1), rank]}); shares storage, differentiable. */
    static Tensor unsqueeze(Tensor x, int dim) {
        int[] shape = x.shape();
        int d = Shapes.dim(dim, shape.length + 1);
        int[] out = new int[shape.length + 1];
        for (int i = 0, j = 0; i < out.length; i++) {
            out[i] = i == d ? 1 : shape[j++];
        }
        return x.reshape(out);
    }
}
