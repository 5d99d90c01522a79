package dev.kiln.core;

/**
 * The backward of one operation: given the gradient of the loss with respect to the op's output, returns the
 * gradients with respect to each input, in order ({@code null} where an input needs none).
 */
@FunctionalInterface
public interface GradFn {
    Tensor[] backward(Tensor gradOutput);
}
