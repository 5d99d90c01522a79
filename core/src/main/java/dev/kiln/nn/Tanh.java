package dev.kiln.nn;

import dev.kiln.backend.Activation;
import dev.kiln.core.Tensor;

public final class Tanh extends Module implements ActivationLayer {
    @Override
    public Tensor forward(Tensor input) {
        return input.tanh();
    }

    @Override
    public Activation activation() {
        return Activation.TANH;
    }
}
