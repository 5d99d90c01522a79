package dev.kiln.nn;

import dev.kiln.core.Device;
import dev.kiln.core.Shapes;
import dev.kiln.core.Tensor;
import dev.kiln.distributed.Collective;
import dev.kiln.nn.functional.SyncBatchNormOp;

import java.util.Objects;

/**
 * PyTorch's {@code SyncBatchNorm}: batch normalisation over (N, C, *) whose training statistics, and the reductions
 * of its backward pass, span the global batch of every member of a {@link Collective}. N members with b samples
 * each normalise exactly as one member with N*b samples would; {@code running_mean} and {@code running_var} are
 * updated from the global mean and the global unbiased variance (count over all members), with momentum or the
 * cumulative average, so they too match the single large batch.
 *
 * <p>As in PyTorch: eval mode uses the running statistics (no exchange); a group of one member is plain batch
 * norm; the gradients of {@code weight} and {@code bias} are the member's own (the data-parallel gradient average
 * combines them). Every member must run the same layers in the same order, since each training forward and
 * backward is a collective call.
 */
public final class SyncBatchNorm extends BatchNorm {

    private final Collective collective;

    /** Defaults: eps 1e-5, momentum 0.1, affine, tracking running statistics. */
    public SyncBatchNorm(Device device, int numFeatures, Collective collective) {
        this(device, numFeatures, 1e-5f, 0.1f, true, true, collective);
    }

    /** @param momentum null for a cumulative moving average */
    public SyncBatchNorm(Device device, int numFeatures, float eps, Float momentum, boolean affine,
                         boolean trackRunningStats, Collective collective) {
        super(device, numFeatures, eps, momentum, affine, trackRunningStats);
        this.collective = Objects.requireNonNull(collective, "collective");
    }

    public Collective collective() {
        return collective;
    }

    @Override
    protected void checkInputDim(int[] shape) {
        if (shape.length < 2) {
            throw new IllegalArgumentException(this + ": expected at least 2D (N, C, *) input, got "
                    + shape.length + "D input of shape " + Shapes.toString(shape));
        }
    }

    @Override
    protected boolean localBatchStatistics() {
        return collective.worldSize() == 1;
    }

    @Override
    public Tensor forward(Tensor input) {
        if (!isTraining() || collective.worldSize() == 1) {
            return super.forward(input);
        }
        checkShape(input.shape());
        if (input.shape()[0] < 1) {
            throw new IllegalArgumentException(this + ": every member needs at least one sample when training, got"
                    + " input of shape " + Shapes.toString(input.shape()));
        }
        double factor = trackRunningStats() ? countTrainingBatch(input.device()) : 0;
        Tensor rm = trackRunningStats() ? runningMean() : null;
        Tensor rv = trackRunningStats() ? runningVar() : null;
        return SyncBatchNormOp.syncBatchNorm(input, rm, rv, affine() ? weight() : null, affine() ? bias() : null,
                factor, eps(), collective, toString(), skipCounter());
    }

    @Override
    protected String extraRepr() {
        return super.extraRepr() + ", world_size=" + collective.worldSize();
    }
}
