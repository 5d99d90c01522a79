package dev.kiln.nn;

import dev.kiln.core.Tensor;

public final class Sigmoid extends Module {
    @Override
    public Tensor forward(Tensor input) {
        return input.sigmoid();
    }
}
