package dev.kiln.optim;

import dev.kiln.backend.Buffer;
import dev.kiln.backend.SgdHyper;
import dev.kiln.core.CaptureContext;
import dev.kiln.core.Device;
import dev.kiln.core.Tensor;

import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Stochastic gradient descent with PyTorch's momentum, dampening, Nesterov and weight-decay rule, every parameter of a
 * device in one {@code sgdStepMany} (like PyTorch's {@code fused=True}).
 */
public final class SGD extends Optimizer {

    private final float momentum;
    private final float dampening;
    private final boolean nesterov;
    private final float weightDecay;
    private final Set<Tensor> started = java.util.Collections.newSetFromMap(new IdentityHashMap<>());
    private final Map<Device, DeviceScalars> deviceScalars = new LinkedHashMap<>();

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
        updateAll(List.of(p), null);
    }

    /** With momentum, a first step (buffer = gradient) is decided on the host, so its loss is checked there too. */
    @Override
    protected boolean guardsOnDevice(List<Tensor> ready) {
        if (momentum == 0f) {
            return true;
        }
        for (Tensor p : ready) {
            if (!started.contains(p)) {
                return false;
            }
        }
        return true;
    }

    /**
     * One {@code sgdStepMany} per device and first-step status (normally one call: a single launch for a whole model),
     * with the learning rate read from a device value, so a captured step replays with the current rate.
     */
    @Override
    protected void updateAll(List<Tensor> ready, Tensor guard) {
        Map<Device, List<Tensor>> later = new LinkedHashMap<>();
        Map<Device, List<Tensor>> first = new LinkedHashMap<>();
        for (Tensor p : ready) {
            boolean isFirst = momentum != 0f && !started.contains(p);
            (isFirst ? first : later).computeIfAbsent(p.device(), d -> new ArrayList<>()).add(p);
        }
        if (!first.isEmpty()) {
            CaptureContext.refuse("SGD's first momentum step differs from the later ones; capture after one eager step");
        }
        for (Map.Entry<Device, List<Tensor>> e : first.entrySet()) {
            stepMany(e.getKey(), e.getValue(), true, guard);
        }
        for (Map.Entry<Device, List<Tensor>> e : later.entrySet()) {
            stepMany(e.getKey(), e.getValue(), false, guard);
        }
        for (List<Tensor> group : first.values()) {
            started.addAll(group);
        }
    }

    private void stepMany(Device device, List<Tensor> group, boolean firstStep, Tensor guard) {
        int count = group.size();
        Buffer[] ps = new Buffer[count];
        Buffer[] gs = new Buffer[count];
        Buffer[] bufs = momentum == 0f ? null : new Buffer[count];
        long[] lengths = new long[count];
        for (int i = 0; i < count; i++) {
            Tensor p = group.get(i);
            ps[i] = p.buffer();
            gs[i] = p.grad().buffer();
            if (bufs != null) {
                bufs[i] = stateOf(p)[0].buffer();
            }
            lengths[i] = p.numel();
        }
        if (!deviceScalars.containsKey(device)) {
            CaptureContext.refuse("SGD puts its learning rate on the device at its first eager step; capture after one");
        }
        DeviceScalars scalars = deviceScalars.computeIfAbsent(device, DeviceScalars::new);
        scalars.putLearningRate(lr());
        SgdHyper h = new SgdHyper(lr(), momentum, dampening, nesterov, weightDecay, firstStep);
        device.backend().sgdStepMany(h, scalars.learningRate.buffer(), guard == null ? null : guard.buffer(),
                scalars.skipped.buffer(), ps, gs, bufs, lengths);
    }

    /** The learning rate and the skip count of one device, as one-float tensors the update kernel reads and writes. */
    private final class DeviceScalars {
        final Tensor learningRate;
        final Tensor skipped;
        float written;

        DeviceScalars(Device device) {
            learningRate = Tensor.unscoped(device, new float[] {lr()}, 1);
            skipped = Tensor.unscoped(device, new float[1], 1);
            written = lr();
        }

        /** Eagerly, now if the rate changed; in a capture, before every replay (a fill there would be recorded). */
        void putLearningRate(float rate) {
            CaptureContext capture = CaptureContext.current();
            if (capture == null) {
                write(rate);
            } else {
                capture.beforeReplay(() -> write(lr()));
            }
        }

        private void write(float rate) {
            if (rate != written) {
                learningRate.device().backend().fill(learningRate.buffer(), 0, 1, rate);
                written = rate;
            }
        }

        void close() {
            learningRate.close();
            skipped.close();
        }
    }

    @Override
    protected long deviceSkipped() {
        long total = 0;
        for (DeviceScalars s : deviceScalars.values()) {
            total += (long) s.skipped.item();
        }
        return total;
    }

    @Override
    public void close() {
        super.close();
        for (DeviceScalars s : deviceScalars.values()) {
            s.close();
        }
        deviceScalars.clear();
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
