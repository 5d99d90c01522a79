package dev.kiln.nn;

import dev.kiln.core.Tensor;
import dev.kiln.nn.functional.LossOps;

/** Mean squared error, mean reduction. */
public final class MSELoss implements Loss {
    @Override
    public Tensor forward(Tensor input, Tensor target) {
        return LossOps.mse(input, target);
    }
}
