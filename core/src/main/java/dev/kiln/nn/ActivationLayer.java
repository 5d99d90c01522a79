package dev.kiln.nn;

import dev.kiln.backend.Activation;

/** A module that applies one element-wise {@link Activation}, which the layer before it may fuse into its output. */
public interface ActivationLayer {

    Activation activation();
}
