package dev.kiln.core;

/** Thrown by {@link Tensor#backward()} when the loss is NaN or infinite, before any gradient or parameter changes. */
public class NonFiniteLossException extends ArithmeticException {
    public NonFiniteLossException(String message) {
        super(message);
    }
}
