package dev.kiln.nn;

import dev.kiln.backend.Activation;
import dev.kiln.core.Tensor;

/**
 * A module that applies one element-wise {@link Activation}, which the layer before it may fuse into its output
 * ({@link FusesActivation}). {@code new ActivationLayer(Activation.X)} is the layer of any declared activation;
 * {@link Sigmoid}, {@link ReLU} and {@link Tanh} are the named ones PyTorch users know.
 */
public class ActivationLayer extends Module {

    private final Activation activation;

    public ActivationLayer(Activation activation) {
        if (activation == null) {
            throw new IllegalArgumentException("activation layer: activation is null");
        }
        this.activation = activation;
    }

    @Override
    public Tensor forward(Tensor input) {
        return input.activation(activation);
    }

    public Activation activation() {
        return activation;
    }

    @Override
    protected String extraRepr() {
        return getClass() == ActivationLayer.class ? activation.name().toLowerCase(java.util.Locale.ROOT) : "";
    }
}
