package dev.kiln.nn;

import dev.kiln.backend.Activation;

/** {@code torch.nn.ReLU}. */
public final class ReLU extends ActivationLayer {

    public ReLU() {
        super(Activation.RELU);
    }
}
