package dev.kiln.onnx;

import com.google.protobuf.ByteString;
import dev.kiln.core.OpGraph;
import dev.kiln.core.Shapes;
import dev.kiln.core.Tensor;
import dev.kiln.nn.Module;
import dev.kiln.onnx.proto.OnnxProto;
import dev.kiln.onnx.proto.OnnxProto.AttributeProto;
import dev.kiln.onnx.proto.OnnxProto.NodeProto;
import dev.kiln.onnx.proto.OnnxProto.TensorProto;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Writes the ONNX graph of one traced forward pass: the value name of each tensor, initializers for parameters,
 * buffers and constants, and the nodes each op maps to ({@link OnnxOps}). The model was traced twice, at two batch
 * sizes; a dimension whose size differs between the twins is the batch dimension, which the graph keeps symbolic.
 */
final class GraphWriter {

    private final OnnxProto.GraphProto.Builder graph;
    private final Map<Tensor, Tensor> twin;
    private final Map<Tensor, String> names = new IdentityHashMap<>();
    private final Map<Tensor, String> parameterNames;
    private final Map<Tensor, Module> owners;
    private final Map<Tensor, List<Tensor>> readers;
    private final Map<Tensor, Integer> parameterUses;
    private final Set<Tensor> skipped = java.util.Collections.newSetFromMap(new IdentityHashMap<>());
    private final Set<Tensor> absorbed = java.util.Collections.newSetFromMap(new IdentityHashMap<>());
    private final Module model;
    private final Set<String> used = new HashSet<>();
    private final boolean foldBatchNorm;
    private int counter;
    private Tensor current;
    private String currentOutput;

    GraphWriter(Module model, OnnxProto.GraphProto.Builder graph, Map<Tensor, Tensor> twin, Map<Tensor, String> parameterNames,
                Map<Tensor, Module> owners, Map<Tensor, List<Tensor>> readers, Map<Tensor, Integer> parameterUses,
                boolean foldBatchNorm) {
        this.model = model;
        this.graph = graph;
        this.twin = twin;
        this.parameterNames = parameterNames;
        this.owners = owners;
        this.readers = readers;
        this.parameterUses = parameterUses;
        this.foldBatchNorm = foldBatchNorm;
        used.addAll(parameterNames.values());
    }

    // ------------------------------------------------------------------ what mappings read

    boolean foldBatchNorm() {
        return foldBatchNorm;
    }

    /** The traced tensor at the other batch size. */
    Tensor twin(Tensor t) {
        Tensor b = twin.get(t);
        if (b == null) {
            throw new IllegalStateException("no twin for a tensor of shape " + Shapes.toString(t.shape()));
        }
        return b;
    }

    /** Dimensions of {@code t} whose size follows the batch size. */
    boolean[] batchDims(Tensor t) {
        int[] a = t.shape();
        int[] b = twin(t).shape();
        boolean[] dims = new boolean[a.length];
        for (int i = 0; i < a.length; i++) {
            dims[i] = a[i] != b[i];
        }
        return dims;
    }

    List<Tensor> inputs(Tensor t) {
        return OpGraph.inputs(t);
    }

    Map<String, Object> attributes(Tensor t) {
        return OpGraph.attributes(t);
    }

    /** The tensors that read {@code t} (the graph's output counts as read by the caller: a null entry). */
    List<Tensor> readers(Tensor t) {
        return readers.getOrDefault(t, List.of());
    }

    /** How many inputs in the whole graph are this parameter or buffer. */
    int uses(Tensor parameter) {
        return parameterUses.getOrDefault(parameter, 0);
    }

    /** The module that owns a parameter or buffer, or null. */
    Module owner(Tensor parameter) {
        return owners.get(parameter);
    }

    /** The state-dict name of a parameter or buffer, or null. */
    String parameterName(Tensor t) {
        return parameterNames.get(t);
    }

    /** Marks an op whose work another op's nodes already do (a batch norm folded into its convolution). */
    void skip(Tensor t) {
        skipped.add(t);
    }

    boolean isSkipped(Tensor t) {
        return skipped.contains(t);
    }

    /** Marks the op being written as one whose value no node holds: the op reading it writes the work of both. */
    void absorb(Tensor t) {
        absorbed.add(t);
    }

    boolean isAbsorbed(Tensor t) {
        return absorbed.contains(t);
    }

    Module model() {
        return model;
    }

    OnnxExportException unsupported(Tensor t, String problem) {
        return new OnnxExportException(t.op() == null ? "(leaf)" : t.op(), t.shape(), problem);
    }

    // ------------------------------------------------------------------ names

    /** The value name of an input of the op being written (an earlier op's output, the graph input or an initializer). */
    String name(Tensor t) {
        String n = names.get(t);
        if (n != null) {
            return n;
        }
        if (!OpGraph.inputs(t).isEmpty()) {
            throw new IllegalStateException("tensor of shape " + Shapes.toString(t.shape()) + " used before it was written");
        }
        String parameter = parameterNames.get(t);
        if (parameter != null) {
            n = initializer(parameter, t.toArray(), t.shape());
        } else {
            n = initializer(fresh("constant"), constantData(t), t.shape());
        }
        names.put(t, n);
        return n;
    }

    /**
     * The values of a tensor the forward pass read that is neither the input nor a parameter or buffer: a constant,
     * which it is only if the trace at the other batch size read the same values.
     */
    private float[] constantData(Tensor t) {
        Tensor other = twin(t);
        if (!Arrays.equals(t.shape(), other.shape())) {
            throw new OnnxExportException("(no op)", t.shape(), "a tensor the forward pass read outside the recorded"
                    + " graph has a shape that follows the batch size (" + Shapes.toString(other.shape())
                    + " at the other batch size); an op computed it without recording gradients");
        }
        float[] a;
        float[] b;
        try {
            a = t.toArray();
            b = other.toArray();
        } catch (RuntimeException e) {
            throw new OnnxExportException("(no op)", t.shape(), "a tensor the forward pass read outside the recorded"
                    + " graph cannot be read as a constant (" + e.getMessage() + "): an op computed it without recording"
                    + " gradients, and its frame released it", e);
        }
        if (!Arrays.equals(a, b)) {
            throw new OnnxExportException("(no op)", t.shape(), "a tensor the forward pass read outside the recorded"
                    + " graph depends on the input, so it is no constant; an op computed it without recording gradients");
        }
        return a;
    }

    void bind(Tensor t, String name) {
        names.put(t, name);
        used.add(name);
    }

    /** A new value name starting with {@code base}. */
    String fresh(String base) {
        String n = base;
        while (used.contains(n)) {
            n = base + "_" + (++counter);
        }
        used.add(n);
        return n;
    }

    /** Starts writing op {@code t}, whose result will be value {@code output}. */
    void begin(Tensor t, String output) {
        current = t;
        currentOutput = output;
    }

    /** The value name the op being written must produce. */
    String out() {
        return currentOutput;
    }

    /** Binds a tensor whose op wrote no node to the value of another (an identity, a skipped pass-through). */
    void alias(Tensor t, String existing) {
        names.put(t, existing);
    }

    // ------------------------------------------------------------------ nodes and initializers

    NodeProto.Builder node(String opType, String output, String... inputs) {
        NodeProto.Builder n = graph.addNodeBuilder()
                .setOpType(opType)
                .setName(fresh(opType.toLowerCase() + "_node"))
                .addOutput(output);
        for (String in : inputs) {
            n.addInput(in);
        }
        if (current != null && current.op() != null) {
            n.setDocString("kiln op " + current.op() + ", shape " + Shapes.toString(current.shape()));
        }
        return n;
    }

    static AttributeProto ints(String name, long... values) {
        AttributeProto.Builder a = AttributeProto.newBuilder().setName(name).setType(AttributeProto.AttributeType.INTS);
        for (long v : values) {
            a.addInts(v);
        }
        return a.build();
    }

    static AttributeProto intAttr(String name, long value) {
        return AttributeProto.newBuilder().setName(name).setType(AttributeProto.AttributeType.INT).setI(value).build();
    }

    static AttributeProto floatAttr(String name, float value) {
        return AttributeProto.newBuilder().setName(name).setType(AttributeProto.AttributeType.FLOAT).setF(value).build();
    }

    static AttributeProto stringAttr(String name, String value) {
        return AttributeProto.newBuilder().setName(name).setType(AttributeProto.AttributeType.STRING)
                .setS(ByteString.copyFromUtf8(value)).build();
    }

    /** A float32 initializer, little-endian raw data. */
    String initializer(String name, float[] data, int... dims) {
        if (Shapes.numel(dims) != data.length) {
            throw new IllegalStateException("initializer " + name + ": " + data.length + " values for shape "
                    + Shapes.toString(dims));
        }
        ByteBuffer bytes = ByteBuffer.allocate(data.length * Float.BYTES).order(ByteOrder.LITTLE_ENDIAN);
        bytes.asFloatBuffer().put(data);
        TensorProto.Builder t = graph.addInitializerBuilder()
                .setName(name)
                .setDataType(TensorProto.DataType.FLOAT_VALUE)
                .setRawData(ByteString.copyFrom(bytes.array()));
        for (int d : dims) {
            t.addDims(d);
        }
        used.add(name);
        return name;
    }

    /** An int64 initializer (shapes, axes, slice bounds). */
    String longs(String base, long... values) {
        String name = fresh(base);
        ByteBuffer bytes = ByteBuffer.allocate(values.length * Long.BYTES).order(ByteOrder.LITTLE_ENDIAN);
        bytes.asLongBuffer().put(values);
        graph.addInitializerBuilder()
                .setName(name)
                .setDataType(TensorProto.DataType.INT64_VALUE)
                .addDims(values.length)
                .setRawData(ByteString.copyFrom(bytes.array()));
        return name;
    }

    /** A float32 scalar initializer (shape ()). */
    String scalar(String base, float value) {
        return initializer(fresh(base), new float[]{value});
    }

    /**
     * The shape a Reshape to {@code t}'s shape needs: fixed sizes, with -1 for the one dimension that follows the
     * batch size (the graph has a dynamic batch).
     */
    long[] reshapeTarget(Tensor t) {
        int[] s = t.shape();
        boolean[] batch = batchDims(t);
        long[] target = new long[s.length];
        int dynamic = 0;
        for (int i = 0; i < s.length; i++) {
            target[i] = batch[i] ? -1 : s[i];
            dynamic += batch[i] ? 1 : 0;
        }
        if (dynamic > 1) {
            throw unsupported(t, "more than one dimension follows the batch size, so no Reshape with a dynamic batch"
                    + " can express it");
        }
        return target;
    }

    /** Reshapes value {@code input} to {@code t}'s shape (dynamic in the batch), as value {@code output}. */
    void reshape(String input, Tensor t, String output) {
        node("Reshape", output, input, longs(output + "_shape", reshapeTarget(t)));
    }

    static List<Tensor> nonNull(List<Tensor> in) {
        List<Tensor> out = new ArrayList<>();
        for (Tensor t : in) {
            if (t != null) {
                out.add(t);
            }
        }
        return out;
    }
}
