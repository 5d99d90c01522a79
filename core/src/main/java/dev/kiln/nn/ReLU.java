package dev.kiln.nn;

import dev.kiln.backend.Activation;
import dev.kiln.core.Tensor;

public final class ReLU extends Module implements ActivationLayer {
    @Override
    public Tensor forward(Tensor input) {
        return input.relu();
    }

    @Override
    public Activation activation() {
        return Activation.RELU;
    }
}
