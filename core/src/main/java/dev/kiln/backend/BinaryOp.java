package dev.kiln.backend;

/**
 * Element-wise functions of two tensors, with NumPy/PyTorch broadcasting. {@code MAX} and {@code MIN} propagate NaN
 * ({@code torch.maximum}/{@code torch.minimum}). Each constant's {@link #code()} is the number the CUDA kernels switch
 * on ({@code KILN_BINARY_*} in {@code cuda/src/main/cuda/ops.cuh}; a test compares the two).
 */
public enum BinaryOp {
    ADD(0), SUB(1), MUL(2), DIV(3), MAX(4), MIN(5);

    private final int code;

    BinaryOp(int code) {
        this.code = code;
    }

    /** The operation code shared with the CUDA kernels. */
    public int code() {
        return code;
    }
}
