package dev.kiln.nn;

import dev.kiln.core.Tensor;
import dev.kiln.nn.functional.PoolOps;

/**
 * PyTorch's {@code nn.AdaptiveMaxPool2d}: the maximum of each of PyTorch's adaptive windows, (N, C, H, W) to
 * (N, C, outH, outW); the gradient goes to the position of each maximum (the first in row-major order, as PyTorch
 * records it). {@link PoolOps#adaptiveMaxPool2dWithIndices} also returns those positions.
 */
public final class AdaptiveMaxPool2d extends Module {

    private final int outH;
    private final int outW;

    /** A square output {@code size x size}. */
    public AdaptiveMaxPool2d(int size) {
        this(size, size);
    }

    public AdaptiveMaxPool2d(int outH, int outW) {
        if (outH < 1 || outW < 1) {
            throw new IllegalArgumentException("AdaptiveMaxPool2d: output size must be positive, got (" + outH + ", " + outW + ")");
        }
        this.outH = outH;
        this.outW = outW;
    }

    /** Global max pooling: {@code AdaptiveMaxPool2d((1, 1))}. */
    public static AdaptiveMaxPool2d global() {
        return new AdaptiveMaxPool2d(1, 1);
    }

    @Override
    public Tensor forward(Tensor input) {
        return PoolOps.adaptiveMaxPool2d(input, outH, outW);
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
