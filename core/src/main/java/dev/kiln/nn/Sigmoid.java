package dev.kiln.nn;

import dev.kiln.backend.Activation;

/** {@code torch.nn.Sigmoid}. */
public final class Sigmoid extends ActivationLayer {

    public Sigmoid() {
        super(Activation.SIGMOID);
    }
}
