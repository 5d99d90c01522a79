package dev.kiln.backend;

/**
 * Shapes of 2-d adaptive pooling (PyTorch's {@code adaptive_avg_pool2d} / {@code adaptive_max_pool2d}) of
 * {@code (n, channels, inH, inW)} to {@code (n, channels, outH, outW)}: output row {@code oh} pools input rows
 * {@code [start(oh, inH, outH), end(oh, inH, outH))}, and likewise for columns. Windows of neighbouring outputs may
 * overlap by one row or column, and may be of different sizes; {@code outH == outW == 1} is global pooling.
 */
public record AdaptivePoolGeometry(int n, int channels, int inH, int inW, int outH, int outW) {

    public AdaptivePoolGeometry {
        if (n < 1 || channels < 1 || inH < 1 || inW < 1 || outH < 1 || outW < 1) {
            throw new IllegalArgumentException("adaptive_pool2d: sizes must be positive, got input (" + n + "," + channels
                    + "," + inH + "," + inW + ") output size (" + outH + "," + outW + ")");
        }
        // the max variant stores window positions as float indices, exact up to 2^24
        if ((long) inH * inW > (1L << 24)) {
            throw new IllegalArgumentException("adaptive_pool2d: an input plane of " + inH + "x" + inW
                    + " has more than 2^24 positions");
        }
    }

    /** First input index of output {@code o}: {@code floor(o * in / out)}. */
    public static int start(int o, int in, int out) {
        return (int) ((long) o * in / out);
    }

    /** One past the last input index of output {@code o}: {@code ceil((o + 1) * in / out)}. */
    public static int end(int o, int in, int out) {
        return (int) (((long) (o + 1) * in + out - 1) / out);
    }

    public long inputLength() {
        return (long) n * channels * inH * inW;
    }

    public long outputLength() {
        return (long) n * channels * outH * outW;
    }
}
