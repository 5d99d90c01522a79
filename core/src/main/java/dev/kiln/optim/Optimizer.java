package dev.kiln.optim;

import dev.kiln.core.CaptureContext;
import dev.kiln.core.Shapes;
import dev.kiln.core.Tensor;
import dev.kiln.nn.StateDict;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Updates parameters in place from their gradients with fused backend kernels (one per parameter, or one for all). Per-parameter state
 * (momentum, Adam moments) lives on the parameters' device and is released by {@link #close()}.
 */
public abstract class Optimizer implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(Optimizer.class);

    protected final List<Tensor> params;
    private final List<ParamGroup> groups;
    private final Map<Tensor, Integer> groupOf = new IdentityHashMap<>();
    private final Map<Tensor, Tensor[]> state = new IdentityHashMap<>();
    private final float[] lrs;
    private final float[] initialLrs;
    private long hostSkipped;

    protected Optimizer(List<Tensor> params, float lr) {
        this(List.of(ParamGroup.of(Objects.requireNonNull(params, "params"))), lr, Set.of());
    }

    /**
     * Parameter groups, each with its own learning rate (the group's, or {@code defaultLr}) and whichever of
     * {@code options} it sets; a group setting an option outside {@code options} is refused, as is a parameter in two
     * groups.
     */
    protected Optimizer(List<ParamGroup> groups, float defaultLr, Set<String> options) {
        String name = getClass().getSimpleName();
        checkLr(defaultLr, "");
        if (groups == null || groups.isEmpty()) {
            throw new IllegalArgumentException(name + ": no parameter groups");
        }
        List<Tensor> all = new ArrayList<>();
        lrs = new float[groups.size()];
        for (int g = 0; g < groups.size(); g++) {
            ParamGroup group = Objects.requireNonNull(groups.get(g), "parameter group " + g);
            for (String key : group.options().keySet()) {
                if (!key.equals("lr") && !options.contains(key)) {
                    throw new IllegalArgumentException(name + ": parameter group " + g + " sets '" + key
                            + "', which " + name + " does not have (it has lr" + (options.isEmpty() ? "" : ", "
                            + String.join(", ", new java.util.TreeSet<>(options))) + ")");
                }
            }
            lrs[g] = group.floatOption("lr", defaultLr);
            checkLr(lrs[g], " of parameter group " + g);
            for (Tensor p : group.params()) {
                if (!p.requiresGrad()) {
                    throw new IllegalArgumentException(name + ": parameter of shape "
                            + Shapes.toString(p.shape()) + " does not require grad");
                }
                Integer before = groupOf.put(p, g);
                if (before != null) {
                    throw new IllegalArgumentException(name + ": a parameter of shape " + Shapes.toString(p.shape())
                            + " appears in parameter groups " + before + " and " + g + "; each parameter belongs to one group");
                }
                all.add(p);
            }
        }
        if (all.isEmpty()) {
            throw new IllegalArgumentException(name + ": no parameters to optimize");
        }
        this.groups = List.copyOf(groups);
        this.initialLrs = lrs.clone();
        this.params = List.copyOf(all);
    }

    private void checkLr(float lr, String where) {
        if (!(lr >= 0) || Float.isInfinite(lr)) {
            throw new IllegalArgumentException(getClass().getSimpleName() + ": learning rate" + where
                    + " must be finite and >= 0, got " + lr);
        }
    }

    /** How many parameter groups this optimizer has (1 when built from a plain parameter list). */
    public final int groupCount() {
        return groups.size();
    }

    /** The parameter group {@code index}, as given. */
    public final ParamGroup group(int index) {
        return groups.get(index);
    }

    /** The index of the group {@code param} belongs to. */
    protected final int groupIndex(Tensor param) {
        Integer g = groupOf.get(param);
        if (g == null) {
            throw new IllegalArgumentException(getClass().getSimpleName() + ": tensor of shape "
                    + Shapes.toString(param.shape()) + " is not one of its parameters");
        }
        return g;
    }

    /**
     * Applies one update to every parameter that has a gradient. Everything is checked first, so a step that fails
     * (a gradient of the wrong shape, a closed tensor) changes nothing.
     */
    public final void step() {
        apply(null);
    }

    /**
     * {@link #step()} guarded by the loss it follows: when {@code lossGuard} (one value) is NaN or infinite, every
     * parameter and all optimizer state stay unchanged and {@link #skippedSteps()} counts the skip. SGD checks on the
     * device, without a host wait (so a captured step keeps its guard); other optimizers read the loss first.
     */
    public final void step(Tensor lossGuard) {
        Objects.requireNonNull(lossGuard, "lossGuard");
        if (lossGuard.numel() != 1) {
            throw new IllegalArgumentException("optimizer step: the loss guard must hold one value, got shape "
                    + Shapes.toString(lossGuard.shape()));
        }
        apply(lossGuard);
    }

    private void apply(Tensor guard) {
        List<Tensor> ready = new ArrayList<>();
        for (Tensor p : params) {
            Tensor g = p.grad();
            if (g == null) {
                continue;
            }
            if (!Arrays.equals(g.shape(), p.shape())) {
                throw new IllegalStateException("gradient of shape " + Shapes.toString(g.shape())
                        + " for parameter of shape " + Shapes.toString(p.shape()));
            }
            if (g.device() != p.device()) {
                throw new IllegalStateException("gradient on " + g.device() + " for parameter on " + p.device());
            }
            if (guard != null && guard.device() != p.device()) {
                throw new IllegalArgumentException("optimizer step: loss guard on " + guard.device()
                        + " for parameter on " + p.device());
            }
            p.buffer();
            g.buffer();
            ready.add(p);
        }
        if (guard != null && !guardsOnDevice(ready)) {
            CaptureContext.refuse(getClass().getSimpleName() + " checks the loss on the host before updating");
            float value = guard.item();
            if (!Float.isFinite(value)) {
                hostSkipped++;
                LOG.debug("loss is {}: optimizer step skipped", value);
                return;
            }
            guard = null;
        }
        beforeStep();
        for (Tensor p : ready) {
            state.computeIfAbsent(p, this::newState);
        }
        updateAll(ready, guard);
    }

    /**
     * Whether {@link #updateAll} can apply a loss guard itself, on the device; otherwise the loss is read on the host
     * before the update.
     */
    protected boolean guardsOnDevice(List<Tensor> ready) {
        return false;
    }

    /**
     * Updates every parameter in {@code ready} (state created). {@code guard} is non-null only when
     * {@link #guardsOnDevice} said yes. The default makes one {@link #update} per parameter with the host's learning
     * rate, and a capture records that rate, so a replay after {@link #setLr} is refused.
     */
    protected void updateAll(List<Tensor> ready, Tensor guard) {
        CaptureContext capture = CaptureContext.current();
        if (capture != null) {
            float[] capturedLrs = lrs.clone();
            capture.beforeReplay(() -> {
                if (!Arrays.equals(lrs, capturedLrs)) {
                    throw new dev.kiln.backend.GraphCaptureException("the learning rate changed from "
                            + Arrays.toString(capturedLrs) + " to " + Arrays.toString(lrs)
                            + " since the capture, and a replay would use the old one");
                }
            });
        }
        for (Tensor p : ready) {
            update(p, p.grad(), state.get(p));
        }
    }

    /** The state tensors of {@code p} (null before its first step). */
    protected final Tensor[] stateOf(Tensor p) {
        return state.get(p);
    }

    /** How many guarded steps ({@link #step(Tensor)}) were skipped for a non-finite loss; may wait for the device. */
    public long skippedSteps() {
        return hostSkipped + deviceSkipped();
    }

    /** Skips counted on the device by {@link #updateAll} (a host wait). */
    protected long deviceSkipped() {
        return 0;
    }

    /** The learning rate of the first parameter group (the only one unless groups were given). */
    public final float lr() {
        return lrs[0];
    }

    /** The current learning rate of parameter group {@code group}. */
    public final float lr(int group) {
        return lrs[group];
    }

    /**
     * Changes the learning rate from the next step on (schedules): the first group gets {@code lr} and every other
     * group keeps its ratio to it from construction, so a schedule scales all groups alike as PyTorch's
     * multiplicative schedulers do (a group whose first rate was 0 stays at 0; when the first group's rate was 0,
     * every group gets {@code lr}).
     */
    public final void setLr(float lr) {
        checkLr(lr, "");
        for (int g = 0; g < lrs.length; g++) {
            lrs[g] = initialLrs[0] == 0f ? lr : (float) ((double) lr * initialLrs[g] / initialLrs[0]);
        }
    }

    /** Changes the learning rate of one group from the next step on. */
    public final void setLr(int group, float lr) {
        checkLr(lr, " of parameter group " + group);
        lrs[group] = lr;
    }

    /** Clears the gradients of every parameter this optimizer updates. */
    public void zeroGrad() {
        for (Tensor p : params) {
            p.zeroGrad();
        }
    }

    /** Called once per step before the per-parameter updates (step counters). */
    protected void beforeStep() {
    }

    /** Per-parameter state tensors, created zero-filled on the first step. */
    protected abstract Tensor[] newState(Tensor param);

    /** Names of the state tensors, for the state dict ("momentum_buffer", "exp_avg", ...). */
    protected abstract String[] stateNames();

    /** The names of {@code param}'s state tensors, where they differ by parameter group (SGD without momentum). */
    protected String[] stateNames(Tensor param) {
        return stateNames();
    }

    protected abstract void update(Tensor param, Tensor grad, Tensor[] state);

    /** Scalar state (step counts, whether momentum buffers exist) for checkpoints. */
    protected abstract Map<String, Long> counters();

    protected abstract void loadCounters(Map<String, Long> counters);

    protected static Tensor zerosLike(Tensor p) {
        return Tensor.unscoped(p.device(), new float[(int) p.numel()], p.shape());
    }

    /**
     * State as {@code state.<paramIndex>.<name>} tensors plus {@code counter.<name>} int64 scalars, for checkpoints.
     */
    public StateDict stateDict() {
        StateDict sd = new StateDict();
        for (Map.Entry<String, Long> c : counters().entrySet()) {
            sd.put("counter." + c.getKey(), StateDict.Entry.ofLong(c.getValue()));
        }
        for (int i = 0; i < params.size(); i++) {
            Tensor[] s = state.get(params.get(i));
            if (s == null) {
                continue;
            }
            String[] names = stateNames(params.get(i));
            for (int j = 0; j < names.length; j++) {
                sd.put("state." + i + "." + names[j], StateDict.Entry.of(s[j]));
            }
        }
        return sd;
    }

    /** Restores {@link #stateDict()}; validated completely before anything changes. */
    public void loadStateDict(StateDict sd) {
        String[] names = stateNames();
        Map<String, Long> counters = new java.util.LinkedHashMap<>();
        for (Map.Entry<String, StateDict.Entry> e : sd.entries().entrySet()) {
            String k = e.getKey();
            if (k.startsWith("counter.")) {
                counters.put(k.substring("counter.".length()), e.getValue().longValue());
            } else if (k.startsWith("state.")) {
                String[] parts = k.split("\\.");
                int index;
                try {
                    index = Integer.parseInt(parts[1]);
                } catch (RuntimeException ex) {
                    throw new IllegalArgumentException("optimizer state: bad key " + k);
                }
                if (parts.length != 3 || index < 0 || index >= params.size()
                        || !Arrays.asList(stateNames(params.get(index))).contains(parts[2])) {
                    throw new IllegalArgumentException("optimizer state: unexpected key " + k + " for "
                            + params.size() + " parameters with state " + Arrays.toString(names));
                }
                int[] expected = params.get(index).shape();
                if (!Arrays.equals(expected, e.getValue().shape())) {
                    throw new IllegalArgumentException("optimizer state " + k + ": shape " + Shapes.toString(e.getValue().shape())
                            + ", parameter " + index + " has shape " + Shapes.toString(expected));
                }
            } else {
                throw new IllegalArgumentException("optimizer state: unexpected key " + k);
            }
        }
        for (int i = 0; i < params.size(); i++) {
            Tensor p = params.get(i);
            String[] paramNames = stateNames(p);
            boolean any = false;
            for (String n : paramNames) {
                any |= sd.get("state." + i + "." + n) != null;
            }
            if (!any) {
                continue;
            }
            Tensor[] s = state.computeIfAbsent(p, this::newState);
            for (int j = 0; j < paramNames.length; j++) {
                StateDict.Entry e = sd.get("state." + i + "." + paramNames[j]);
                if (e != null) {
                    s[j].copyFrom(e.data());
                }
            }
        }
        loadCounters(counters);
    }

    /** Releases the optimizer's state tensors. */
    @Override
    public void close() {
        for (Tensor[] s : state.values()) {
            for (Tensor t : s) {
                t.close();
            }
        }
        state.clear();
    }
}
