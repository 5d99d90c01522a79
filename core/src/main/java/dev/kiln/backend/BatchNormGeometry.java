package dev.kiln.backend;

/**
 * Batch norm over a contiguous {@code (n, channels, spatial)} view: (N,C) has spatial 1, (N,C,L) has L,
 * (N,C,H,W) has H*W. Statistics are per channel over {@code n * spatial} values.
 */
public record BatchNormGeometry(int n, int channels, int spatial) {

    public BatchNormGeometry {
        if (n < 1 || channels < 1 || spatial < 1) {
            throw new IllegalArgumentException("batch norm: n, channels and spatial size must be positive, got ("
                    + n + "," + channels + "," + spatial + ")");
        }
    }

    /** Values each channel's statistics are computed over. */
    public long valuesPerChannel() {
        return (long) n * spatial;
    }

    public long length() {
        return (long) n * channels * spatial;
    }
}
