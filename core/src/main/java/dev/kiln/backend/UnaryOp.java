package dev.kiln.backend;

/**
 * Element-wise functions of one tensor. Activations with a dedicated backward live in {@link Activation}. Each
 * constant's {@link #code()} is the number the CUDA kernels switch on ({@code KILN_UNARY_*} in
 * {@code cuda/src/main/cuda/ops.cuh}; a test compares the two).
 */
public enum UnaryOp {
    NEG(0), EXP(1), LOG(2), SQRT(3), ABS(4), SQUARE(5), RECIPROCAL(6);

    private final int code;

    UnaryOp(int code) {
        this.code = code;
    }

    /** The operation code shared with the CUDA kernels. */
    public int code() {
        return code;
    }
}
