package dev.kiln.nn;

import dev.kiln.core.Device;
import dev.kiln.core.Shapes;

/** Batch norm over (N, C, H, W). Defaults: eps 1e-5, momentum 0.1, affine, tracking running statistics. */
public final class BatchNorm2d extends BatchNorm {

    public BatchNorm2d(Device device, int numFeatures) {
        this(device, numFeatures, 1e-5f, 0.1f, true, true);
    }

    /** @param momentum null for a cumulative moving average */
    public BatchNorm2d(Device device, int numFeatures, float eps, Float momentum, boolean affine, boolean trackRunningStats) {
        super(device, numFeatures, eps, momentum, affine, trackRunningStats);
    }

    @Override
    protected void checkInputDim(int[] shape) {
        if (shape.length != 4) {
            throw new IllegalArgumentException(this + ": expected 4D (N, C, H, W) input, got "
                    + shape.length + "D input of shape " + Shapes.toString(shape));
        }
    }
}
