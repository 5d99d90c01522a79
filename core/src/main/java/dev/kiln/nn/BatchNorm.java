package dev.kiln.nn;

import dev.kiln.backend.Activation;
import dev.kiln.core.Device;
import dev.kiln.core.CaptureContext;
import dev.kiln.core.Shapes;
import dev.kiln.core.Tensor;
import dev.kiln.core.TensorScope;
import dev.kiln.nn.functional.BatchNormOp;
import dev.kiln.nn.functional.FusedOps;

import java.util.Map;

/**
 * PyTorch's {@code _BatchNorm}: normalises each channel of (N, C, *) input. In training, uses the batch's biased
 * variance and (with {@code trackRunningStats}) updates {@code running_mean}/{@code running_var} with the unbiased
 * variance, by {@code momentum} or, when momentum is null, by the cumulative average {@code 1/num_batches_tracked}.
 * In eval, uses the running statistics and never changes them; without running statistics it uses batch statistics.
 */
public abstract class BatchNorm extends Module implements FusesActivation {

    private final int numFeatures;
    private final float eps;
    private final Float momentum;
    private final boolean affine;
    private final boolean trackRunningStats;
    /** Batches counted on the host: every committed (or immediate) update, including ones the device skipped. */
    private long numBatchesTracked;
    /** Folded into the layer before it for inference: forward returns its input. */
    private boolean folded;
    /** Guarded updates the device skipped for a non-finite loss (one float; created at the first guarded step). */
    private Tensor skippedUpdates;

    protected BatchNorm(Device device, int numFeatures, float eps, Float momentum, boolean affine, boolean trackRunningStats) {
        if (numFeatures < 1) {
            throw new IllegalArgumentException(getClass().getSimpleName() + ": numFeatures must be positive, got " + numFeatures);
        }
        if (!(eps > 0)) {
            throw new IllegalArgumentException(getClass().getSimpleName() + ": eps must be positive, got " + eps);
        }
        if (momentum != null && !(momentum >= 0 && momentum <= 1)) {
            throw new IllegalArgumentException(getClass().getSimpleName() + ": momentum must be in [0, 1] or null, got " + momentum);
        }
        this.numFeatures = numFeatures;
        this.eps = eps;
        this.momentum = momentum;
        this.affine = affine;
        this.trackRunningStats = trackRunningStats;
        if (affine) {
            registerParameter("weight", Init.constant(device, 1f, numFeatures));
            registerParameter("bias", Init.constant(device, 0f, numFeatures));
        }
        if (trackRunningStats) {
            registerBuffer("running_mean", Init.constant(device, 0f, numFeatures));
            registerBuffer("running_var", Init.constant(device, 1f, numFeatures));
        }
    }

    /** Checks rank; subclasses name the ranks they accept. */
    protected abstract void checkInputDim(int[] shape);

    private void checkInput(int[] s) {
        checkInputDim(s);
        if (s[1] != numFeatures) {
            throw new IllegalArgumentException(this + ": expected " + numFeatures + " channels, found " + s[1]
                    + " in input of shape " + Shapes.toString(s));
        }
    }

    /** Eval mode with running statistics and no gradient recorded: normalisation and activation in one pass. */
    @Override
    public Tensor forwardActivated(Tensor input, Activation activation) {
        if (folded || isTraining() || !trackRunningStats || Tensor.recordsGrad(input, parameter("weight"), parameter("bias"))) {
            return null;
        }
        checkInput(input.shape());
        return FusedOps.batchNormActivation(input, buffer("running_mean"), buffer("running_var"), parameter("weight"),
                parameter("bias"), eps, activation);
    }

    /**
     * Marks this layer as folded into the convolution or linear layer before it (inference rewrites it in place:
     * that layer now computes what the two did), so {@code forward} returns its input. Only in eval mode; a folded
     * layer refuses to train.
     */
    public void markFolded() {
        if (isTraining()) {
            throw new IllegalStateException(this + ": only an eval-mode batch norm can be folded");
        }
        folded = true;
    }

    /** Whether {@link #markFolded} made this layer a pass-through. */
    public boolean isFolded() {
        return folded;
    }

    @Override
    public Tensor forward(Tensor input) {
        int[] s = input.shape();
        checkInput(s);
        if (folded) {
            if (isTraining()) {
                throw new IllegalStateException(this + " was folded into the layer before it for inference and cannot train");
            }
            return input;
        }
        if (isTraining()) {
            long perChannel = input.numel() / s[1];
            if (perChannel <= 1) {
                throw new IllegalArgumentException(this + ": expected more than 1 value per channel when training, got input of shape "
                        + Shapes.toString(s));
            }
        }
        double factor = isTraining() && trackRunningStats ? countTrainingBatch(input.device()) : 0;
        boolean useBatchStats = isTraining() || !trackRunningStats;
        // Running buffers are only passed when they should be updated (training) or used (eval).
        Tensor rm = trackRunningStats && (isTraining() || !useBatchStats) ? buffer("running_mean") : null;
        Tensor rv = trackRunningStats && (isTraining() || !useBatchStats) ? buffer("running_var") : null;
        return BatchNormOp.batchNorm(input, rm, rv, parameter("weight"), parameter("bias"), useBatchStats, factor, eps,
                skipCounter());
    }

    /**
     * {@code activation(forward(input))}, fused where a backend op allows: in training mode with the batch's
     * statistics one op each way ({@link BatchNormOp#batchNormActivationTraining}), in eval mode without gradients
     * the inference op ({@link #forwardActivated}); otherwise the two in turn. Bitwise the values of the two in turn.
     */
    public Tensor forward(Tensor input, Activation activation) {
        if (activation == null) {
            throw new IllegalArgumentException(this + ": activation is null");
        }
        if (activation == Activation.IDENTITY) {
            return forward(input);
        }
        Tensor fused = forwardActivated(input, activation);
        if (fused != null) {
            return fused;
        }
        if (isTraining() && !folded && localBatchStatistics()) {
            int[] s = input.shape();
            checkInput(s);
            if (input.numel() / s[1] <= 1) {
                throw new IllegalArgumentException(this + ": expected more than 1 value per channel when training, got input of shape "
                        + Shapes.toString(s));
            }
            double factor = trackRunningStats ? countTrainingBatch(input.device()) : 0;
            return BatchNormOp.batchNormActivationTraining(input, trackRunningStats ? buffer("running_mean") : null,
                    trackRunningStats ? buffer("running_var") : null, parameter("weight"), parameter("bias"), factor,
                    eps, skipCounter(), activation);
        }
        Tensor normalised = forward(input);
        Tensor out = normalised.activation(activation);
        if (normalised != input) {
            TensorScope.releaseIntermediate(normalised);
        }
        return out;
    }

    /**
     * Whether a training forward normalises with this layer's batch alone, so that {@link #forward(Tensor, Activation)}
     * may fuse it with the activation (a synchronised batch norm across several members does not).
     */
    protected boolean localBatchStatistics() {
        return true;
    }

    /**
     * Counts one more training batch in {@code num_batches_tracked} (at once, or at the commit of the open
     * {@link StepTransaction}) and returns the running-statistics averaging factor for it: the momentum, or
     * {@code 1/num_batches_tracked} when momentum is null. Inside a transaction the layer's device skip counter is
     * created here (see {@link #skipCounter()}).
     */
    protected final double countTrainingBatch(Device device) {
        StepTransaction tx = StepTransaction.current();
        CaptureContext capture = CaptureContext.current();
        if (skippedUpdates != null && skippedUpdates.device() != device && capture == null) {
            // moved to another device: settle the count on the host, start a counter there
            numBatchesTracked = numBatchesTracked();
            skippedUpdates.close();
            skippedUpdates = null;
        }
        if (tx != null && skippedUpdates == null) {
            if (capture != null) {
                CaptureContext.refuse(this + ": its skip counter is created at the first eager step; capture after one");
            }
            skippedUpdates = Tensor.unscoped(device, new float[1], 1);
        }
        if (capture == null) {
            long count = (momentum == null ? numBatchesTracked() : numBatchesTracked) + 1;
            if (tx == null) {
                numBatchesTracked++;
            } else {
                tx.deferHostUpdate(() -> numBatchesTracked++);
            }
            return momentum == null ? 1.0 / count : momentum;
        }
        if (momentum == null) {
            CaptureContext.refuse(this + ": momentum=None averages with 1/num_batches_tracked, a factor that"
                    + " changes every step and would be frozen into the graph");
        }
        // the capture itself runs nothing; every replay is one more batch
        capture.afterReplay(() -> numBatchesTracked++);
        return momentum;
    }

    /** The device counter of guarded updates skipped inside step transactions (null outside one). */
    protected final Tensor skipCounter() {
        return StepTransaction.current() == null ? null : skippedUpdates;
    }

    /** Checks rank and channel count of an input. */
    protected final void checkShape(int[] shape) {
        checkInput(shape);
    }

    @Override
    protected Map<String, StateDict.Entry> extraState() {
        return trackRunningStats ? Map.of("num_batches_tracked", StateDict.Entry.ofLong(numBatchesTracked())) : Map.of();
    }

    @Override
    protected StateDict.Entry extraStateDefault(String key) {
        return key.equals("num_batches_tracked") ? StateDict.Entry.ofLong(0) : null;
    }

    @Override
    protected void loadExtraState(String key, StateDict.Entry value) {
        if (!key.equals("num_batches_tracked")) {
            super.loadExtraState(key, value);
        }
        numBatchesTracked = value.dtype() == StateDict.DType.I64 ? value.longValue() : (long) value.data()[0];
        if (skippedUpdates != null) {
            skippedUpdates.fill(0f);
        }
    }

    @Override
    public void close() {
        if (skippedUpdates != null) {
            skippedUpdates.close();
            skippedUpdates = null;
        }
        super.close();
    }

    public Tensor runningMean() {
        return buffer("running_mean");
    }

    public Tensor runningVar() {
        return buffer("running_var");
    }

    public Tensor weight() {
        return parameter("weight");
    }

    public Tensor bias() {
        return parameter("bias");
    }

    /**
     * Batches the running statistics have absorbed; after training steps whose loss was not finite (skipped on the
     * device) this reads the device's skip count, a host wait.
     */
    public long numBatchesTracked() {
        return skippedUpdates == null ? numBatchesTracked : numBatchesTracked - (long) skippedUpdates.item();
    }

    public int numFeatures() {
        return numFeatures;
    }

    public float eps() {
        return eps;
    }

    /** The momentum, or null for a cumulative moving average. */
    public Float momentum() {
        return momentum;
    }

    public boolean affine() {
        return affine;
    }

    public boolean trackRunningStats() {
        return trackRunningStats;
    }

    @Override
    protected String extraRepr() {
        return numFeatures + ", eps=" + eps + ", momentum=" + (momentum == null ? "None" : momentum)
                + ", affine=" + (affine ? "True" : "False") + ", track_running_stats=" + (trackRunningStats ? "True" : "False");
    }
}
