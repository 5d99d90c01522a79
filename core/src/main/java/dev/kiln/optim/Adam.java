package dev.kiln.optim;

import dev.kiln.backend.AdamHyper;
import dev.kiln.core.Tensor;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * Adam (L2 weight decay added to the gradient), PyTorch's update rule with bias correction, with parameter groups
 * ({@link ParamGroup}: lr, betas, eps, weight decay each). See {@link AdamW}.
 */
public class Adam extends Optimizer {

    private final float[] beta1;
    private final float[] beta2;
    private final float[] eps;
    private final float[] weightDecay;
    private final boolean decoupled;
    private long step;

    public Adam(List<Tensor> params, float lr) {
        this(params, lr, 0.9f, 0.999f, 1e-8f, 0f);
    }

    public Adam(List<Tensor> params, float lr, float beta1, float beta2, float eps, float weightDecay) {
        this(params, lr, beta1, beta2, eps, weightDecay, false);
    }

    protected Adam(List<Tensor> params, float lr, float beta1, float beta2, float eps, float weightDecay, boolean decoupled) {
        this(new ParamGroup[]{ParamGroup.of(Objects.requireNonNull(params, "params"))}, lr, beta1, beta2, eps, weightDecay, decoupled);
    }

    protected Adam(ParamGroup[] groupArray, float lr, float beta1, float beta2, float eps, float weightDecay,
                   boolean decoupled) {
        super(List.of(groupArray), lr, Set.of("beta1", "beta2", "eps", "weight_decay"));
        List<ParamGroup> groups = List.of(groupArray);
        int n = groups.size();
        this.beta1 = new float[n];
        this.beta2 = new float[n];
        this.eps = new float[n];
        this.weightDecay = new float[n];
        for (int g = 0; g < n; g++) {
            ParamGroup group = groups.get(g);
            this.beta1[g] = group.floatOption("beta1", beta1);
            this.beta2[g] = group.floatOption("beta2", beta2);
            this.eps[g] = group.floatOption("eps", eps);
            this.weightDecay[g] = group.floatOption("weight_decay", weightDecay);
            float b1 = this.beta1[g];
            float b2 = this.beta2[g];
            if (!(lr(g) >= 0) || !(b1 >= 0 && b1 < 1) || !(b2 >= 0 && b2 < 1) || !(this.eps[g] >= 0)
                    || !(this.weightDecay[g] >= 0)) {
                throw new IllegalArgumentException(getClass().getSimpleName() + ": invalid hyper-parameters lr=" + lr(g)
                        + " betas=(" + b1 + ", " + b2 + ") eps=" + this.eps[g] + " weight_decay=" + this.weightDecay[g]
                        + (n == 1 ? "" : " (parameter group " + g + ")"));
            }
        }
        this.decoupled = decoupled;
    }

    /** Keyword-style construction with PyTorch's defaults (betas 0.9, 0.999; eps 1e-8; no weight decay). */
    public static Builder builder() {
        return new Builder(false);
    }

    /** Builds {@link Adam} or, from {@link AdamW#builder()}, {@link AdamW}; {@code lr} is required. */
    public static final class Builder {
        private final boolean decoupled;
        private final List<ParamGroup> groups = new ArrayList<>();
        private Float lr;
        private float beta1 = 0.9f;
        private float beta2 = 0.999f;
        private float eps = 1e-8f;
        private float weightDecay;

        Builder(boolean decoupled) {
            this.decoupled = decoupled;
            this.weightDecay = decoupled ? 0.01f : 0f;
        }

        /** A group with the defaults. */
        public Builder params(List<Tensor> params) {
            return group(ParamGroup.of(params));
        }

        public Builder group(ParamGroup group) {
            groups.add(Objects.requireNonNull(group, "group"));
            return this;
        }

        public Builder lr(float lr) {
            this.lr = lr;
            return this;
        }

        public Builder betas(float beta1, float beta2) {
            this.beta1 = beta1;
            this.beta2 = beta2;
            return this;
        }

        public Builder eps(float eps) {
            this.eps = eps;
            return this;
        }

        public Builder weightDecay(float weightDecay) {
            this.weightDecay = weightDecay;
            return this;
        }

        /** An {@link AdamW} when the builder came from {@link AdamW#builder()}. */
        public Adam build() {
            if (lr == null) {
                throw new IllegalArgumentException((decoupled ? "AdamW" : "Adam") + ": lr is required");
            }
            return decoupled ? new AdamW(groups.toArray(new ParamGroup[0]), lr, beta1, beta2, eps, weightDecay)
                    : new Adam(groups.toArray(new ParamGroup[0]), lr, beta1, beta2, eps, weightDecay, false);
        }
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
        int i = groupIndex(p);
        AdamHyper h = new AdamHyper(lr(i), beta1[i], beta2[i], eps[i], weightDecay[i], decoupled, step);
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
