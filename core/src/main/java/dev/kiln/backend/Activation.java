package dev.kiln.backend;

/** Activations that both backends implement with a fused forward and backward (cuDNN on the GPU). */
public enum Activation {
    SIGMOID, RELU, TANH
}
