package dev.kiln.backend;

/** Element-wise functions of a tensor {@code x} and a float {@code s}. */
public enum ScalarOp {
    /** x + s */
    ADD,
    /** x * s */
    MUL,
    /** x ^ s */
    POW,
    /** s - x */
    RSUB,
    /** s / x */
    RDIV,
    /** max(x, s) */
    MAX,
    /** min(x, s) */
    MIN
}
