package dev.kiln.backend;

/**
 * Shapes of a 2-d cross-correlation (PyTorch's {@code conv2d}, groups = 1): input
 * {@code (n, inChannels, inH, inW)}, weight {@code (outChannels, inChannels, kernelH, kernelW)},
 * output {@code (n, outChannels, outH(), outW())}. All tensors contiguous NCHW.
 */
public record ConvGeometry(int n, int inChannels, int inH, int inW,
                           int outChannels, int kernelH, int kernelW,
                           int strideH, int strideW, int padH, int padW,
                           int dilationH, int dilationW) {

    public ConvGeometry {
        if (n < 1 || inChannels < 1 || inH < 1 || inW < 1 || outChannels < 1 || kernelH < 1 || kernelW < 1) {
            throw new IllegalArgumentException("conv2d: sizes must be positive, got " + describe(n, inChannels, inH, inW, outChannels, kernelH, kernelW));
        }
        if (strideH < 1 || strideW < 1 || dilationH < 1 || dilationW < 1 || padH < 0 || padW < 0) {
            throw new IllegalArgumentException("conv2d: stride and dilation must be >= 1 and padding >= 0, got stride=("
                    + strideH + "," + strideW + ") padding=(" + padH + "," + padW + ") dilation=(" + dilationH + "," + dilationW + ")");
        }
        int oh = outSize(inH, kernelH, strideH, padH, dilationH);
        int ow = outSize(inW, kernelW, strideW, padW, dilationW);
        if (oh < 1 || ow < 1) {
            throw new IllegalArgumentException("conv2d: input " + inH + "x" + inW + " (padded by " + padH + "," + padW
                    + ") is smaller than the dilated kernel " + ((kernelH - 1) * dilationH + 1) + "x" + ((kernelW - 1) * dilationW + 1));
        }
    }

    private static String describe(int n, int c, int h, int w, int oc, int kh, int kw) {
        return "input (" + n + "," + c + "," + h + "," + w + ") weight (" + oc + "," + c + "," + kh + "," + kw + ")";
    }

    static int outSize(int in, int k, int stride, int pad, int dilation) {
        return (in + 2 * pad - dilation * (k - 1) - 1) / stride + 1;
    }

    public int outH() {
        return outSize(inH, kernelH, strideH, padH, dilationH);
    }

    public int outW() {
        return outSize(inW, kernelW, strideW, padW, dilationW);
    }

    public long inputLength() {
        return (long) n * inChannels * inH * inW;
    }

    public long weightLength() {
        return (long) outChannels * inChannels * kernelH * kernelW;
    }

    public long outputLength() {
        return (long) n * outChannels * outH() * outW();
    }

    /** Multiply-adds of the forward pass times two. */
    public long forwardFlops() {
        return 2L * n * outChannels * outH() * outW() * inChannels * kernelH * kernelW;
    }
}
