package dev.kiln.data;

/**
 * A batch from a {@link DataLoader}: {@code size} samples' features (normalised) and labels.
 *
 * <p><b>Recycling contract:</b> batch objects and their arrays are pooled and reused. A batch is valid
 * only until the next batch is taken from the same epoch (or the epoch or loader is closed); copy
 * what you need to keep (e.g. upload it to the device) before asking for the next one. The arrays
 * have room for a full batch; only the prefix {@code [0, size * featureLength)} of
 * {@link #features()} and {@code [0, size)} of {@link #labels()} is valid.
 */
public final class Batch {
    private final float[] features;
    private final float[] labels;
    private final int[] indices;
    private final int[] featureShape;
    private final int featureLength;
    int size;
    int epoch;
    int index;

    Batch(int capacity, int[] featureShape, int featureLength) {
        this.features = new float[capacity * featureLength];
        this.labels = new float[capacity];
        this.indices = new int[capacity];
        this.featureShape = featureShape.clone();
        this.featureLength = featureLength;
    }

    /** Features, sample after sample ({@code featureLength} floats each); valid prefix {@code size * featureLength}. */
    public float[] features() {
        return features;
    }

    /** Class indices as floats; valid prefix {@code size}. */
    public float[] labels() {
        return labels;
    }

    /** Data set index of each sample; valid prefix {@code size}. */
    public int[] indices() {
        return indices;
    }

    /** Number of samples in this batch (the last batch of an epoch may be smaller). */
    public int size() {
        return size;
    }

    /** Floats per sample. */
    public int featureLength() {
        return featureLength;
    }

    /** {@code [size, featureShape...]}, e.g. {@code [64, 1, 28, 28]}. A new array each call. */
    public int[] shape() {
        int[] s = new int[featureShape.length + 1];
        s[0] = size;
        System.arraycopy(featureShape, 0, s, 1, featureShape.length);
        return s;
    }

    /** Epoch this batch belongs to. */
    public int epoch() {
        return epoch;
    }

    /** Position of this batch within its epoch, from 0. */
    public int index() {
        return index;
    }
}
