package dev.kiln.nn;

import dev.kiln.core.Tensor;

/** A criterion: a scalar from predictions and targets. */
public interface Loss {
    Tensor forward(Tensor input, Tensor target);
}
