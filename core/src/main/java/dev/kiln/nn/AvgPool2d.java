package dev.kiln.nn;

import dev.kiln.core.Tensor;
import dev.kiln.nn.functional.PoolOps;

/** Average pooling; stride defaults to the kernel size; padding counted in the divisor (PyTorch's default). */
public final class AvgPool2d extends Module {

    private final int kernel;
    private final int stride;
    private final int padding;

    public AvgPool2d(int kernel) {
        this(kernel, kernel, 0);
    }

    public AvgPool2d(int kernel, int stride, int padding) {
        this.kernel = kernel;
        this.stride = stride;
        this.padding = padding;
    }

    @Override
    public Tensor forward(Tensor input) {
        return PoolOps.avgPool2d(input, kernel, kernel, stride, stride, padding, padding);
    }

    @Override
    protected String extraRepr() {
        return "kernel_size=" + kernel + ", stride=" + stride + ", padding=" + padding;
    }
}
