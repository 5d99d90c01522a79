package dev.kiln.spark;

import java.io.Serializable;

/**
 * What one barrier task reports after training: rank 0 also carries the trained model as self-contained bytes.
 *
 * @param collectiveNanos    wall time in the data-parallel exchanges: gradient buckets with the step's guard (or
 *                           parameter averages), buffer broadcasts (waiting for peers included)
 * @param steps              steps this task ran (the short last batch of an epoch included)
 * @param syncBatchNormNanos wall time in SyncBatchNorm's statistics exchanges
 * @param trainNanos      wall time of the training loop
 * @param epochLosses     mean (over all tasks) training loss of each epoch
 */
public record TrainingReport(int rank, int worldSize, long steps, long images, long collectiveNanos,
                             long syncBatchNormNanos, long trainNanos, double[] epochLosses, String device,
                             byte[] model) implements Serializable {
}
