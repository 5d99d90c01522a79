package dev.kiln.nn;

import dev.kiln.core.Device;
import dev.kiln.core.Generator;
import dev.kiln.core.Tensor;
import dev.kiln.nn.functional.Conv2dOp;

/**
 * 2-d convolution, PyTorch's {@code nn.Conv2d}: rectangular kernels, stride, padding and dilation per axis, groups
 * (depthwise when {@code groups == inChannels}) and an optional bias, with PyTorch's default initialisation (weight
 * {@code (out, in / groups, kH, kW)} Kaiming-uniform, bias uniform in {@code ±1/sqrt(fan_in)}, {@code fan_in =
 * in / groups * kH * kW}). Build one with {@link #builder}, PyTorch's keyword arguments as methods:
 * <pre>{@code
 * Conv2d depthwise = Conv2d.builder(32, 32).kernel(3).stride(2).padding(1).groups(32).bias(false).build(device, gen);
 * }</pre>
 */
public final class Conv2d extends Module {

    private final int inChannels;
    private final int outChannels;
    private final int kernelH;
    private final int kernelW;
    private final int strideH;
    private final int strideW;
    private final int padH;
    private final int padW;
    private final int dilationH;
    private final int dilationW;
    private final int groups;

    public Conv2d(Device device, Generator gen, int inChannels, int outChannels, int kernelSize) {
        this(device, gen, inChannels, outChannels, kernelSize, 1, 0, 1, true);
    }

    public Conv2d(Device device, Generator gen, int inChannels, int outChannels, int kernelSize, int stride, int padding) {
        this(device, gen, inChannels, outChannels, kernelSize, stride, padding, 1, true);
    }

    public Conv2d(Device device, Generator gen, int inChannels, int outChannels, int kernelSize,
                  int stride, int padding, int dilation, boolean bias) {
        this(device, gen, builder(inChannels, outChannels).kernel(kernelSize).stride(stride).padding(padding)
                .dilation(dilation).bias(bias));
    }

    private Conv2d(Device device, Generator gen, Builder b) {
        if (device == null || gen == null) {
            throw new IllegalArgumentException("Conv2d: device and generator must not be null");
        }
        if (b.kernelH == 0) {
            throw new IllegalArgumentException("Conv2d(" + b.inChannels + ", " + b.outChannels + "): kernel size not set"
                    + " (builder.kernel(k) or kernel(kH, kW))");
        }
        if (b.inChannels < 1 || b.outChannels < 1 || b.kernelH < 1 || b.kernelW < 1 || b.strideH < 1 || b.strideW < 1
                || b.padH < 0 || b.padW < 0 || b.dilationH < 1 || b.dilationW < 1 || b.groups < 1) {
            throw new IllegalArgumentException("Conv2d: invalid arguments in=" + b.inChannels + " out=" + b.outChannels
                    + " kernel=(" + b.kernelH + ", " + b.kernelW + ") stride=(" + b.strideH + ", " + b.strideW
                    + ") padding=(" + b.padH + ", " + b.padW + ") dilation=(" + b.dilationH + ", " + b.dilationW
                    + ") groups=" + b.groups);
        }
        if (b.inChannels % b.groups != 0) {
            throw new IllegalArgumentException("Conv2d: in_channels=" + b.inChannels + " must be divisible by groups=" + b.groups);
        }
        if (b.outChannels % b.groups != 0) {
            throw new IllegalArgumentException("Conv2d: out_channels=" + b.outChannels + " must be divisible by groups=" + b.groups);
        }
        this.inChannels = b.inChannels;
        this.outChannels = b.outChannels;
        this.kernelH = b.kernelH;
        this.kernelW = b.kernelW;
        this.strideH = b.strideH;
        this.strideW = b.strideW;
        this.padH = b.padH;
        this.padW = b.padW;
        this.dilationH = b.dilationH;
        this.dilationW = b.dilationW;
        this.groups = b.groups;
        int perGroup = inChannels / groups;
        int fanIn = perGroup * kernelH * kernelW;
        registerParameter("weight", Init.kaimingUniformDefault(device, gen, fanIn, outChannels, perGroup, kernelH, kernelW));
        if (b.bias) {
            registerParameter("bias", Init.fanInUniform(device, gen, fanIn, outChannels));
        }
    }

    /** A builder for a convolution from {@code inChannels} to {@code outChannels}; {@link Builder#kernel} is required. */
    public static Builder builder(int inChannels, int outChannels) {
        return new Builder(inChannels, outChannels);
    }

    /** A builder holding this layer's options (a new layer built from it gets new parameters). */
    public Builder toBuilder() {
        return builder(inChannels, outChannels).kernel(kernelH, kernelW).stride(strideH, strideW).padding(padH, padW)
                .dilation(dilationH, dilationW).groups(groups).bias(bias() != null);
    }

    /**
     * The options of {@code nn.Conv2d} as methods, PyTorch's defaults otherwise: stride 1, padding 0, dilation 1,
     * groups 1, bias true. A single value sets both axes, as an int does in PyTorch.
     */
    public static final class Builder {
        private final int inChannels;
        private final int outChannels;
        private int kernelH;
        private int kernelW;
        private int strideH = 1;
        private int strideW = 1;
        private int padH;
        private int padW;
        private int dilationH = 1;
        private int dilationW = 1;
        private int groups = 1;
        private boolean bias = true;

        private Builder(int inChannels, int outChannels) {
            this.inChannels = inChannels;
            this.outChannels = outChannels;
        }

        public Builder kernel(int size) {
            return kernel(size, size);
        }

        public Builder kernel(int h, int w) {
            this.kernelH = h;
            this.kernelW = w;
            return this;
        }

        public Builder stride(int stride) {
            return stride(stride, stride);
        }

        public Builder stride(int h, int w) {
            this.strideH = h;
            this.strideW = w;
            return this;
        }

        /** Zero padding on both sides of each axis. */
        public Builder padding(int padding) {
            return padding(padding, padding);
        }

        public Builder padding(int h, int w) {
            this.padH = h;
            this.padW = w;
            return this;
        }

        public Builder dilation(int dilation) {
            return dilation(dilation, dilation);
        }

        public Builder dilation(int h, int w) {
            this.dilationH = h;
            this.dilationW = w;
            return this;
        }

        /** Input and output channels split into {@code groups} blocks; {@code groups == inChannels} is depthwise. */
        public Builder groups(int groups) {
            this.groups = groups;
            return this;
        }

        public Builder bias(boolean bias) {
            this.bias = bias;
            return this;
        }

        /** The layer, its parameters on {@code device} drawn from {@code gen} (weight first, then bias, as PyTorch). */
        public Conv2d build(Device device, Generator gen) {
            return new Conv2d(device, gen, this);
        }
    }

    @Override
    public Tensor forward(Tensor input) {
        return Conv2dOp.conv2d(input, parameter("weight"), parameter("bias"), strideH, strideW, padH, padW, dilationH,
                dilationW, groups);
    }

    public Tensor weight() {
        return parameter("weight");
    }

    public Tensor bias() {
        return parameter("bias");
    }

    public int inChannels() {
        return inChannels;
    }

    public int outChannels() {
        return outChannels;
    }

    /** The side of a square kernel; an {@link IllegalStateException} for a rectangular one ({@link #kernelH()}, {@link #kernelW()}). */
    public int kernelSize() {
        return square("kernel size", kernelH, kernelW);
    }

    /** The stride of both axes; an {@link IllegalStateException} when they differ ({@link #strideH()}, {@link #strideW()}). */
    public int stride() {
        return square("stride", strideH, strideW);
    }

    /** The padding of both axes; an {@link IllegalStateException} when they differ ({@link #padH()}, {@link #padW()}). */
    public int padding() {
        return square("padding", padH, padW);
    }

    /** The dilation of both axes; an {@link IllegalStateException} when they differ. */
    public int dilation() {
        return square("dilation", dilationH, dilationW);
    }

    private int square(String what, int h, int w) {
        if (h != w) {
            throw new IllegalStateException("Conv2d: the " + what + " is (" + h + ", " + w + "), not one value for both"
                    + " axes; read each axis, or copy the layer's options with toBuilder()");
        }
        return h;
    }

    public int kernelH() {
        return kernelH;
    }

    public int kernelW() {
        return kernelW;
    }

    public int strideH() {
        return strideH;
    }

    public int strideW() {
        return strideW;
    }

    public int padH() {
        return padH;
    }

    public int padW() {
        return padW;
    }

    public int dilationH() {
        return dilationH;
    }

    public int dilationW() {
        return dilationW;
    }

    public int groups() {
        return groups;
    }

    @Override
    protected String extraRepr() {
        return inChannels + ", " + outChannels + ", kernel_size=(" + kernelH + ", " + kernelW + "), stride=(" + strideH
                + ", " + strideW + ")"
                + (padH != 0 || padW != 0 ? ", padding=(" + padH + ", " + padW + ")" : "")
                + (dilationH != 1 || dilationW != 1 ? ", dilation=(" + dilationH + ", " + dilationW + ")" : "")
                + (groups != 1 ? ", groups=" + groups : "")
                + (bias() == null ? ", bias=False" : "");
    }
}
