package dev.kiln.data;

/**
 * A finite, randomly accessible set of labelled samples producing host floats, the input of
 * {@link DataLoader}. Implementations must allow {@link #fill} and {@link #label} to be called from a
 * background thread (an immutable data set trivially does).
 */
public interface Dataset {
    /** Number of samples. */
    int size();

    /** Shape of one sample's features, e.g. {@code [1, 28, 28]}. Callers must not modify it. */
    int[] featureShape();

    /** Number of floats per sample: the product of {@link #featureShape()}. */
    default int featureLength() {
        int n = 1;
        for (int d : featureShape()) {
            n *= d;
        }
        return n;
    }

    /**
     * Writes sample {@code index}'s {@link #featureLength()} features into {@code dst} from {@code offset},
     * unnormalised (for byte images: 0..255; {@link DataLoader} applies a {@link Normalization}).
     */
    void fill(int index, float[] dst, int offset);

    /** Class index of sample {@code index}. */
    int label(int index);
}
