package dev.kiln.data;

import dev.kiln.core.Shapes;

import java.util.Arrays;
import java.util.Objects;

/**
 * A batch of the user's own data: {@code labels.length} samples of shape {@code sampleShape}, features sample after
 * sample, already normalised as the model expects. What a {@code Trainer} takes from an {@code Iterable} or stream
 * when the data does not come through a {@link DataLoader}. Checked when made: a wrong length or a negative label is
 * an error naming the numbers, before any training step sees it.
 */
public record ArrayBatch(float[] features, int[] labels, int[] sampleShape) {

    public ArrayBatch {
        Objects.requireNonNull(features, "features");
        Objects.requireNonNull(labels, "labels");
        Objects.requireNonNull(sampleShape, "sampleShape");
        sampleShape = sampleShape.clone();
        long per = Shapes.numel(sampleShape);
        if (sampleShape.length == 0 || per < 1) {
            throw new IllegalArgumentException("batch: invalid sample shape " + Shapes.toString(sampleShape));
        }
        if (labels.length == 0) {
            throw new IllegalArgumentException("batch: no samples");
        }
        if (features.length != labels.length * per) {
            throw new IllegalArgumentException("batch: " + features.length + " feature values for " + labels.length
                    + " labels of samples shaped " + Shapes.toString(sampleShape) + " (expected "
                    + labels.length * per + ")");
        }
        for (int i = 0; i < labels.length; i++) {
            if (labels[i] < 0) {
                throw new IllegalArgumentException("batch: label " + labels[i] + " of sample " + i + " is negative");
            }
        }
    }

    /** One array per sample. */
    public static ArrayBatch of(float[][] samples, int[] labels, int... sampleShape) {
        if (samples.length != labels.length) {
            throw new IllegalArgumentException("batch: " + samples.length + " samples but " + labels.length + " labels");
        }
        long per = Shapes.numel(sampleShape);
        float[] flat = new float[Math.toIntExact(samples.length * per)];
        for (int i = 0; i < samples.length; i++) {
            if (samples[i] == null || samples[i].length != per) {
                throw new IllegalArgumentException("batch: sample " + i + " has "
                        + (samples[i] == null ? "no" : Integer.toString(samples[i].length)) + " values, expected " + per);
            }
            System.arraycopy(samples[i], 0, flat, (int) (i * per), (int) per);
        }
        return new ArrayBatch(flat, labels, sampleShape);
    }

    public int size() {
        return labels.length;
    }

    /** {@code [size, sampleShape...]}. */
    public int[] shape() {
        int[] s = new int[sampleShape.length + 1];
        s[0] = labels.length;
        System.arraycopy(sampleShape, 0, s, 1, sampleShape.length);
        return s;
    }

    @Override
    public int[] sampleShape() {
        return sampleShape.clone();
    }

    @Override
    public String toString() {
        return "ArrayBatch" + Arrays.toString(shape());
    }
}
