package dev.kiln.train;

import dev.kiln.core.Tensor;

import java.util.List;

/**
 * How a {@link TrainingStep} keeps its model in step with other replicas (data-parallel training): the step calls
 * {@link #beforeStep()} before its forward pass, {@link #reduce} between the backward pass and the optimizer, and
 * {@link #afterStep()} once the step has committed. {@link #NONE} is training on one replica;
 * {@link dev.kiln.distributed.DataParallel} averages gradients (or parameters) over a
 * {@link dev.kiln.distributed.Collective}.
 */
public interface ReplicaSync {

    /** One replica: nothing to exchange. */
    ReplicaSync NONE = (parameters, guard) -> {
    };

    /** Before the forward pass (e.g. copying another replica's buffers in). */
    default void beforeStep() {
    }

    /**
     * Combines this replica's gradients with the other replicas': on return each parameter's gradient (a missing
     * one counts as zeros) is the reduced one. {@code guard} (one value on the device) is the step's loss when the
     * loss, every gradient and every value the step will write are finite, and NaN or infinite otherwise; it must be
     * replaced by a value that is finite on every replica or on none (e.g. its mean), so that all replicas make the
     * same decision to commit or skip the step, and what it then holds is what the step reports as its loss.
     */
    void reduce(List<Tensor> parameters, Tensor guard);

    /** After the step committed (or was skipped on the device), e.g. a periodic parameter average. */
    default void afterStep() {
    }
}
