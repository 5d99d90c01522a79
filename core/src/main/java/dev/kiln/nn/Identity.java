package dev.kiln.nn;

import dev.kiln.core.Tensor;

/**
 * Returns its inputs unchanged: the placeholder where a model may or may not have a layer (a residual block's
 * shortcut when the shapes already match), as PyTorch's {@code nn.Identity}. It has no parameters or state.
 */
public final class Identity extends Module {

    @Override
    public Tensor forward(Tensor input) {
        return input;
    }

    @Override
    public Tensor[] forwardAll(Tensor... inputs) {
        if (inputs == null) {
            throw new IllegalArgumentException("Identity: inputs are null");
        }
        return inputs.clone();
    }
}
