package dev.kiln.onnx;

import java.util.Arrays;

/**
 * A value of an ONNX graph kept on the host: an initializer or constant as read from the file, or a small integer
 * vector computed from tensor shapes (the {@code Shape -> Gather -> Unsqueeze -> Concat -> Reshape} chains exporters
 * write for flattening). Floats stay float32; every integer type ONNX uses for shapes and indices is held as int64.
 * Immutable: a reshape shares the data array.
 */
final class HostArray {

    enum Kind { FLOAT, INT64 }

    private final Kind kind;
    private final int[] shape;
    private final float[] floats;
    private final long[] longs;

    private HostArray(Kind kind, int[] shape, float[] floats, long[] longs) {
        this.kind = kind;
        this.shape = shape;
        this.floats = floats;
        this.longs = longs;
    }

    static HostArray floats(float[] data, int... shape) {
        return new HostArray(Kind.FLOAT, shape.clone(), data, null);
    }

    static HostArray longs(long[] data, int... shape) {
        return new HostArray(Kind.INT64, shape.clone(), null, data);
    }

    Kind kind() {
        return kind;
    }

    int[] shape() {
        return shape.clone();
    }

    int rank() {
        return shape.length;
    }

    int numel() {
        return kind == Kind.FLOAT ? floats.length : longs.length;
    }

    /** The float32 values (for an integer array, converted). */
    float[] toFloats() {
        if (kind == Kind.FLOAT) {
            return floats.clone();
        }
        float[] out = new float[longs.length];
        for (int i = 0; i < out.length; i++) {
            out[i] = longs[i];
        }
        return out;
    }

    /** The integer values (for a float array, truncated toward zero as ONNX's Cast does). */
    long[] toLongs() {
        if (kind == Kind.INT64) {
            return longs.clone();
        }
        long[] out = new long[floats.length];
        for (int i = 0; i < out.length; i++) {
            out[i] = (long) floats[i];
        }
        return out;
    }

    double get(int i) {
        return kind == Kind.FLOAT ? floats[i] : longs[i];
    }

    /** The same values under another shape of the same element count. */
    HostArray reshape(int... newShape) {
        return new HostArray(kind, newShape.clone(), floats, longs);
    }

    HostArray cast(Kind to) {
        if (to == kind) {
            return this;
        }
        return to == Kind.FLOAT ? floats(toFloats(), shape) : longs(toLongs(), shape);
    }

    /** Element {@code indices[i]} of this array's flat data at position i of a new array of {@code newShape}. */
    HostArray select(int[] indices, int[] newShape) {
        if (kind == Kind.FLOAT) {
            float[] out = new float[indices.length];
            for (int i = 0; i < out.length; i++) {
                out[i] = floats[indices[i]];
            }
            return floats(out, newShape);
        }
        long[] out = new long[indices.length];
        for (int i = 0; i < out.length; i++) {
            out[i] = longs[indices[i]];
        }
        return longs(out, newShape);
    }

    @Override
    public String toString() {
        String values = kind == Kind.FLOAT
                ? Arrays.toString(numel() > 8 ? Arrays.copyOf(floats, 8) : floats)
                : Arrays.toString(numel() > 8 ? Arrays.copyOf(longs, 8) : longs);
        return kind.name().toLowerCase(java.util.Locale.ROOT) + Arrays.toString(shape) + " " + values;
    }
}
