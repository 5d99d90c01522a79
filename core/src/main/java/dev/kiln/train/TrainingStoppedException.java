package dev.kiln.train;

import java.nio.file.Path;

/**
 * {@link Trainer#fit} stopped before a batch because {@link Trainer#requestStop} was called (e.g. on Ctrl-C). The
 * model holds the state after the previous batch; nothing was written for the unfinished epoch.
 */
public class TrainingStoppedException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    private final int epoch;
    private final int batch;
    private final int completedEpochs;
    private final transient Path lastCheckpoint;

    public TrainingStoppedException(int epoch, int batch, int completedEpochs, Path lastCheckpoint) {
        super("training stopped before batch " + batch + " of epoch " + epoch + " (" + completedEpochs
                + " epoch(s) completed); " + (lastCheckpoint == null ? "no checkpoint was written"
                : "the last checkpoint is " + lastCheckpoint));
        this.epoch = epoch;
        this.batch = batch;
        this.completedEpochs = completedEpochs;
        this.lastCheckpoint = lastCheckpoint;
    }

    public int epoch() {
        return epoch;
    }

    public int batch() {
        return batch;
    }

    /** Epochs finished (and checkpointed, when checkpoints are on) before the stop. */
    public int completedEpochs() {
        return completedEpochs;
    }

    /** The newest complete checkpoint of the run, or null when none was written or resumed from. */
    public Path lastCheckpoint() {
        return lastCheckpoint;
    }
}
