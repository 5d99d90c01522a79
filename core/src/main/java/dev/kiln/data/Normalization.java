package dev.kiln.data;

/**
 * Per-feature affine normalisation {@code y = (x * scale - mean) / std}, applied by {@link DataLoader}
 * to what {@link Dataset#fill} wrote.
 *
 * @param scale maps raw values to the range mean/std refer to (1/255 for byte images)
 */
public record Normalization(float scale, float mean, float std) {
    /** Leaves values unchanged. */
    public static final Normalization NONE = new Normalization(1f, 0f, 1f);
    /** Bytes to [0, 1]: {@code x / 255}. */
    public static final Normalization UNIT = new Normalization(1f / 255f, 0f, 1f);
    /** The usual MNIST normalisation: {@code (x / 255 - 0.1307) / 0.3081}. */
    public static final Normalization MNIST = bytes(0.1307f, 0.3081f);

    public Normalization {
        if (!(std > 0f) || !Float.isFinite(std) || !Float.isFinite(scale) || !Float.isFinite(mean)) {
            throw new IllegalArgumentException("scale " + scale + ", mean " + mean + ", std " + std);
        }
    }

    /** For byte images: {@code (x / 255 - mean) / std}. */
    public static Normalization bytes(float mean, float std) {
        return new Normalization(1f / 255f, mean, std);
    }

    public boolean isIdentity() {
        return scale == 1f && mean == 0f && std == 1f;
    }

    public float apply(float x) {
        return (x * scale - mean) / std;
    }

    /** Normalises {@code a[from, to)} in place. */
    public void applyInPlace(float[] a, int from, int to) {
        if (isIdentity()) {
            return;
        }
        for (int i = from; i < to; i++) {
            a[i] = (a[i] * scale - mean) / std;
        }
    }
}
