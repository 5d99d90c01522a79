package dev.kiln.nn;

import dev.kiln.core.Tensor;

/** Flattens all dimensions after the first (batch) one. */
public final class Flatten extends Module {
    @Override
    public Tensor forward(Tensor input) {
        return input.flatten(1);
    }
}
