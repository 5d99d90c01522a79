package dev.kiln.data;

import dev.kiln.core.Shapes;

import java.util.Objects;

/**
 * The user's own samples held in memory as a {@link Dataset}: one {@code float[]} per sample, all of one shape, with
 * an integer class label each. Immutable (the arrays are copied), so a {@link DataLoader} may read it from its
 * prefetch thread.
 */
public final class ArrayDataset implements Dataset {

    private final float[] features;
    private final int[] labels;
    private final int[] sampleShape;
    private final int featureLength;

    public ArrayDataset(float[][] samples, int[] labels, int... sampleShape) {
        Objects.requireNonNull(samples, "samples");
        Objects.requireNonNull(labels, "labels");
        ArrayBatch all = ArrayBatch.of(samples, labels, sampleShape);
        this.features = all.features();
        this.labels = labels.clone();
        this.sampleShape = sampleShape.clone();
        this.featureLength = Math.toIntExact(Shapes.numel(sampleShape));
    }

    @Override
    public int size() {
        return labels.length;
    }

    @Override
    public int[] featureShape() {
        return sampleShape;
    }

    @Override
    public void fill(int index, float[] dst, int offset) {
        System.arraycopy(features, index * featureLength, dst, offset, featureLength);
    }

    @Override
    public int label(int index) {
        return labels[index];
    }
}
