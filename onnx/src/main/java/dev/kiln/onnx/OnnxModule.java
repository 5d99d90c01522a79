package dev.kiln.onnx;

import dev.kiln.core.Device;
import dev.kiln.core.Shapes;
import dev.kiln.core.Tensor;
import dev.kiln.core.TensorScope;
import dev.kiln.io.KilnFormatException;
import dev.kiln.models.Architecture;
import dev.kiln.nn.Module;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * An ONNX graph as a Kiln module ({@link Onnx#load}): the graph's nodes run in dependency order, each through the
 * Kiln layer or op that computes it. Layers with weights are named children under the path their weights' initializer
 * names give ({@code conv1.weight} makes the child {@code conv1}; {@code layer1.0.conv1.weight} makes
 * {@code layer1 -> 0 -> conv1}), so {@link #namedParameters()} and {@link #stateDict()} use PyTorch's names for a file
 * PyTorch exported; {@link #stateDictKeys()} maps each initializer to its key.
 *
 * <p>Parameters are trainable; batch norms keep their running statistics and follow {@link #train()} / {@link #eval()}
 * as PyTorch's do. The module starts in eval mode, or in training mode when the file's batch norms are in training
 * mode ({@code training_mode=1}). For inference with {@link dev.kiln.inference.Predictor}, pass
 * {@link #architecture()} with the model.
 */
public final class OnnxModule extends Module {

    /** One node (or a few fused ones): reads value slots, writes value slots. */
    interface Op {
        Object[] run(Object[] inputs);
    }

    record Step(String label, int[] inputs, int[] outputs, Op op, boolean tensorOutputs, int[] releaseAfter) {
    }

    /** A container for the layers under one dotted path prefix ({@code layer1}, {@code layer1.0}). */
    static final class Group extends Module {
        <M extends Module> M add(String name, M module) {
            return registerModule(name, module);
        }

        @Override
        public Tensor forward(Tensor input) {
            throw new UnsupportedOperationException("a group of an ONNX graph's layers is run by the OnnxModule that holds it");
        }
    }

    private final OnnxReader.OnnxGraph graph;
    private final Device device;
    private Object[] template;
    private int[] inputSlots;
    private int[] outputSlots;
    private List<Step> steps;
    private String[] inputNames;
    private String[] outputNames;
    private int[][] declaredInputShapes;
    private final List<Module> stepModules = new ArrayList<>();
    private final Map<String, String> stateDictKeys = new LinkedHashMap<>();

    OnnxModule(OnnxReader.OnnxGraph graph, Device device) {
        this.graph = graph;
        this.device = device;
    }

    void finish(Object[] template, int[] inputSlots, int[] outputSlots, List<Step> steps, String[] inputNames,
                String[] outputNames, int[][] declaredInputShapes) {
        this.template = template;
        this.inputSlots = inputSlots;
        this.outputSlots = outputSlots;
        this.steps = List.copyOf(steps);
        this.inputNames = inputNames;
        this.outputNames = outputNames;
        this.declaredInputShapes = declaredInputShapes;
    }

    /** Registers {@code layer} under {@code path} (segments of a dotted name), creating the groups above it. */
    <M extends Module> M addLayer(List<String> path, M layer) {
        Module parent = this;
        for (int i = 0; i < path.size() - 1; i++) {
            Module next = parent.namedChildren().get(path.get(i));
            if (next == null) {
                next = parent == this ? registerModule(path.get(i), new Group()) : ((Group) parent).add(path.get(i), new Group());
            }
            parent = next;
        }
        String last = path.get(path.size() - 1);
        return parent == this ? registerModule(last, layer) : ((Group) parent).add(last, layer);
    }

    /** Whether {@code path} can take a new layer: each prefix free or a group, the last name free. */
    boolean pathFree(List<String> path) {
        Module parent = this;
        for (int i = 0; i < path.size(); i++) {
            String name = path.get(i);
            if (name.isEmpty() || name.contains(".") || parent.namedParameters().containsKey(name)) {
                return false;
            }
            Module next = parent.namedChildren().get(name);
            if (i == path.size() - 1) {
                return next == null;
            }
            if (next == null) {
                return true;
            }
            if (!(next instanceof Group)) {
                return false;
            }
            parent = next;
        }
        return false;
    }

    void addStepModule(Module m) {
        stepModules.add(m);
    }

    void mapStateDictKey(String initializer, String key) {
        stateDictKeys.put(initializer, key);
    }

    /** Steps a forward runs (nodes folded at load time run none; a fused layer and activation are one). */
    int stepCount() {
        return steps.size();
    }

    /** The graph's inputs, in order (the initializers some files also list as inputs are not among them). */
    public List<String> inputNames() {
        return List.of(inputNames);
    }

    public List<String> outputNames() {
        return List.of(outputNames);
    }

    /**
     * Each initializer the module holds as a parameter or buffer, with its key in {@link #stateDict()}: the same name
     * for a file whose initializers carry state-dict names, else the layer's path and the parameter's name.
     */
    public Map<String, String> stateDictKeys() {
        return Collections.unmodifiableMap(stateDictKeys);
    }

    /** The device the module's parameters and constants were created on. */
    public Device device() {
        return device;
    }

    /**
     * The declared shape of one sample of the first input (without the batch dimension), or empty when the file
     * declares none or leaves a dimension other than the first open.
     */
    public java.util.Optional<int[]> sampleShape() {
        int[] s = declaredInputShapes[0];
        if (s == null || s.length < 1) {
            return java.util.Optional.empty();
        }
        int[] sample = Arrays.copyOfRange(s, 1, s.length);
        for (int d : sample) {
            if (d < 1) {
                return java.util.Optional.empty();
            }
        }
        return java.util.Optional.of(sample);
    }

    /**
     * This graph as an {@link Architecture} for {@link dev.kiln.inference.Predictor} and model files: its factory
     * builds the same module again from the graph (with the file's weights, which a loaded state dict replaces).
     *
     * @throws IllegalStateException when the file declares no fixed shape for a sample of its first input
     */
    public Architecture architecture(String name) {
        int[] sample = sampleShape().orElseThrow(() -> new IllegalStateException(graph.source()
                + ": the graph's input '" + inputNames[0] + "' declares no fixed sample shape"
                + (declaredInputShapes[0] == null ? "" : " (" + Arrays.toString(declaredInputShapes[0]) + ")")));
        OnnxReader.OnnxGraph g = graph;
        return new Architecture(name, sample, d -> {
            try {
                return GraphBuilder.build(g, d);
            } catch (KilnFormatException e) {
                throw new IllegalStateException("a graph that built once did not build again: " + e.getMessage(), e);
            }
        });
    }

    @Override
    public Tensor forward(Tensor input) {
        Tensor[] out = forwardAll(input);
        if (out.length != 1) {
            throw new IllegalStateException(graph.source() + ": the graph has " + out.length
                    + " outputs; call forwardAll to get them all");
        }
        return out[0];
    }

    @Override
    public Tensor[] forwardAll(Tensor... inputs) {
        if (inputs == null || inputs.length != inputSlots.length) {
            throw new IllegalArgumentException(graph.source() + ": the graph takes " + inputSlots.length + " input(s) "
                    + Arrays.toString(inputNames) + ", got " + (inputs == null ? 0 : inputs.length));
        }
        for (int i = 0; i < inputs.length; i++) {
            checkInput(i, inputs[i]);
        }
        Object[] env = template.clone();
        Set<Tensor> callers = Collections.newSetFromMap(new IdentityHashMap<>());
        for (int i = 0; i < inputs.length; i++) {
            env[inputSlots[i]] = inputs[i];
            callers.add(inputs[i]);
        }
        for (Step step : steps) {
            Object[] in = new Object[step.inputs.length];
            for (int k = 0; k < in.length; k++) {
                in[k] = step.inputs[k] < 0 ? null : env[step.inputs[k]];
            }
            Object[] out;
            try {
                out = step.tensorOutputs ? TensorScope.frameMany(() -> tensors(step.op.run(in))) : step.op.run(in);
            } catch (IllegalArgumentException e) {
                if (e.getClass() != IllegalArgumentException.class) {
                    throw e; // a subclass means something to its catcher
                }
                // a shape that does not fit: say which node of which graph refused it
                throw new IllegalArgumentException(graph.source() + ": " + step.label + ": " + e.getMessage(), e);
            }
            for (int k = 0; k < step.outputs.length; k++) {
                if (step.outputs[k] >= 0) {
                    env[step.outputs[k]] = out[k];
                }
            }
            for (int slot : step.releaseAfter) {
                Object v = env[slot];
                env[slot] = null;
                if (v instanceof Tensor t && !callers.contains(t) && !referenced(env, t)) {
                    TensorScope.releaseIntermediate(t);
                }
            }
        }
        Tensor[] result = new Tensor[outputSlots.length];
        for (int i = 0; i < result.length; i++) {
            result[i] = (Tensor) env[outputSlots[i]];
        }
        return result;
    }

    private static Tensor[] tensors(Object[] values) {
        Tensor[] out = new Tensor[values.length];
        for (int i = 0; i < values.length; i++) {
            out[i] = (Tensor) values[i];
        }
        return out;
    }

    private static boolean referenced(Object[] env, Tensor t) {
        for (Object o : env) {
            if (o == t) {
                return true;
            }
        }
        return false;
    }

    private void checkInput(int i, Tensor x) {
        if (x == null) {
            throw new IllegalArgumentException(graph.source() + ": input '" + inputNames[i] + "' is null");
        }
        int[] declared = declaredInputShapes[i];
        if (declared == null) {
            return;
        }
        int[] s = x.shape();
        boolean fits = s.length == declared.length;
        for (int d = 0; fits && d < s.length; d++) {
            fits = declared[d] < 0 || declared[d] == s[d];
        }
        if (!fits) {
            StringBuilder want = new StringBuilder("(");
            for (int d = 0; d < declared.length; d++) {
                want.append(d == 0 ? "" : ", ").append(declared[d] < 0 ? "?" : String.valueOf(declared[d]));
            }
            throw new IllegalArgumentException(graph.source() + ": input '" + inputNames[i] + "' must have shape "
                    + want + "), got " + Shapes.toString(s));
        }
    }

    @Override
    public Module train(boolean mode) {
        super.train(mode);
        if (stepModules != null) {
            for (Module m : stepModules) {
                m.train(mode);
            }
        }
        return this;
    }

    @Override
    public Module to(Device target) {
        super.to(target);
        for (int i = 0; i < template.length; i++) {
            if (template[i] instanceof Tensor t && t.device() != target) {
                template[i] = Tensor.unscoped(target, t.toArray(), t.shape());
                t.close();
            }
        }
        return this;
    }

    @Override
    public void close() {
        if (template != null) {
            for (Object o : template) {
                if (o instanceof Tensor t) {
                    t.close();
                }
            }
        }
        super.close();
    }

    @Override
    public String toString() {
        return "OnnxModule(" + graph.source() + ": " + steps.size() + " steps, inputs " + Arrays.toString(inputNames)
                + ", outputs " + Arrays.toString(outputNames) + ")\n" + super.toString();
    }
}
