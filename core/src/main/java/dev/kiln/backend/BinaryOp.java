package dev.kiln.backend;

/** Element-wise functions of two tensors, with NumPy/PyTorch broadcasting. */
public enum BinaryOp {
    ADD, SUB, MUL, DIV, MAX, MIN
}
