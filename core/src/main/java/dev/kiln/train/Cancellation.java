package dev.kiln.train;

/**
 * Stops a {@link Trainer} run from another thread: after {@link #cancel()}, the run finishes the step in progress
 * (a step is never cut in half), stops its data loading and throws {@link TrainingCancelledException}. Interrupting
 * the training thread has the same effect.
 */
public final class Cancellation {

    private volatile boolean cancelled;

    /** Asks the run to stop; safe from any thread, idempotent. */
    public void cancel() {
        cancelled = true;
    }

    public boolean isCancelled() {
        return cancelled;
    }

    /** Allows the trainer to run again after a cancellation. */
    public void reset() {
        cancelled = false;
    }
}
