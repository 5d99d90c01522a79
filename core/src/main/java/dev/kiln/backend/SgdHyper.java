package dev.kiln.backend;

/**
 * One SGD step with PyTorch's rule: {@code g = grad + weightDecay * p}; with momentum,
 * {@code buf = firstStep ? g : momentum * buf + (1 - dampening) * g} and {@code g = nesterov ? g + momentum * buf : buf};
 * then {@code p -= lr * g}.
 */
public record SgdHyper(float lr, float momentum, float dampening, boolean nesterov, float weightDecay, boolean firstStep) {
}
