package dev.kiln.optim;

import dev.kiln.backend.SgdHyper;
import dev.kiln.core.CaptureContext;
import dev.kiln.core.Tensor;

import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** Stochastic gradient descent with PyTorch's momentum, dampening, Nesterov and weight-decay rule. */
public final class SGD extends Optimizer {

    private final float momentum;
    private final float dampening;
    private final boolean nesterov;
    private final float weightDecay;
    private final Set<Tensor> started = java.util.Collections.newSetFromMap(new IdentityHashMap<>());

    public SGD(List<Tensor> params, float lr) {
        this(params, lr, 0f, 0f, false, 0f);
    }

    public SGD(List<Tensor> params, float lr, float momentum, float dampening, boolean nesterov, float weightDecay) {
        super(params, lr);
        if (!(lr >= 0) || !(momentum >= 0) || !(weightDecay >= 0)) {
            throw new IllegalArgumentException("SGD: lr, momentum and weight decay must be >= 0, got lr=" + lr
                    + " momentum=" + momentum + " weight_decay=" + weightDecay);
        }
        if (nesterov && (momentum <= 0 || dampening != 0)) {
            throw new IllegalArgumentException("SGD: Nesterov momentum requires a momentum and zero dampening");
        }
        this.momentum = momentum;
        this.dampening = dampening;
        this.nesterov = nesterov;
        this.weightDecay = weightDecay;
    }

    @Override
    protected Tensor[] newState(Tensor param) {
        return momentum == 0f ? new Tensor[0] : new Tensor[]{zerosLike(param)};
    }

    @Override
    protected String[] stateNames() {
        return momentum == 0f ? new String[0] : new String[]{"momentum_buffer"};
    }

    @Override
    protected void update(Tensor p, Tensor g, Tensor[] s) {
        if (momentum != 0f && !started.contains(p)) {
            CaptureContext.refuse("SGD's first momentum step differs from the later ones; capture after one eager step");
        }
        boolean first = momentum != 0f && started.add(p);
        SgdHyper h = new SgdHyper(lr(), momentum, dampening, nesterov, weightDecay, first);
        p.device().backend().sgdStep(h, p.buffer(), g.buffer(), s.length == 0 ? null : s[0].buffer(), p.numel());
    }

    @Override
    protected Map<String, Long> counters() {
        return Map.of();
    }

    @Override
    protected void loadCounters(Map<String, Long> counters) {
    }

    @Override
    public void loadStateDict(dev.kiln.nn.StateDict sd) {
        super.loadStateDict(sd);
        // A restored momentum buffer is not a first step any more.
        for (int i = 0; i < params.size(); i++) {
            if (sd.get("state." + i + ".momentum_buffer") != null) {
                started.add(params.get(i));
            }
        }
    }
}
