package dev.kiln.nn;

import dev.kiln.core.Device;
import dev.kiln.core.Shapes;
import dev.kiln.core.Tensor;

import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A layer or a model: named parameters, named buffers and named child modules, with PyTorch's naming
 * ({@code conv1.weight}, {@code bn1.running_mean}, {@code bn1.num_batches_tracked}) and train/eval switch.
 * A module owns its parameters and buffers and releases them in {@link #close()}.
 *
 * <p>Inference ({@link #eval()} and {@code GradMode.noGrad()}) only reads parameters and buffers, so one model can
 * serve {@code forward} calls from many threads at once; training is single-threaded.
 */
public abstract class Module implements AutoCloseable {

    private final Map<String, Tensor> parameters = new LinkedHashMap<>();
    private final Map<String, Tensor> buffers = new LinkedHashMap<>();
    private final Map<String, Module> children = new LinkedHashMap<>();
    private boolean training = true;

    /**
     * The module's computation on one input. A module with one input and one output overrides this; one with several
     * inputs or outputs overrides {@link #forwardAll} instead, and this then runs it on one input and wants one
     * output.
     */
    public Tensor forward(Tensor input) {
        if (!overridesForwardAll()) {
            throw new IllegalStateException(getClass().getName() + " overrides neither forward(Tensor) nor forwardAll(Tensor...)");
        }
        return single(forwardAll(input));
    }

    /**
     * The module's computation on several inputs, giving several outputs (PyTorch's {@code forward(*args)} returning
     * a tuple). The default is {@link #forward(Tensor)} on exactly one input.
     */
    public Tensor[] forwardAll(Tensor... inputs) {
        if (inputs == null || inputs.length != 1) {
            throw new IllegalArgumentException(getClass().getSimpleName() + " takes one input, got "
                    + (inputs == null ? 0 : inputs.length));
        }
        return new Tensor[]{forward(inputs[0])};
    }

    /** {@link #forwardAll} on two or more inputs, for a module with one output. */
    public final Tensor forward(Tensor first, Tensor second, Tensor... more) {
        Tensor[] inputs = new Tensor[2 + more.length];
        inputs[0] = first;
        inputs[1] = second;
        System.arraycopy(more, 0, inputs, 2, more.length);
        return single(forwardAll(inputs));
    }

    private Tensor single(Tensor[] outputs) {
        if (outputs == null || outputs.length != 1) {
            throw new IllegalStateException(getClass().getSimpleName() + " returns " + (outputs == null ? 0 : outputs.length)
                    + " outputs; call forwardAll to get them all");
        }
        return outputs[0];
    }

    /** Per module class: whether it overrides {@link #forwardAll} (looked up once). */
    private static final ClassValue<Boolean> OVERRIDES_FORWARD_ALL = new ClassValue<>() {
        @Override
        protected Boolean computeValue(Class<?> type) {
            try {
                return type.getMethod("forwardAll", Tensor[].class).getDeclaringClass() != Module.class;
            } catch (NoSuchMethodException e) {
                return false;
            }
        }
    };

    private boolean overridesForwardAll() {
        return OVERRIDES_FORWARD_ALL.get(getClass());
    }

    // ------------------------------------------------------------------ registration

    /**
     * Registers a parameter (requires grad, owned by this module). Public as PyTorch's {@code register_parameter}, so a
     * rewrite of a trained model can give a layer a parameter it lacked (batch-norm folding adds a convolution's bias).
     */
    public final Tensor registerParameter(String name, Tensor value) {
        checkName(name);
        if (value != null) {
            value.requiresGrad(true);
        }
        parameters.put(name, value);
        return value;
    }

    /** Registers a buffer: state saved in the state dict but not trained (running statistics). */
    protected final Tensor registerBuffer(String name, Tensor value) {
        checkName(name);
        buffers.put(name, value);
        return value;
    }

    protected final <M extends Module> M registerModule(String name, M module) {
        checkName(name);
        children.put(name, module);
        return module;
    }

    private void checkName(String name) {
        if (name.isEmpty() || name.contains(".")) {
            throw new IllegalArgumentException("invalid name '" + name + "': must be non-empty and contain no '.'");
        }
        if (parameters.containsKey(name) || buffers.containsKey(name) || children.containsKey(name)) {
            throw new IllegalArgumentException("'" + name + "' is already registered in " + getClass().getSimpleName());
        }
    }

    // ------------------------------------------------------------------ traversal

    public final Map<String, Module> namedChildren() {
        return Collections.unmodifiableMap(children);
    }

    /**
     * This module (named "") and every descendant, depth first in registration order, under dotted names
     * ({@code layer1.0.conv1}); a module registered twice is listed once, as PyTorch's {@code named_modules}.
     */
    public final Map<String, Module> namedModules() {
        Map<String, Module> out = new LinkedHashMap<>();
        collectModules("", out, Collections.newSetFromMap(new IdentityHashMap<>()));
        return out;
    }

    private void collectModules(String name, Map<String, Module> out, Set<Module> seen) {
        if (!seen.add(this)) {
            return;
        }
        out.put(name, this);
        for (Map.Entry<String, Module> e : children.entrySet()) {
            e.getValue().collectModules(name.isEmpty() ? e.getKey() : name + "." + e.getKey(), out, seen);
        }
    }

    /** All parameters, depth first in registration order, each once. */
    public final List<Tensor> parameters() {
        return new ArrayList<>(namedParameters().values());
    }

    public final Map<String, Tensor> namedParameters() {
        Map<String, Tensor> out = new LinkedHashMap<>();
        Set<Tensor> seen = Collections.newSetFromMap(new IdentityHashMap<>());
        collect("", out, seen, true);
        return out;
    }

    public final Map<String, Tensor> namedBuffers() {
        Map<String, Tensor> out = new LinkedHashMap<>();
        collect("", out, Collections.newSetFromMap(new IdentityHashMap<>()), false);
        return out;
    }

    private void collect(String prefix, Map<String, Tensor> out, Set<Tensor> seen, boolean params) {
        for (Map.Entry<String, Tensor> e : (params ? parameters : buffers).entrySet()) {
            if (e.getValue() != null && seen.add(e.getValue())) {
                out.put(prefix + e.getKey(), e.getValue());
            }
        }
        for (Map.Entry<String, Module> e : children.entrySet()) {
            e.getValue().collect(prefix + e.getKey() + ".", out, seen, params);
        }
    }

    /** Number of trainable scalars. */
    public final long parameterCount() {
        long n = 0;
        for (Tensor p : parameters()) {
            n += p.numel();
        }
        return n;
    }

    // ------------------------------------------------------------------ modes

    public Module train() {
        return train(true);
    }

    public Module eval() {
        return train(false);
    }

    public Module train(boolean mode) {
        training = mode;
        for (Module m : children.values()) {
            m.train(mode);
        }
        return this;
    }

    public final boolean isTraining() {
        return training;
    }

    /** Clears every parameter's gradient. */
    public void zeroGrad() {
        for (Tensor p : parameters()) {
            p.zeroGrad();
        }
    }

    // ------------------------------------------------------------------ state

    /**
     * Host copies of parameters and buffers under PyTorch's key names, in registration order. Includes extra state
     * a subclass reports through {@link #extraState} (e.g. {@code num_batches_tracked}).
     */
    public final StateDict stateDict() {
        StateDict sd = new StateDict();
        fillState("", sd);
        return sd;
    }

    private void fillState(String prefix, StateDict sd) {
        for (Map.Entry<String, Tensor> e : parameters.entrySet()) {
            if (e.getValue() != null) {
                sd.put(prefix + e.getKey(), StateDict.Entry.of(e.getValue()));
            }
        }
        for (Map.Entry<String, Tensor> e : buffers.entrySet()) {
            if (e.getValue() != null) {
                sd.put(prefix + e.getKey(), StateDict.Entry.of(e.getValue()));
            }
        }
        for (Map.Entry<String, StateDict.Entry> e : extraState().entrySet()) {
            sd.put(prefix + e.getKey(), e.getValue());
        }
        for (Map.Entry<String, Module> e : children.entrySet()) {
            e.getValue().fillState(prefix + e.getKey() + ".", sd);
        }
    }

    /** Non-tensor state saved with the module (kept on the host). */
    protected Map<String, StateDict.Entry> extraState() {
        return Map.of();
    }

    /**
     * The value an extra-state entry takes when a state dict lacks it, or null when it is required. PyTorch fills a
     * missing {@code num_batches_tracked} with 0 (files from before the counter existed); BatchNorm does the same.
     */
    protected StateDict.Entry extraStateDefault(String key) {
        return null;
    }

    /** Restores what {@link #extraState} reported. */
    protected void loadExtraState(String key, StateDict.Entry value) {
        throw new IllegalStateException("unexpected extra state " + key);
    }

    /**
     * Loads parameters and buffers. With {@code strict}, missing or unexpected keys are an error; shape mismatches
     * always are. Everything is validated before anything is written, so a failed load leaves the module unchanged.
     */
    public final void loadStateDict(StateDict sd, boolean strict) {
        sd = upgradeStateDictKeys(sd);
        StateDict mine = new StateDict();
        Map<String, Runnable> writers = new LinkedHashMap<>();
        Map<String, Runnable> defaults = new LinkedHashMap<>();
        collectWriters("", mine, writers, defaults, sd);
        List<String> missing = new ArrayList<>();
        List<String> mismatched = new ArrayList<>();
        for (Map.Entry<String, StateDict.Entry> e : mine.entries().entrySet()) {
            StateDict.Entry given = sd.get(e.getKey());
            if (given == null) {
                if (!defaults.containsKey(e.getKey())) {
                    missing.add(e.getKey());
                }
            } else if (!java.util.Arrays.equals(given.shape(), e.getValue().shape())
                    && !oneElementForScalar(given.shape(), e.getValue().shape())) {
                mismatched.add(e.getKey() + ": checkpoint has shape " + Shapes.toString(given.shape())
                        + ", model expects " + Shapes.toString(e.getValue().shape()));
            }
        }
        List<String> unexpected = new ArrayList<>();
        for (String k : sd.entries().keySet()) {
            if (mine.get(k) == null) {
                unexpected.add(k);
            }
        }
        if (!mismatched.isEmpty() || (strict && (!missing.isEmpty() || !unexpected.isEmpty()))) {
            StringBuilder msg = new StringBuilder("error(s) loading state dict for ").append(getClass().getSimpleName()).append(':');
            if (!mismatched.isEmpty()) {
                msg.append("\n  size mismatch: ").append(String.join("; ", mismatched));
            }
            if (strict && !missing.isEmpty()) {
                msg.append("\n  missing key(s): ").append(String.join(", ", missing));
            }
            if (strict && !unexpected.isEmpty()) {
                msg.append("\n  unexpected key(s): ").append(String.join(", ", unexpected));
            }
            throw new IllegalArgumentException(msg.toString());
        }
        for (Map.Entry<String, Runnable> w : writers.entrySet()) {
            if (sd.get(w.getKey()) != null) {
                w.getValue().run();
            } else if (defaults.containsKey(w.getKey())) {
                defaults.get(w.getKey()).run();
            }
        }
    }

    /** PyTorch loads a one-element 1-d tensor into a 0-d one (older versions saved scalars as shape [1]). */
    private static boolean oneElementForScalar(int[] given, int[] expected) {
        return expected.length == 0 && given.length == 1 && given[0] == 1;
    }

    public final void loadStateDict(StateDict sd) {
        loadStateDict(sd, true);
    }

    /**
     * Maps a key saved by an earlier version of this model to today's name (PyTorch's {@code _load_from_state_dict}
     * version hooks do the same job); the default keeps every key. Applied by {@link #loadStateDict} to the keys of
     * the whole state dict when this module is the one loading.
     */
    protected String upgradeStateDictKey(String key) {
        return key;
    }

    private StateDict upgradeStateDictKeys(StateDict sd) {
        StateDict upgraded = null;
        for (Map.Entry<String, StateDict.Entry> e : sd.entries().entrySet()) {
            String key = upgradeStateDictKey(e.getKey());
            if (!key.equals(e.getKey())) {
                if (sd.get(key) != null) {
                    throw new IllegalArgumentException("state dict holds both '" + e.getKey() + "' and its current name '"
                            + key + "' for " + getClass().getSimpleName());
                }
                upgraded = upgraded != null ? upgraded : new StateDict();
            }
        }
        if (upgraded == null) {
            return sd;
        }
        for (Map.Entry<String, StateDict.Entry> e : sd.entries().entrySet()) {
            upgraded.put(upgradeStateDictKey(e.getKey()), e.getValue());
        }
        return upgraded;
    }

    private void collectWriters(String prefix, StateDict shapes, Map<String, Runnable> writers,
                                Map<String, Runnable> defaults, StateDict source) {
        List<Map<String, Tensor>> groups = List.of(parameters, buffers);
        for (Map<String, Tensor> group : groups) {
            for (Map.Entry<String, Tensor> e : group.entrySet()) {
                Tensor t = e.getValue();
                if (t == null) {
                    continue;
                }
                String key = prefix + e.getKey();
                shapes.put(key, new StateDict.Entry(t.shape(), null, StateDict.DType.F32));
                writers.put(key, () -> t.copyFrom(source.get(key).data()));
            }
        }
        for (Map.Entry<String, StateDict.Entry> e : extraState().entrySet()) {
            String key = prefix + e.getKey();
            shapes.put(key, e.getValue());
            String local = e.getKey();
            writers.put(key, () -> loadExtraState(local, source.get(key)));
            StateDict.Entry fallback = extraStateDefault(local);
            if (fallback != null) {
                defaults.put(key, () -> loadExtraState(local, fallback));
            }
        }
        for (Map.Entry<String, Module> e : children.entrySet()) {
            e.getValue().collectWriters(prefix + e.getKey() + ".", shapes, writers, defaults, source);
        }
    }

    /** Moves every parameter and buffer to {@code device} (a no-op where they already are). */
    public Module to(Device device) {
        for (Map<String, Tensor> group : List.of(parameters, buffers)) {
            for (Map.Entry<String, Tensor> e : group.entrySet()) {
                Tensor t = e.getValue();
                if (t != null && t.device() != device) {
                    Tensor moved = Tensor.unscoped(device, t.toArray(), t.shape());
                    moved.requiresGrad(t.requiresGrad());
                    t.close();
                    e.setValue(moved);
                }
            }
        }
        for (Module m : children.values()) {
            m.to(device);
        }
        onMoved();
        return this;
    }

    /** Lets subclasses refresh fields that alias parameters after {@link #to}. */
    protected void onMoved() {
    }

    /** The tensor registered as {@code name} in this module (not its children). */
    protected final Tensor parameter(String name) {
        return parameters.get(name);
    }

    protected final Tensor buffer(String name) {
        return buffers.get(name);
    }

    /** Releases all parameters, gradients and buffers of this module and its children. */
    @Override
    public void close() {
        for (Tensor t : parameters.values()) {
            if (t != null) {
                t.close();
            }
        }
        for (Tensor t : buffers.values()) {
            if (t != null) {
                t.close();
            }
        }
        for (Module m : children.values()) {
            m.close();
        }
    }

    @Override
    public String toString() {
        if (children.isEmpty()) {
            return getClass().getSimpleName() + "(" + extraRepr() + ")";
        }
        StringBuilder sb = new StringBuilder(getClass().getSimpleName()).append("(\n");
        for (Map.Entry<String, Module> e : children.entrySet()) {
            sb.append("  (").append(e.getKey()).append("): ")
                    .append(e.getValue().toString().replace("\n", "\n  ")).append('\n');
        }
        return sb.append(')').toString();
    }

    /** Hyper-parameters for {@link #toString()}, PyTorch style. */
    protected String extraRepr() {
        return "";
    }
}
