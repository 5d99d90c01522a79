package dev.kiln.optim;

import dev.kiln.core.Tensor;

import java.util.List;

/** Adam with decoupled weight decay ({@code p *= 1 - lr * weightDecay}); PyTorch's default weight decay 0.01. */
public final class AdamW extends Adam {

    public AdamW(List<Tensor> params, float lr) {
        this(params, lr, 0.9f, 0.999f, 1e-8f, 0.01f);
    }

    public AdamW(List<Tensor> params, float lr, float beta1, float beta2, float eps, float weightDecay) {
        super(params, lr, beta1, beta2, eps, weightDecay, true);
    }

    AdamW(ParamGroup[] groups, float lr, float beta1, float beta2, float eps, float weightDecay) {
        super(groups, lr, beta1, beta2, eps, weightDecay, true);
    }

    /** Keyword-style construction with PyTorch's defaults (betas 0.9, 0.999; eps 1e-8; weight decay 0.01). */
    public static Builder builder() {
        return new Builder(true);
    }
}
