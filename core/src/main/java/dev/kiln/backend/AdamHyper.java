package dev.kiln.backend;

/**
 * One Adam/AdamW step with PyTorch's rule. {@code step} is 1 on the first update (bias correction).
 * {@code decoupledWeightDecay} selects AdamW ({@code p *= 1 - lr * weightDecay}) instead of L2 added to the gradient.
 */
public record AdamHyper(float lr, float beta1, float beta2, float eps, float weightDecay,
                        boolean decoupledWeightDecay, long step) {
}
