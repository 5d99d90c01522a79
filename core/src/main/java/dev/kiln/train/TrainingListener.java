package dev.kiln.train;

/** Receives progress from a {@link Trainer}; every method has a no-op default. Called on the training thread. */
public interface TrainingListener {

    default void onEpochStart(int epoch, int totalEpochs, int batches) {
    }

    /**
     * After every {@code reportEvery}-th training step and after the last of the epoch (see
     * {@link Trainer.Builder#reportEvery}): reading the loss waits for the device, so it is not done every step.
     *
     * @param lossValue the mean loss of the batches since the previous call
     * @param imagesPerSecond training throughput of this epoch so far
     */
    default void onBatch(int epoch, int batch, int batches, double lossValue, double imagesPerSecond) {
    }

    default void onEpochEnd(EpochMetrics metrics) {
    }
}
