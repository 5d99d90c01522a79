package dev.kiln.nn;

import dev.kiln.core.Tensor;
import dev.kiln.nn.functional.LossOps;

/** Cross-entropy from logits (N, C) and class indices (N), mean reduction. */
public final class CrossEntropyLoss implements Loss {
    @Override
    public Tensor forward(Tensor logits, Tensor targets) {
        return LossOps.crossEntropy(logits, targets);
    }
}
