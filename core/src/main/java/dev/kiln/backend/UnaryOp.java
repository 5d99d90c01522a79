package dev.kiln.backend;

/** Element-wise functions of one tensor. Activations with a dedicated backward live in {@link Activation}. */
public enum UnaryOp {
    NEG, EXP, LOG, SQRT, ABS, SQUARE, RECIPROCAL
}
