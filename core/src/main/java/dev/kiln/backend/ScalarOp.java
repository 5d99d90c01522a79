package dev.kiln.backend;

/**
 * Element-wise functions of a tensor {@code x} and a float {@code s}. Each constant's {@link #code()} is the number
 * the CUDA kernels switch on ({@code KILN_SCALAR_*} in {@code cuda/src/main/cuda/ops.cuh}; a test compares the two).
 */
public enum ScalarOp {
    /** x + s */
    ADD(0),
    /** x * s */
    MUL(1),
    /** x ^ s */
    POW(2),
    /** s - x */
    RSUB(3),
    /** max(x, s); NaN propagates ({@code torch.clamp_min}) */
    MAX(5),
    /** min(x, s); NaN propagates ({@code torch.clamp_max}) */
    MIN(6);

    private final int code;

    ScalarOp(int code) {
        this.code = code;
    }

    /** The operation code shared with the CUDA kernels. */
    public int code() {
        return code;
    }
}
