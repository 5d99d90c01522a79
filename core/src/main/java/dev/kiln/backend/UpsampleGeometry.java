package dev.kiln.backend;

/**
 * Shapes of 2-d nearest-neighbour upsampling by integer factors (PyTorch's {@code upsample_nearest2d} with
 * {@code scale_factor}): {@code (n, channels, inH, inW)} to {@code (n, channels, inH * scaleH, inW * scaleW)}. Output
 * row {@code oh} reads input row {@code oh / scaleH} ({@link #source}).
 */
public record UpsampleGeometry(int n, int channels, int inH, int inW, int scaleH, int scaleW) {

    public UpsampleGeometry {
        if (n < 1 || channels < 1 || inH < 1 || inW < 1 || scaleH < 1 || scaleW < 1) {
            throw new IllegalArgumentException("upsample_nearest2d: sizes and scale factors must be positive, got input ("
                    + n + "," + channels + "," + inH + "," + inW + ") scale (" + scaleH + "," + scaleW + ")");
        }
        if ((long) n * channels * inH * scaleH * inW * scaleW > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("upsample_nearest2d: output of (" + n + "," + channels + ","
                    + (long) inH * scaleH + "," + (long) inW * scaleW + ") has more than 2^31-1 elements");
        }
    }

    public int outH() {
        return inH * scaleH;
    }

    public int outW() {
        return inW * scaleW;
    }

    /**
     * The input index output index {@code o} reads: {@code o / scale}. PyTorch computes
     * {@code min(floor(o * (float) (1.0 / scale)), in - 1)} in float arithmetic, which is the same index for every
     * integer factor up to 32 and output index below 20,000 (checked exhaustively) and for the golden cases.
     */
    public static int source(int o, int scale) {
        return o / scale;
    }

    public long inputLength() {
        return (long) n * channels * inH * inW;
    }

    public long outputLength() {
        return (long) n * channels * outH() * outW();
    }
}
