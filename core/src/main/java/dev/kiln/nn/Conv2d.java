package dev.kiln.nn;

import dev.kiln.core.Device;
import dev.kiln.core.Generator;
import dev.kiln.core.Tensor;
import dev.kiln.nn.functional.Conv2dOp;

/** 2-d convolution (groups = 1) with stride, padding, dilation and optional bias; PyTorch's default initialisation. */
public final class Conv2d extends Module {

    private final int inChannels;
    private final int outChannels;
    private final int kernelH;
    private final int kernelW;
    private final int stride;
    private final int padding;
    private final int dilation;

    public Conv2d(Device device, Generator gen, int inChannels, int outChannels, int kernelSize) {
        this(device, gen, inChannels, outChannels, kernelSize, 1, 0, 1, true);
    }

    public Conv2d(Device device, Generator gen, int inChannels, int outChannels, int kernelSize, int stride, int padding) {
        this(device, gen, inChannels, outChannels, kernelSize, stride, padding, 1, true);
    }

    public Conv2d(Device device, Generator gen, int inChannels, int outChannels, int kernelSize,
                  int stride, int padding, int dilation, boolean bias) {
        if (inChannels < 1 || outChannels < 1 || kernelSize < 1 || stride < 1 || padding < 0 || dilation < 1) {
            throw new IllegalArgumentException("Conv2d: invalid arguments in=" + inChannels + " out=" + outChannels
                    + " kernel=" + kernelSize + " stride=" + stride + " padding=" + padding + " dilation=" + dilation);
        }
        this.inChannels = inChannels;
        this.outChannels = outChannels;
        this.kernelH = kernelSize;
        this.kernelW = kernelSize;
        this.stride = stride;
        this.padding = padding;
        this.dilation = dilation;
        int fanIn = inChannels * kernelSize * kernelSize;
        registerParameter("weight", Init.kaimingUniformDefault(device, gen, fanIn, outChannels, inChannels, kernelSize, kernelSize));
        if (bias) {
            registerParameter("bias", Init.fanInUniform(device, gen, fanIn, outChannels));
        }
    }

    @Override
    public Tensor forward(Tensor input) {
        return Conv2dOp.conv2d(input, parameter("weight"), parameter("bias"), stride, stride, padding, padding, dilation, dilation);
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

    /** The (square) kernel's side. */
    public int kernelSize() {
        return kernelH;
    }

    public int stride() {
        return stride;
    }

    public int padding() {
        return padding;
    }

    public int dilation() {
        return dilation;
    }

    @Override
    protected String extraRepr() {
        return inChannels + ", " + outChannels + ", kernel_size=(" + kernelH + ", " + kernelW + "), stride=(" + stride + ", " + stride + ")"
                + (padding != 0 ? ", padding=(" + padding + ", " + padding + ")" : "")
                + (dilation != 1 ? ", dilation=(" + dilation + ", " + dilation + ")" : "")
                + (bias() == null ? ", bias=False" : "");
    }
}
