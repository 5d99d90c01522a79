package dev.kiln.train;

import java.util.concurrent.CancellationException;

/**
 * A {@link Trainer} run stopped by its {@link Cancellation} or by an interrupt, between two steps: the model and the
 * optimizer hold the state after the last completed step, and the last checkpoint is that of the last completed epoch.
 */
public final class TrainingCancelledException extends CancellationException {

    private final int completedEpochs;

    TrainingCancelledException(String message, int completedEpochs) {
        super(message);
        this.completedEpochs = completedEpochs;
    }

    /** Epochs finished (and checkpointed, when checkpoints are on) before the stop. */
    public int completedEpochs() {
        return completedEpochs;
    }
}
