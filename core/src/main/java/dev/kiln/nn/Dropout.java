package dev.kiln.nn;

import dev.kiln.core.Generator;
import dev.kiln.core.Tensor;

/**
 * Zeroes each element with probability {@code p} in training and scales the rest by {@code 1/(1-p)}; identity in
 * eval. The mask comes from this layer's own seeded generator, so runs are reproducible on every backend.
 */
public final class Dropout extends Module {

    private final float p;
    private final Generator generator;

    public Dropout(float p, Generator generator) {
        if (!(p >= 0 && p < 1)) {
            throw new IllegalArgumentException("Dropout: p must be in [0, 1), got " + p);
        }
        this.p = p;
        this.generator = generator;
    }

    @Override
    public Tensor forward(Tensor input) {
        if (!isTraining() || p == 0f) {
            return input;
        }
        float[] mask = new float[(int) input.numel()];
        float keep = 1f / (1f - p);
        synchronized (generator) {
            for (int i = 0; i < mask.length; i++) {
                mask[i] = generator.uniform(0f, 1f) < p ? 0f : keep;
            }
        }
        return input.mul(Tensor.of(input.device(), mask, input.shape()));
    }

    @Override
    protected String extraRepr() {
        return "p=" + p;
    }
}
