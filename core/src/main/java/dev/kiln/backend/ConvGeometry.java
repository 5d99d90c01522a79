package dev.kiln.backend;

/**
 * Shapes of a 2-d cross-correlation (PyTorch's {@code conv2d}): input {@code (n, inChannels, inH, inW)}, weight
 * {@code (outChannels, inChannels / groups, kernelH, kernelW)}, output {@code (n, outChannels, outH(), outW())}. All
 * tensors contiguous NCHW. With {@code groups > 1} the input and output channels are split into {@code groups}
 * consecutive blocks and output block {@code k} sees only input block {@code k}; {@code groups == inChannels} is a
 * depthwise convolution.
 */
public record ConvGeometry(int n, int inChannels, int inH, int inW,
                           int outChannels, int kernelH, int kernelW,
                           int strideH, int strideW, int padH, int padW,
                           int dilationH, int dilationW, int groups) {

    public ConvGeometry {
        if (n < 1 || inChannels < 1 || inH < 1 || inW < 1 || outChannels < 1 || kernelH < 1 || kernelW < 1) {
            throw new IllegalArgumentException("conv2d: sizes must be positive, got " + describe(n, inChannels, inH, inW, outChannels, kernelH, kernelW));
        }
        if (strideH < 1 || strideW < 1 || dilationH < 1 || dilationW < 1 || padH < 0 || padW < 0) {
            throw new IllegalArgumentException("conv2d: stride and dilation must be >= 1 and padding >= 0, got stride=("
                    + strideH + "," + strideW + ") padding=(" + padH + "," + padW + ") dilation=(" + dilationH + "," + dilationW + ")");
        }
        if (groups < 1 || inChannels % groups != 0 || outChannels % groups != 0) {
            throw new IllegalArgumentException("conv2d: groups must be >= 1 and divide both in_channels and out_channels,"
                    + " got groups=" + groups + " in_channels=" + inChannels + " out_channels=" + outChannels);
        }
        int oh = outSize(inH, kernelH, strideH, padH, dilationH);
        int ow = outSize(inW, kernelW, strideW, padW, dilationW);
        if (oh < 1 || ow < 1) {
            throw new IllegalArgumentException("conv2d: input " + inH + "x" + inW + " (padded by " + padH + "," + padW
                    + ") is smaller than the dilated kernel " + ((kernelH - 1) * dilationH + 1) + "x" + ((kernelW - 1) * dilationW + 1));
        }
    }

    /** An ungrouped convolution ({@code groups = 1}). */
    public ConvGeometry(int n, int inChannels, int inH, int inW, int outChannels, int kernelH, int kernelW,
                        int strideH, int strideW, int padH, int padW, int dilationH, int dilationW) {
        this(n, inChannels, inH, inW, outChannels, kernelH, kernelW, strideH, strideW, padH, padW, dilationH, dilationW, 1);
    }

    private static String describe(int n, int c, int h, int w, int oc, int kh, int kw) {
        return "input (" + n + "," + c + "," + h + "," + w + ") weight (" + oc + ",...," + kh + "," + kw + ")";
    }

    static int outSize(int in, int k, int stride, int pad, int dilation) {
        int span = in + 2 * pad - dilation * (k - 1) - 1;
        // a negative span means no output at all; Java's division would round it up to 0
        return span < 0 ? 0 : span / stride + 1;
    }

    public int outH() {
        return outSize(inH, kernelH, strideH, padH, dilationH);
    }

    public int outW() {
        return outSize(inW, kernelW, strideW, padW, dilationW);
    }

    /** Input channels each filter sees: {@code inChannels / groups}. */
    public int inChannelsPerGroup() {
        return inChannels / groups;
    }

    /** Output channels of each group: {@code outChannels / groups}. */
    public int outChannelsPerGroup() {
        return outChannels / groups;
    }

    public long inputLength() {
        return (long) n * inChannels * inH * inW;
    }

    public long weightLength() {
        return (long) outChannels * inChannelsPerGroup() * kernelH * kernelW;
    }

    public long outputLength() {
        return (long) n * outChannels * outH() * outW();
    }

    /** Multiply-adds of the forward pass times two. */
    public long forwardFlops() {
        return 2L * n * outChannels * outH() * outW() * inChannelsPerGroup() * kernelH * kernelW;
    }
}
