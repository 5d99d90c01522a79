package dev.kiln.backend;

/**
 * Element-wise activations with a fused forward and backward ({@link Backend#activationForward},
 * {@link Backend#activationBackward}) that a layer may also fuse into its output ({@link Backend#biasActivation},
 * {@link Backend#batchNormForwardInference}). The declaration of an activation: each constant's {@link #code()} is the
 * number the CUDA kernels switch on ({@code KILN_ACT_*} in {@code cuda/src/main/cuda/activations.cuh}; a test compares
 * the two). {@code docs/adding-an-op.md} lists what else a new activation needs.
 */
public enum Activation {
    /** {@code x}: no activation (a layer that fuses nothing). */
    IDENTITY(0),
    /** {@code 1 / (1 + exp(-x))}. */
    SIGMOID(1),
    /** {@code max(x, 0)}; NaN propagates; the derivative at 0 is 0. */
    RELU(2),
    /** {@code tanh(x)}. */
    TANH(3),
    /**
     * {@code min(max(x, 0), 6)} (PyTorch's {@code ReLU6}); NaN propagates. The derivative is 1 on (0, 6) and for NaN,
     * 0 elsewhere (at 0 and 6 too), as PyTorch's {@code hardtanh_backward}.
     */
    RELU6(4);

    private final int code;

    Activation(int code) {
        this.code = code;
    }

    /** The operation code shared with the CUDA kernels. */
    public int code() {
        return code;
    }
}
