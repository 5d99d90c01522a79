package dev.kiln.train;

/**
 * What one epoch measured. {@code trainSeconds} covers the training loop only (no evaluation, no data loading
 * before the loop, no JVM start).
 */
public record EpochMetrics(int epoch, double trainLoss, double trainAccuracy, double testLoss, double testAccuracy,
                           long trainImages, double trainSeconds) {

    public double imagesPerSecond() {
        return trainSeconds > 0 ? trainImages / trainSeconds : 0;
    }
}
