package dev.kiln.nn;

import dev.kiln.backend.Activation;

/** {@code torch.nn.Tanh}. */
public final class Tanh extends ActivationLayer {

    public Tanh() {
        super(Activation.TANH);
    }
}
