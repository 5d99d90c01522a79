package dev.kiln.backend;

/**
 * Shapes of 2-d pooling over {@code (n, channels, inH, inW)} to {@code (n, channels, outH(), outW())},
 * PyTorch's floor mode. Average pooling counts padded zeros in the divisor
 * ({@code count_include_pad=True}, PyTorch's default).
 */
public record PoolGeometry(int n, int channels, int inH, int inW,
                           int kernelH, int kernelW, int strideH, int strideW, int padH, int padW) {

    public PoolGeometry {
        if (n < 1 || channels < 1 || inH < 1 || inW < 1 || kernelH < 1 || kernelW < 1 || strideH < 1 || strideW < 1) {
            throw new IllegalArgumentException("pool2d: sizes, kernel and stride must be positive, got input ("
                    + n + "," + channels + "," + inH + "," + inW + ") kernel " + kernelH + "x" + kernelW
                    + " stride " + strideH + "x" + strideW);
        }
        if (padH < 0 || padW < 0 || 2 * padH > kernelH || 2 * padW > kernelW) {
            throw new IllegalArgumentException("pool2d: padding must be >= 0 and at most half the kernel, got padding ("
                    + padH + "," + padW + ") for kernel " + kernelH + "x" + kernelW);
        }
        if ((inH + 2 * padH - kernelH) < 0 || (inW + 2 * padW - kernelW) < 0) {
            throw new IllegalArgumentException("pool2d: input " + inH + "x" + inW + " is smaller than kernel " + kernelH + "x" + kernelW);
        }
    }

    public int outH() {
        return (inH + 2 * padH - kernelH) / strideH + 1;
    }

    public int outW() {
        return (inW + 2 * padW - kernelW) / strideW + 1;
    }

    public long inputLength() {
        return (long) n * channels * inH * inW;
    }

    public long outputLength() {
        return (long) n * channels * outH() * outW();
    }
}
