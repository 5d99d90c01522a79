package dev.kiln.nn;

import dev.kiln.backend.Activation;
import dev.kiln.core.Tensor;

/**
 * A layer that can produce {@code activation(forward(input))} in one pass (one kernel on the GPU) when nothing needs
 * the intermediate: inference, with no gradient recorded. {@link LayerChain} asks; the layer decides.
 */
public interface FusesActivation {

    /** The fused result, or null when this call must take the ordinary path (training, gradients recorded). */
    Tensor forwardActivated(Tensor input, Activation activation);
}
