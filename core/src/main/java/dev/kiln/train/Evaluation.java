package dev.kiln.train;

/** Mean loss and accuracy (0..1) over a data set. */
public record Evaluation(double loss, double accuracy, long samples) {
}
