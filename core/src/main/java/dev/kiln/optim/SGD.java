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

    private final float[] momentum;
    private final float[] dampening;
    private final boolean[] nesterov;
    private final float[] weightDecay;
    private final Set<Tensor> started = java.util.Collections.newSetFromMap(new IdentityHashMap<>());
    /** Per parameter group and device: the learning rate the kernel reads and the skip count it writes. */
    private final Map<Integer, Map<Device, DeviceScalars>> deviceScalars = new LinkedHashMap<>();

    public SGD(List<Tensor> params, float lr) {
        this(params, lr, 0f, 0f, false, 0f);
    }

    public SGD(List<Tensor> params, float lr, float momentum, float dampening, boolean nesterov, float weightDecay) {
        this(new ParamGroup[]{ParamGroup.of(java.util.Objects.requireNonNull(params, "params"))}, lr, momentum, dampening,
                nesterov, weightDecay);
    }

    private SGD(ParamGroup[] groupArray, float lr, float momentum, float dampening, boolean nesterov, float weightDecay) {
        super(List.of(groupArray), lr, Set.of("momentum", "dampening", "nesterov", "weight_decay"));
        List<ParamGroup> groups = List.of(groupArray);
        int n = groups.size();
        this.momentum = new float[n];
        this.dampening = new float[n];
        this.nesterov = new boolean[n];
        this.weightDecay = new float[n];
        for (int g = 0; g < n; g++) {
            ParamGroup group = groups.get(g);
            this.momentum[g] = group.floatOption("momentum", momentum);
            this.dampening[g] = group.floatOption("dampening", dampening);
            this.nesterov[g] = group.booleanOption("nesterov", nesterov);
            this.weightDecay[g] = group.floatOption("weight_decay", weightDecay);
            String where = n == 1 ? "" : " (parameter group " + g + ")";
            if (!(lr(g) >= 0) || !(this.momentum[g] >= 0) || !(this.weightDecay[g] >= 0)) {
                throw new IllegalArgumentException("SGD: lr, momentum and weight decay must be >= 0, got lr=" + lr(g)
                        + " momentum=" + this.momentum[g] + " weight_decay=" + this.weightDecay[g] + where);
            }
            if (this.nesterov[g] && (this.momentum[g] <= 0 || this.dampening[g] != 0)) {
                throw new IllegalArgumentException("SGD: Nesterov momentum requires a momentum and zero dampening" + where);
            }
        }
    }

    /** Keyword-style construction, PyTorch's {@code SGD(params, lr=..., momentum=..., ...)}, with parameter groups. */
    public static Builder builder() {
        return new Builder();
    }

    /** Defaults as PyTorch's: momentum 0, dampening 0, no Nesterov, no weight decay; {@code lr} is required. */
    public static final class Builder {
        private final List<ParamGroup> groups = new ArrayList<>();
        private Float lr;
        private float momentum;
        private float dampening;
        private boolean nesterov;
        private float weightDecay;

        private Builder() {
        }

        /** A group with the defaults. */
        public Builder params(List<Tensor> params) {
            return group(ParamGroup.of(params));
        }

        public Builder group(ParamGroup group) {
            groups.add(java.util.Objects.requireNonNull(group, "group"));
            return this;
        }

        public Builder lr(float lr) {
            this.lr = lr;
            return this;
        }

        public Builder momentum(float momentum) {
            this.momentum = momentum;
            return this;
        }

        public Builder dampening(float dampening) {
            this.dampening = dampening;
            return this;
        }

        public Builder nesterov(boolean nesterov) {
            this.nesterov = nesterov;
            return this;
        }

        public Builder weightDecay(float weightDecay) {
            this.weightDecay = weightDecay;
            return this;
        }

        public SGD build() {
            if (lr == null) {
                throw new IllegalArgumentException("SGD: lr is required");
            }
            return new SGD(groups.toArray(new ParamGroup[0]), lr, momentum, dampening, nesterov, weightDecay);
        }
    }

    /** The momentum of parameter group {@code group}. */
    public float momentum(int group) {
        return momentum[group];
    }

    public float weightDecay(int group) {
        return weightDecay[group];
    }

    private boolean hasMomentum(Tensor p) {
        return momentum[groupIndex(p)] != 0f;
    }

    @Override
    protected Tensor[] newState(Tensor param) {
        return hasMomentum(param) ? new Tensor[]{zerosLike(param)} : new Tensor[0];
    }

    @Override
    protected String[] stateNames() {
        for (float m : momentum) {
            if (m != 0f) {
                return new String[]{"momentum_buffer"};
            }
        }
        return new String[0];
    }

    @Override
    protected String[] stateNames(Tensor param) {
        return hasMomentum(param) ? new String[]{"momentum_buffer"} : new String[0];
    }

    @Override
    protected void update(Tensor p, Tensor g, Tensor[] s) {
        updateAll(List.of(p), null);
    }

    /** With momentum, a first step (buffer = gradient) is decided on the host, so its loss is checked there too. */
    @Override
    protected boolean guardsOnDevice(List<Tensor> ready) {
        for (Tensor p : ready) {
            if (hasMomentum(p) && !started.contains(p)) {
                return false;
            }
        }
        return true;
    }

    /**
     * One {@code sgdStepMany} per parameter group, device and first-step status (normally one call per group: a
     * single launch for a whole model), with the learning rate read from a device value, so a captured step replays
     * with the current rate. A skipped step is counted once per device, by its first call.
     */
    @Override
    protected void updateAll(List<Tensor> ready, Tensor guard) {
        Map<List<Object>, List<Tensor>> later = new LinkedHashMap<>();
        Map<List<Object>, List<Tensor>> first = new LinkedHashMap<>();
        for (Tensor p : ready) {
            boolean isFirst = hasMomentum(p) && !started.contains(p);
            (isFirst ? first : later).computeIfAbsent(List.of(groupIndex(p), p.device()), k -> new ArrayList<>()).add(p);
        }
        if (!first.isEmpty()) {
            CaptureContext.refuse("SGD's first momentum step differs from the later ones; capture after one eager step");
        }
        Set<Device> counted = new java.util.HashSet<>();
        for (Map.Entry<List<Object>, List<Tensor>> e : first.entrySet()) {
            Device d = (Device) e.getKey().get(1);
            stepMany((Integer) e.getKey().get(0), d, e.getValue(), true, guard, counted.add(d));
        }
        for (Map.Entry<List<Object>, List<Tensor>> e : later.entrySet()) {
            Device d = (Device) e.getKey().get(1);
            stepMany((Integer) e.getKey().get(0), d, e.getValue(), false, guard, counted.add(d));
        }
        for (List<Tensor> group : first.values()) {
            started.addAll(group);
        }
    }

    private void stepMany(int groupIndex, Device device, List<Tensor> group, boolean firstStep, Tensor guard,
                          boolean countsSkip) {
        int count = group.size();
        boolean withMomentum = momentum[groupIndex] != 0f;
        Buffer[] ps = new Buffer[count];
        Buffer[] gs = new Buffer[count];
        Buffer[] bufs = withMomentum ? new Buffer[count] : null;
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
        Map<Device, DeviceScalars> perDevice = deviceScalars.computeIfAbsent(groupIndex, g -> new LinkedHashMap<>());
        if (!perDevice.containsKey(device)) {
            CaptureContext.refuse("SGD puts its learning rate on the device at its first eager step; capture after one");
        }
        DeviceScalars scalars = perDevice.computeIfAbsent(device, d -> new DeviceScalars(d, groupIndex));
        scalars.putLearningRate();
        SgdHyper h = new SgdHyper(lr(groupIndex), momentum[groupIndex], dampening[groupIndex], nesterov[groupIndex],
                weightDecay[groupIndex], firstStep);
        // Every call is guarded; only one per device counts the skip, the others count into their own scratch value.
        Buffer skipped = countsSkip ? scalars.skipped.buffer() : scalars.scratchSkipped.buffer();
        device.backend().sgdStepMany(h, scalars.learningRate.buffer(), guard == null ? null : guard.buffer(),
                skipped, ps, gs, bufs, lengths);
    }

    /** The learning rate and the skip count of one group on one device, as one-float tensors the kernel reads and writes. */
    private final class DeviceScalars {
        final int group;
        final Tensor learningRate;
        final Tensor skipped;
        final Tensor scratchSkipped;
        float written;

        DeviceScalars(Device device, int group) {
            this.group = group;
            learningRate = Tensor.unscoped(device, new float[] {lr(group)}, 1);
            skipped = Tensor.unscoped(device, new float[1], 1);
            scratchSkipped = Tensor.unscoped(device, new float[1], 1);
            written = lr(group);
        }

        /** Eagerly, now if the rate changed; in a capture, before every replay (a fill there would be recorded). */
        void putLearningRate() {
            CaptureContext capture = CaptureContext.current();
            if (capture == null) {
                write(lr(group));
            } else {
                capture.beforeReplay(() -> write(lr(group)));
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
            scratchSkipped.close();
        }
    }

    @Override
    protected long deviceSkipped() {
        long total = 0;
        for (Map<Device, DeviceScalars> perDevice : deviceScalars.values()) {
            for (DeviceScalars s : perDevice.values()) {
                total += (long) s.skipped.item();
            }
        }
        return total;
    }

    @Override
    public void close() {
        super.close();
        for (Map<Device, DeviceScalars> perDevice : deviceScalars.values()) {
            perDevice.values().forEach(DeviceScalars::close);
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
