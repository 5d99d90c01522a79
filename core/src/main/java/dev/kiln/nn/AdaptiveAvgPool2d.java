package dev.kiln.nn;

import dev.kiln.core.Tensor;
import dev.kiln.nn.functional.PoolOps;

/**
 * PyTorch's {@code nn.AdaptiveAvgPool2d}: averages (N, C, H, W) to a fixed (N, C, outH, outW) whatever H and W are,
 * over PyTorch's windows ({@code [floor(i*H/outH), ceil((i+1)*H/outH))}). {@link #global()} ({@code (1, 1)}) is the
 * global average pooling that ends a ResNet, independent of the input size.
 */
public final class AdaptiveAvgPool2d extends Module {

    private final int outH;
    private final int outW;

    /** A square output {@code size x size}. */
    public AdaptiveAvgPool2d(int size) {
        this(size, size);
    }

    public AdaptiveAvgPool2d(int outH, int outW) {
        if (outH < 1 || outW < 1) {
            throw new IllegalArgumentException("AdaptiveAvgPool2d: output size must be positive, got (" + outH + ", " + outW + ")");
        }
        this.outH = outH;
        this.outW = outW;
    }

    /** Global average pooling: {@code AdaptiveAvgPool2d((1, 1))}. */
    public static AdaptiveAvgPool2d global() {
        return new AdaptiveAvgPool2d(1, 1);
    }

    @Override
    public Tensor forward(Tensor input) {
        return PoolOps.adaptiveAvgPool2d(input, outH, outW);
    }

    public int outH() {
        return outH;
    }

    public int outW() {
        return outW;
    }

    @Override
    protected String extraRepr() {
        return "output_size=(" + outH + ", " + outW + ")";
    }
}
