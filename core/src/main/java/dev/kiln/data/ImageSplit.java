package dev.kiln.data;

import java.util.Objects;

/**
 * One split (train or test) of an image classification data set: {@code count} single-channel images
 * of {@code rows x cols} unsigned bytes with class labels. Immutable by contract: the arrays are not
 * copied and must not be modified. As a {@link Dataset}, features are the raw pixel values 0..255
 * with shape {@code [1, rows, cols]}.
 */
public final class ImageSplit implements Dataset {
    private final int count;
    private final int rows;
    private final int cols;
    private final byte[] images;
    private final byte[] labels;
    private final int[] shape;

    /**
     * @param images {@code count * rows * cols} unsigned bytes, row-major, image after image
     * @param labels {@code count} unsigned bytes
     */
    public ImageSplit(int count, int rows, int cols, byte[] images, byte[] labels) {
        Objects.requireNonNull(images, "images");
        Objects.requireNonNull(labels, "labels");
        if (count < 0 || rows <= 0 || cols <= 0) {
            throw new IllegalArgumentException("count " + count + ", rows " + rows + ", cols " + cols);
        }
        if ((long) count * rows * cols != images.length) {
            throw new IllegalArgumentException("images.length " + images.length + " != " + count + "*" + rows + "*" + cols);
        }
        if (labels.length != count) {
            throw new IllegalArgumentException("labels.length " + labels.length + " != count " + count);
        }
        this.count = count;
        this.rows = rows;
        this.cols = cols;
        this.images = images;
        this.labels = labels;
        this.shape = new int[] {1, rows, cols};
    }

    @Override
    public int size() {
        return count;
    }

    public int rows() {
        return rows;
    }

    public int cols() {
        return cols;
    }

    /** The pixel bytes (unsigned), not copied: do not modify. */
    public byte[] images() {
        return images;
    }

    /** The label bytes (unsigned), not copied: do not modify. */
    public byte[] labels() {
        return labels;
    }

    /** Pixel 0..255 of image {@code index} at ({@code row}, {@code col}). */
    public int pixel(int index, int row, int col) {
        return images[(index * rows + row) * cols + col] & 0xff;
    }

    @Override
    public int[] featureShape() {
        return shape;
    }

    @Override
    public int featureLength() {
        return rows * cols;
    }

    @Override
    public void fill(int index, float[] dst, int offset) {
        Objects.checkIndex(index, count);
        int n = rows * cols;
        int src = index * n;
        for (int i = 0; i < n; i++) {
            dst[offset + i] = images[src + i] & 0xff;
        }
    }

    @Override
    public int label(int index) {
        return labels[index] & 0xff;
    }
}
