package dev.kiln.core;

import java.util.Arrays;

/** Shape arithmetic shared by tensors and layers. */
public final class Shapes {

    private Shapes() {
    }

    public static long numel(int[] shape) {
        long n = 1;
        for (int d : shape) {
            n *= d;
        }
        return n;
    }

    /** "(64, 1, 28, 28)" — the form used in every shape error message. */
    public static String toString(int[] shape) {
        StringBuilder sb = new StringBuilder("(");
        for (int i = 0; i < shape.length; i++) {
            if (i > 0) {
                sb.append(", ");
            }
            sb.append(shape[i]);
        }
        if (shape.length == 1) {
            sb.append(',');
        }
        return sb.append(')').toString();
    }

    static void checkValid(int[] shape) {
        for (int d : shape) {
            if (d < 0) {
                throw new IllegalArgumentException("negative dimension in shape " + toString(shape));
            }
        }
        if (numel(shape) > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("shape " + toString(shape) + " has more than 2^31-1 elements");
        }
    }

    /** Left-pads {@code shape} with ones up to {@code rank}. */
    public static int[] padLeft(int[] shape, int rank) {
        if (shape.length == rank) {
            return shape;
        }
        int[] out = new int[rank];
        Arrays.fill(out, 1);
        System.arraycopy(shape, 0, out, rank - shape.length, shape.length);
        return out;
    }

    /** NumPy broadcasting of two shapes, or an exception naming both. */
    public static int[] broadcast(int[] a, int[] b) {
        int rank = Math.max(a.length, b.length);
        int[] pa = padLeft(a, rank);
        int[] pb = padLeft(b, rank);
        int[] out = new int[rank];
        for (int i = 0; i < rank; i++) {
            if (pa[i] == pb[i] || pb[i] == 1) {
                out[i] = pa[i];
            } else if (pa[i] == 1) {
                out[i] = pb[i];
            } else {
                throw new IllegalArgumentException("shapes " + toString(a) + " and " + toString(b)
                        + " cannot be broadcast: dimension " + i + " is " + pa[i] + " vs " + pb[i]);
            }
        }
        return out;
    }

    /** Resolves a single -1 in a reshape target against {@code numel}, or throws naming both shapes. */
    static int[] resolveReshape(int[] from, int[] to) {
        long numel = numel(from);
        int inferred = -1;
        long known = 1;
        for (int i = 0; i < to.length; i++) {
            if (to[i] == -1) {
                if (inferred >= 0) {
                    throw new IllegalArgumentException("reshape " + toString(to) + ": only one dimension can be -1");
                }
                inferred = i;
            } else if (to[i] < 0) {
                throw new IllegalArgumentException("reshape " + toString(to) + ": invalid dimension " + to[i]);
            } else {
                known *= to[i];
            }
        }
        int[] out = to.clone();
        if (inferred >= 0) {
            if (known == 0 || numel % known != 0) {
                throw new IllegalArgumentException("shape " + toString(to) + " is invalid for input of shape "
                        + toString(from) + " (" + numel + " elements)");
            }
            out[inferred] = (int) (numel / known);
        } else if (known != numel) {
            throw new IllegalArgumentException("shape " + toString(to) + " is invalid for input of shape "
                    + toString(from) + " (" + numel + " elements)");
        }
        return out;
    }

    /** Normalises a possibly negative dimension index, PyTorch style. */
    static int dim(int dim, int rank) {
        int d = dim < 0 ? dim + rank : dim;
        if (d < 0 || d >= rank) {
            throw new IndexOutOfBoundsException("dimension " + dim + " out of range for a tensor of rank " + rank);
        }
        return d;
    }
}
