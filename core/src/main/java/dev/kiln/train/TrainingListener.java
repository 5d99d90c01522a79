package dev.kiln.train;

/** Receives progress from a {@link Trainer}; every method has a no-op default. Called on the training thread. */
public interface TrainingListener {

    default void onEpochStart(int epoch, int totalEpochs, int batches) {
    }

    /**
     * After each training step.
     *
     * @param lossValue this batch's loss
     * @param imagesPerSecond training throughput of this epoch so far
     */
    default void onBatch(int epoch, int batch, int batches, double lossValue, double imagesPerSecond) {
    }

    default void onEpochEnd(EpochMetrics metrics) {
    }
}
