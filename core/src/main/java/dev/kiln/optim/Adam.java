package dev.kiln.optim;

import dev.kiln.backend.AdamHyper;
import dev.kiln.core.Tensor;

import java.util.List;
import java.util.Map;

/** Adam (L2 weight decay added to the gradient), PyTorch's update rule with bias correction. See {@link AdamW}. */
public class Adam extends Optimizer {

    private final float beta1;
    private final float beta2;
    private final float eps;
    private final float weightDecay;
    private final boolean decoupled;
    private long step;

    public Adam(List<Tensor> params, float lr) {
        this(params, lr, 0.9f, 0.999f, 1e-8f, 0f);
    }

    public Adam(List<Tensor> params, float lr, float beta1, float beta2, float eps, float weightDecay) {
        this(params, lr, beta1, beta2, eps, weightDecay, false);
    }

    protected Adam(List<Tensor> params, float lr, float beta1, float beta2, float eps, float weightDecay, boolean decoupled) {
        super(params, lr);
        if (!(lr >= 0) || !(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1) || !(eps >= 0) || !(weightDecay >= 0)) {
            throw new IllegalArgumentException(getClass().getSimpleName() + ": invalid hyper-parameters lr=" + lr
                    + " betas=(" + beta1 + ", " + beta2 + ") eps=" + eps + " weight_decay=" + weightDecay);
        }
        this.beta1 = beta1;
        this.beta2 = beta2;
        this.eps = eps;
        this.weightDecay = weightDecay;
        this.decoupled = decoupled;
    }

    @Override
    protected void beforeStep() {
        dev.kiln.core.CaptureContext.refuse("Adam's bias correction depends on the step count, which a replay cannot advance");
        step++;
    }

    @Override
    protected Tensor[] newState(Tensor param) {
        return new Tensor[]{zerosLike(param), zerosLike(param)};
    }

    @Override
    protected String[] stateNames() {
        return new String[]{"exp_avg", "exp_avg_sq"};
    }

    @Override
    protected void update(Tensor p, Tensor g, Tensor[] s) {
        AdamHyper h = new AdamHyper(lr(), beta1, beta2, eps, weightDecay, decoupled, step);
        p.device().backend().adamStep(h, p.buffer(), g.buffer(), s[0].buffer(), s[1].buffer(), p.numel());
    }

    @Override
    protected Map<String, Long> counters() {
        return Map.of("step", step);
    }

    @Override
    protected void loadCounters(Map<String, Long> counters) {
        step = counters.getOrDefault("step", 0L);
    }
}
