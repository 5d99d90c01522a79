package dev.kiln.onnx;

import dev.kiln.backend.Activation;
import dev.kiln.core.Device;
import dev.kiln.core.Generator;
import dev.kiln.core.Tensor;
import dev.kiln.core.TensorScope;
import dev.kiln.io.KilnFormatException;
import dev.kiln.nn.ActivationLayer;
import dev.kiln.nn.BatchNorm;
import dev.kiln.nn.Conv2d;
import dev.kiln.nn.Dropout;
import dev.kiln.nn.FusesActivation;
import dev.kiln.nn.Linear;
import dev.kiln.nn.Module;
import dev.kiln.nn.functional.PoolOps;
import dev.kiln.nn.init.SkipInit;
import dev.kiln.onnx.proto.OnnxProto.AttributeProto;
import dev.kiln.onnx.proto.OnnxProto.NodeProto;
import dev.kiln.onnx.proto.OnnxProto.TensorProto;
import dev.kiln.onnx.proto.OnnxProto.TensorShapeProto;
import dev.kiln.onnx.proto.OnnxProto.ValueInfoProto;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Turns a checked {@link OnnxReader.OnnxGraph} into an {@link OnnxModule}: constants folded (initializers,
 * {@code Constant} nodes and the shape arithmetic on them), each remaining node mapped to the Kiln layer or op that
 * computes it, with its attributes checked against what that layer can do; anything else is a
 * {@link KilnFormatException} naming the node.
 */
final class GraphBuilder {

    /** The op types the import maps to Kiln (default domain). */
    static final List<String> SUPPORTED_OPS = List.of("Add", "AveragePool", "BatchNormalization", "Cast", "Clip",
            "Concat", "Constant", "Conv", "Div", "Dropout", "Flatten", "Gather", "Gemm", "GlobalAveragePool", "Identity",
            "MatMul", "MaxPool", "Mul", "Pad", "Relu", "Reshape", "Shape", "Sigmoid", "Squeeze", "Sub", "Tanh", "Unsqueeze");

    private final OnnxReader.OnnxGraph g;
    private final Device device;
    private final String source;
    private final OnnxModule module;
    private final Generator generator = new Generator(0);
    /** Values known at load time: initializers, constants and everything folded from them. */
    private final Map<String, HostArray> consts = new HashMap<>();
    /** Values computed at run time on the host (shape vectors); every other run-time value is a tensor. */
    private final Set<String> hostValues = new HashSet<>();
    private final Map<String, List<Integer>> readers = new HashMap<>();
    private final Set<String> graphOutputs;
    private final Set<Integer> absorbed = new HashSet<>();
    /** AveragePool nodes that take their padding from the Pad node before them. */
    private final Map<Integer, int[]> padsFromPad = new HashMap<>();
    private final Map<String, Fusable> fusable = new HashMap<>();
    private final Map<String, Integer> slots = new HashMap<>();
    private final Map<String, Integer> deviceSlots = new HashMap<>();
    private final List<Object> template = new ArrayList<>();
    private final List<OnnxModule.Step> steps = new ArrayList<>();
    private final List<int[]> stepInputs = new ArrayList<>();
    private boolean trainingMode;
    private long foldedValues;

    private GraphBuilder(OnnxReader.OnnxGraph g, Device device) {
        this.g = g;
        this.device = device;
        this.source = g.source();
        this.module = new OnnxModule(g, device);
        this.graphOutputs = new HashSet<>(g.outputs());
    }

    static OnnxModule build(OnnxReader.OnnxGraph g, Device device) throws KilnFormatException {
        GraphBuilder b = new GraphBuilder(g, device);
        try (SkipInit ignored = SkipInit.enter()) {
            return b.run();
        } catch (KilnFormatException | RuntimeException e) {
            b.closeAll();
            throw e;
        }
    }

    private void closeAll() {
        for (Object o : template) {
            if (o instanceof Tensor t) {
                t.close();
            }
        }
        module.close();
    }

    private OnnxModule run() throws KilnFormatException {
        consts.putAll(g.initializers());
        List<NodeProto> nodes = g.nodes();
        for (int i = 0; i < nodes.size(); i++) {
            for (String in : nodes.get(i).getInputList()) {
                if (!in.isEmpty()) {
                    readers.computeIfAbsent(in, k -> new ArrayList<>()).add(i);
                }
            }
        }
        String[] inputNames = new String[g.inputs().size()];
        int[] inputSlots = new int[inputNames.length];
        int[][] declared = new int[inputNames.length][];
        for (int i = 0; i < inputNames.length; i++) {
            ValueInfoProto in = g.inputs().get(i);
            inputNames[i] = in.getName();
            inputSlots[i] = slot(in.getName());
            declared[i] = declaredShape(in);
        }
        for (int i = 0; i < nodes.size(); i++) {
            if (absorbed.contains(i)) {
                continue;
            }
            NodeProto node = nodes.get(i);
            try {
                node(node, i);
            } catch (IllegalArgumentException e) {
                throw new KilnFormatException(source, OnnxReader.describe(node, i) + ": " + e.getMessage(), e);
            }
        }
        String[] outputNames = g.outputs().toArray(new String[0]);
        int[] outputSlots = new int[outputNames.length];
        for (int i = 0; i < outputNames.length; i++) {
            String name = outputNames[i];
            if (consts.containsKey(name)) {
                HostArray c = consts.get(name);
                if (c.kind() != HostArray.Kind.FLOAT) {
                    throw new KilnFormatException(source, "graph output '" + p(name) + "' is an integer constant; Kiln's outputs are float32 tensors");
                }
                outputSlots[i] = deviceSlot(name);
            } else if (hostValues.contains(name)) {
                throw new KilnFormatException(source, "graph output '" + p(name) + "' is an integer shape value; Kiln's outputs are float32 tensors");
            } else {
                outputSlots[i] = slot(name);
            }
        }
        List<OnnxModule.Step> finished = withReleases(inputSlots, outputSlots);
        module.finish(template.toArray(), inputSlots, outputSlots, finished, inputNames, outputNames, declared);
        if (trainingMode) {
            module.train();
        } else {
            module.eval();
        }
        return module;
    }

    /** Each run-time value is released after the last step that reads it, unless it is an input or an output. */
    private List<OnnxModule.Step> withReleases(int[] inputSlots, int[] outputSlots) {
        Set<Integer> keep = new HashSet<>();
        for (int s : inputSlots) {
            keep.add(s);
        }
        for (int s : outputSlots) {
            keep.add(s);
        }
        Map<Integer, Integer> lastUse = new HashMap<>();
        for (int i = 0; i < steps.size(); i++) {
            for (int s : steps.get(i).outputs()) {
                if (s >= 0) {
                    lastUse.put(s, i);
                }
            }
            for (int s : steps.get(i).inputs()) {
                if (s >= 0) {
                    lastUse.put(s, i);
                }
            }
        }
        List<List<Integer>> release = new ArrayList<>();
        for (int i = 0; i < steps.size(); i++) {
            release.add(new ArrayList<>());
        }
        for (Map.Entry<Integer, Integer> e : lastUse.entrySet()) {
            int s = e.getKey();
            if (!keep.contains(s) && template.get(s) == null) {
                release.get(e.getValue()).add(s);
            }
        }
        List<OnnxModule.Step> out = new ArrayList<>();
        for (int i = 0; i < steps.size(); i++) {
            OnnxModule.Step s = steps.get(i);
            out.add(new OnnxModule.Step(s.label(), s.inputs(), s.outputs(), s.op(), s.tensorOutputs(),
                    release.get(i).stream().mapToInt(Integer::intValue).toArray()));
        }
        return out;
    }

    private int[] declaredShape(ValueInfoProto in) {
        if (!in.getType().getTensorType().hasShape()) {
            return null;
        }
        TensorShapeProto shape = in.getType().getTensorType().getShape();
        int[] out = new int[shape.getDimCount()];
        for (int d = 0; d < out.length; d++) {
            TensorShapeProto.Dimension dim = shape.getDim(d);
            out[d] = dim.hasDimValue() && dim.getDimValue() > 0 ? (int) dim.getDimValue() : -1;
        }
        return out;
    }

    // ------------------------------------------------------------------ slots

    private int slot(String name) {
        Integer s = slots.get(name);
        if (s == null) {
            s = template.size();
            template.add(consts.get(name));
            slots.put(name, s);
        }
        return s;
    }

    /** A float constant as a device tensor, uploaded once. */
    private int deviceSlot(String name) {
        Integer s = deviceSlots.get(name);
        if (s == null) {
            HostArray c = consts.get(name);
            s = template.size();
            template.add(Tensor.unscoped(device, c.toFloats(), c.shape()));
            deviceSlots.put(name, s);
        }
        return s;
    }

    // ------------------------------------------------------------------ nodes

    private void node(NodeProto node, int index) throws KilnFormatException {
        String op = node.getOpType();
        String where = OnnxReader.describe(node, index);
        if (!node.getDomain().isEmpty() && !node.getDomain().equals("ai.onnx")) {
            throw unsupported(node, index);
        }
        switch (op) {
            case "Constant" -> constant(node, where);
            case "Identity" -> passThrough(node, where);
            case "Shape", "Gather", "Unsqueeze", "Squeeze", "Cast" -> shapeOp(node, index, where);
            case "Reshape", "Flatten", "Concat", "Add", "Sub", "Mul", "Div" -> hostOrTensor(node, index, where);
            case "Conv" -> conv(node, index, where);
            case "BatchNormalization" -> batchNorm(node, index, where);
            case "Gemm" -> gemm(node, index, where);
            case "MatMul" -> matMul(node, index, where);
            case "Relu" -> activation(node, where, Activation.RELU);
            case "Sigmoid" -> activation(node, where, Activation.SIGMOID);
            case "Tanh" -> activation(node, where, Activation.TANH);
            case "Clip" -> clip(node, where);
            case "AveragePool", "MaxPool" -> pool(node, index, where);
            case "GlobalAveragePool" -> {
                inputs(node, where, 1, 1);
                tensorStep(node, where, in -> new Object[]{globalAveragePool((Tensor) in[0])});
            }
            case "Pad" -> pad(node, index, where);
            case "Dropout" -> dropout(node, where);
            default -> throw unsupported(node, index);
        }
    }

    private KilnFormatException unsupported(NodeProto node, int index) {
        return new KilnFormatException(source, OnnxReader.describe(node, index) + ": op type '"
                + p(node.getDomain().isEmpty() ? node.getOpType() : node.getDomain() + ":" + node.getOpType())
                + "' is not supported by Kiln's ONNX import (it maps " + String.join(", ", SUPPORTED_OPS) + ")");
    }

    private static Tensor globalAveragePool(Tensor x) {
        if (x.dim() != 4) {
            throw new IllegalArgumentException("GlobalAveragePool: Kiln pools (N, C, H, W) input, got rank " + x.dim());
        }
        return PoolOps.adaptiveAvgPool2d(x, 1, 1);
    }

    private void constant(NodeProto node, String where) throws KilnFormatException {
        inputs(node, where, 0, 0);
        if (node.getAttributeCount() != 1 || node.getOutputCount() != 1) {
            throw format(where, "a Constant needs exactly one attribute and one output");
        }
        AttributeProto a = node.getAttribute(0);
        HostArray value = switch (a.getName()) {
            case "value" -> {
                if (!a.hasT()) {
                    throw format(where, "attribute 'value' holds no tensor");
                }
                yield OnnxReader.tensor(a.getT(), where + " value", source);
            }
            case "value_float" -> HostArray.floats(new float[]{a.getF()});
            case "value_floats" -> {
                float[] v = new float[a.getFloatsCount()];
                for (int i = 0; i < v.length; i++) {
                    v[i] = a.getFloats(i);
                }
                yield HostArray.floats(v, v.length);
            }
            case "value_int" -> HostArray.longs(new long[]{a.getI()});
            case "value_ints" -> {
                long[] v = new long[a.getIntsCount()];
                for (int i = 0; i < v.length; i++) {
                    v[i] = a.getInts(i);
                }
                yield HostArray.longs(v, v.length);
            }
            default -> throw format(where, "constant attribute '" + p(a.getName()) + "' is not supported");
        };
        define(node.getOutput(0), value);
    }

    /** A constant read from the file, or a view of one (nothing new allocated). */
    private void define(String name, HostArray value) throws KilnFormatException {
        define(name, value, false);
    }

    /** A constant; {@code computed} when folding allocated it, which {@link Onnx#MAX_FOLDED_VALUES} bounds. */
    private void define(String name, HostArray value, boolean computed) throws KilnFormatException {
        if (name.isEmpty()) {
            return;
        }
        foldedValues += computed ? value.numel() : 0;
        if (foldedValues > Onnx.MAX_FOLDED_VALUES) {
            throw new KilnFormatException(source, "constants computed at load time hold more than " + Onnx.MAX_FOLDED_VALUES
                    + " values (Onnx.MAX_FOLDED_VALUES)");
        }
        consts.put(name, value);
    }

    private void passThrough(NodeProto node, String where) throws KilnFormatException {
        inputs(node, where, 1, 1);
        String in = node.getInput(0);
        if (consts.containsKey(in)) {
            define(node.getOutput(0), consts.get(in));
            return;
        }
        if (hostValues.contains(in)) {
            hostValues.add(node.getOutput(0));
            hostStep(node, where, v -> new Object[]{v[0]});
        } else {
            tensorStep(node, where, v -> new Object[]{v[0]});
        }
    }

    // ------------------------------------------------------------------ host (shape) ops

    /** Ops on integer shape vectors: folded when their inputs are constants, else run on the host. */
    private void shapeOp(NodeProto node, int index, String where) throws KilnFormatException {
        String op = node.getOpType();
        OnnxModule.Op fn;
        switch (op) {
            case "Shape" -> {
                inputs(node, where, 1, 1);
                int start = attrInt(node, where, "start", 0);
                Integer end = attr(node, "end") == null ? null : attrInt(node, where, "end", 0);
                fn = in -> new Object[]{HostOps.shape(dims(in[0]), start, end)};
            }
            case "Gather" -> {
                inputs(node, where, 2, 2);
                int axis = attrInt(node, where, "axis", 0);
                fn = in -> new Object[]{HostOps.gather(host(in[0]), host(in[1]), axis)};
            }
            case "Unsqueeze", "Squeeze" -> {
                inputs(node, where, 1, 2);
                long[] attrAxes = g.opset() >= 13 ? null : attrLongs(node, where, "axes");
                boolean unsqueeze = op.equals("Unsqueeze");
                fn = in -> {
                    long[] axes = attrAxes != null ? attrAxes : in.length > 1 && in[1] != null ? host(in[1]).toLongs() : null;
                    Object x = in[0];
                    int[] s = unsqueeze ? HostOps.unsqueezeShape(dims(x), axes) : HostOps.squeezeShape(dims(x), axes);
                    return new Object[]{x instanceof Tensor t ? t.reshape(s) : host(x).reshape(s)};
                };
            }
            default -> { // Cast
                inputs(node, where, 1, 1);
                int to = attrInt(node, where, "to", -1);
                HostArray.Kind kind = switch (to) {
                    case TensorProto.DataType.FLOAT_VALUE -> HostArray.Kind.FLOAT;
                    case TensorProto.DataType.INT64_VALUE, TensorProto.DataType.INT32_VALUE -> HostArray.Kind.INT64;
                    default -> throw format(where, "Cast to " + OnnxReader.typeName(to) + " is not supported");
                };
                if (!isHost(node.getInput(0))) {
                    if (kind != HostArray.Kind.FLOAT) {
                        throw format(where, "Cast of a float tensor to " + OnnxReader.typeName(to) + " is not supported");
                    }
                    tensorStep(node, where, in -> new Object[]{in[0]});
                    return;
                }
                fn = in -> new Object[]{host(in[0]).cast(kind)};
            }
        }
        if (op.equals("Shape") || allHost(node)) {
            hostOrFold(node, where, fn);
        } else if (op.equals("Gather")) {
            throw format(where, "Gather on a float tensor is not supported (only on shape vectors)");
        } else {
            tensorStep(node, where, fn, 1);
        }
    }

    /** Ops Kiln runs on tensors, and on shape vectors when all their inputs are ones. */
    private void hostOrTensor(NodeProto node, int index, String where) throws KilnFormatException {
        String op = node.getOpType();
        OnnxModule.Op fn;
        boolean host = allHost(node);
        switch (op) {
            case "Reshape" -> {
                inputs(node, where, 2, 2);
                if (!isHost(node.getInput(1))) {
                    throw format(where, "the target shape is a float tensor, not a shape vector");
                }
                boolean allowZero = attrInt(node, where, "allowzero", 0) != 0;
                fn = in -> {
                    int[] target = HostOps.reshapeTarget(dims(in[0]), host(in[1]).toLongs(), allowZero);
                    return new Object[]{in[0] instanceof Tensor t ? t.reshape(target) : host(in[0]).reshape(target)};
                };
                host = isHost(node.getInput(0));
            }
            case "Flatten" -> {
                inputs(node, where, 1, 1);
                int axis = attrInt(node, where, "axis", 1);
                fn = in -> {
                    int[] target = HostOps.flattenShape(dims(in[0]), axis);
                    return new Object[]{in[0] instanceof Tensor t ? t.reshape(target) : host(in[0]).reshape(target)};
                };
            }
            case "Concat" -> {
                inputs(node, where, 1, Integer.MAX_VALUE);
                if (attr(node, "axis") == null) {
                    throw format(where, "Concat needs attribute 'axis'");
                }
                int axis = attrInt(node, where, "axis", 0);
                fn = in -> {
                    if (in[0] instanceof HostArray) {
                        HostArray[] parts = new HostArray[in.length];
                        for (int i = 0; i < in.length; i++) {
                            parts[i] = host(in[i]);
                        }
                        return new Object[]{HostOps.concat(parts, axis)};
                    }
                    List<Tensor> parts = new ArrayList<>();
                    for (Object o : in) {
                        parts.add((Tensor) o);
                    }
                    return new Object[]{Tensor.cat(parts, axis)};
                };
            }
            default -> {
                inputs(node, where, 2, 2);
                fn = in -> {
                    if (in[0] instanceof HostArray a && in[1] instanceof HostArray b) {
                        return new Object[]{HostOps.arithmetic(op, a, b)};
                    }
                    Tensor a = (Tensor) in[0];
                    Tensor b = (Tensor) in[1];
                    return new Object[]{switch (op) {
                        case "Add" -> a.add(b);
                        case "Sub" -> a.sub(b);
                        case "Mul" -> a.mul(b);
                        default -> a.div(b);
                    }};
                };
            }
        }
        if (host) {
            hostOrFold(node, where, fn);
        } else {
            tensorStep(node, where, fn, op.equals("Reshape") ? 1 : Integer.MAX_VALUE);
        }
    }

    private boolean allHost(NodeProto node) {
        for (String in : node.getInputList()) {
            if (!in.isEmpty() && !isHost(in)) {
                return false;
            }
        }
        return true;
    }

    private boolean isHost(String name) {
        return consts.containsKey(name) || hostValues.contains(name);
    }

    private static int[] dims(Object v) {
        return v instanceof Tensor t ? t.shape() : ((HostArray) v).shape();
    }

    private static HostArray host(Object v) {
        if (v instanceof HostArray h) {
            return h;
        }
        throw new IllegalArgumentException("expected a shape vector, got a float tensor");
    }

    /** Folds the node when every input is a constant, else runs it on the host at run time. */
    private void hostOrFold(NodeProto node, String where, OnnxModule.Op fn) throws KilnFormatException {
        boolean constant = true;
        for (String in : node.getInputList()) {
            if (!in.isEmpty() && !consts.containsKey(in)) {
                constant = false;
            }
        }
        if (node.getOpType().equals("Shape") && !consts.containsKey(node.getInput(0))) {
            constant = false;
        }
        if (constant) {
            Object[] in = new Object[node.getInputCount()];
            for (int i = 0; i < in.length; i++) {
                in[i] = node.getInput(i).isEmpty() ? null : consts.get(node.getInput(i));
            }
            Object[] out;
            try {
                out = fn.run(in);
            } catch (IllegalArgumentException | ArithmeticException e) {
                throw format(where, e.getMessage());
            }
            // reshapes share the input's values; every other op made new ones
            boolean computed = !List.of("Reshape", "Flatten", "Unsqueeze", "Squeeze", "Identity").contains(node.getOpType());
            for (int i = 0; i < Math.min(out.length, node.getOutputCount()); i++) {
                define(node.getOutput(i), (HostArray) out[i], computed);
            }
            return;
        }
        for (String out : node.getOutputList()) {
            if (!out.isEmpty()) {
                hostValues.add(out);
            }
        }
        hostStep(node, where, fn);
    }

    private void hostStep(NodeProto node, String where, OnnxModule.Op fn) {
        addStep(where, node.getInputList(), node.getOutputList(), fn, true, 0);
    }

    /** A step on tensors: every input a float tensor (float constants uploaded once). */
    private void tensorStep(NodeProto node, String where, OnnxModule.Op fn) {
        tensorStep(node, where, fn, Integer.MAX_VALUE);
    }

    /** A step on tensors whose inputs from {@code firstHostInput} on are shape vectors or integer constants. */
    private void tensorStep(NodeProto node, String where, OnnxModule.Op fn, int firstHostInput) {
        addStep(where, node.getInputList(), node.getOutputList(), fn, false, firstHostInput);
    }

    private void addStep(String where, List<String> inputs, List<String> outputs, OnnxModule.Op fn, boolean host) {
        addStep(where, inputs, outputs, fn, host, Integer.MAX_VALUE);
    }

    private void addStep(String where, List<String> inputs, List<String> outputs, OnnxModule.Op fn, boolean host,
                         int firstHostInput) {
        int[] in = new int[inputs.size()];
        for (int i = 0; i < in.length; i++) {
            String name = inputs.get(i);
            if (name.isEmpty()) {
                in[i] = -1;
            } else if (host) {
                in[i] = slot(name);
            } else if (i >= firstHostInput) {
                if (!isHost(name)) {
                    throw new IllegalArgumentException("input " + i + " ('" + p(name) + "') is a float tensor, not a shape vector");
                }
                in[i] = slot(name);
            } else {
                HostArray c = consts.get(name);
                if (hostValues.contains(name) || c != null && c.kind() != HostArray.Kind.FLOAT) {
                    throw new IllegalArgumentException("input " + i + " ('" + p(name) + "') is an integer value, not a float tensor");
                }
                in[i] = c != null ? deviceSlot(name) : slot(name);
            }
        }
        int[] out = new int[outputs.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = outputs.get(i).isEmpty() ? -1 : slot(outputs.get(i));
        }
        steps.add(new OnnxModule.Step(where, in, out, fn, !host, new int[0]));
    }

    // ------------------------------------------------------------------ layers

    private void conv(NodeProto node, int index, String where) throws KilnFormatException {
        inputs(node, where, 2, 3);
        HostArray w = floatConstant(node, where, 1, "weight");
        if (w.rank() != 4) {
            throw format(where, "weight of rank " + w.rank() + " " + Arrays.toString(w.shape())
                    + "; Kiln's import maps 2-d convolution (weight (M, C/group, kH, kW))");
        }
        int[] ws = w.shape();
        HostArray b = node.getInputCount() > 2 && !node.getInput(2).isEmpty() ? floatConstant(node, where, 2, "bias") : null;
        if (b != null && (b.rank() != 1 || b.numel() != ws[0])) {
            throw format(where, "bias of shape " + Arrays.toString(b.shape()) + " for " + ws[0] + " output channels");
        }
        int group = attrInt(node, where, "group", 1);
        if (group < 1 || ws[0] % group != 0) {
            throw format(where, "group " + group + " does not divide " + ws[0] + " output channels");
        }
        int[] kernel = attrInts(node, where, "kernel_shape", new int[]{ws[2], ws[3]}, 1);
        if (kernel.length != 2 || kernel[0] != ws[2] || kernel[1] != ws[3]) {
            throw format(where, "kernel_shape " + Arrays.toString(kernel) + " differs from the weight's "
                    + Arrays.toString(ws));
        }
        int[] strides = attrInts(node, where, "strides", new int[]{1, 1}, 1);
        int[] dilations = attrInts(node, where, "dilations", new int[]{1, 1}, 1);
        int[] pads = symmetricPads(node, where);
        if (strides.length != 2 || dilations.length != 2) {
            throw format(where, "strides " + Arrays.toString(strides) + " and dilations " + Arrays.toString(dilations)
                    + " must have 2 values");
        }
        for (int d = 0; d < 2; d++) {
            if ((long) pads[d] > (long) dilations[d] * (ws[2 + d] - 1)) {
                throw format(where, "pads " + Arrays.toString(pads) + " exceed the kernel's extent (as PyTorch's"
                        + " padding='same' never does); Kiln's import refuses them");
            }
        }
        long in = (long) ws[1] * group;
        if (in > Integer.MAX_VALUE || ws[0] < 1 || ws[1] < 1 || ws[2] < 1 || ws[3] < 1) {
            throw format(where, "weight shape " + Arrays.toString(ws));
        }
        List<String> path = path(node, index, node.getInput(1), "conv");
        Conv2d conv = Conv2d.builder((int) in, ws[0]).kernel(ws[2], ws[3]).stride(strides[0], strides[1])
                .padding(pads[0], pads[1]).dilation(dilations[0], dilations[1]).groups(group).bias(b != null)
                .build(device, generator);
        module.addLayer(path, conv);
        conv.weight().copyFrom(w.toFloats());
        map(node.getInput(1), path, "weight");
        if (b != null) {
            conv.bias().copyFrom(b.toFloats());
            map(node.getInput(2), path, "bias");
        }
        layerStep(node, where, conv);
    }

    private void batchNorm(NodeProto node, int index, String where) throws KilnFormatException {
        inputs(node, where, 5, 5);
        HostArray scale = floatConstant(node, where, 1, "scale");
        HostArray bias = floatConstant(node, where, 2, "B");
        HostArray mean = floatConstant(node, where, 3, "mean");
        HostArray var = floatConstant(node, where, 4, "var");
        int c = scale.numel();
        for (HostArray h : new HostArray[]{scale, bias, mean, var}) {
            if (h.rank() != 1 || h.numel() != c || c < 1) {
                throw format(where, "scale, B, mean and var must be vectors of one length, got shapes "
                        + Arrays.toString(scale.shape()) + ", " + Arrays.toString(bias.shape()) + ", "
                        + Arrays.toString(mean.shape()) + ", " + Arrays.toString(var.shape()));
            }
        }
        if (attr(node, "spatial") != null && attrInt(node, where, "spatial", 1) != 1) {
            throw format(where, "spatial=0 (statistics per element) is not supported");
        }
        float eps = attrFloat(node, where, "epsilon", 1e-5f);
        float onnxMomentum = attrFloat(node, where, "momentum", 0.9f);
        if (!(eps > 0) || !(onnxMomentum >= 0 && onnxMomentum <= 1)) {
            throw format(where, "epsilon " + eps + " and momentum " + onnxMomentum + " must be positive and in [0, 1]");
        }
        boolean training = attrInt(node, where, "training_mode", 0) != 0;
        for (int k = 1; k < node.getOutputCount(); k++) {
            String out = node.getOutput(k);
            if (!out.isEmpty() && (readers.containsKey(out) || graphOutputs.contains(out))) {
                throw format(where, "output " + k + " ('" + p(out) + "', the updated running statistics) is read;"
                        + " Kiln's batch norm updates its running statistics in place, as PyTorch's does");
            }
        }
        trainingMode |= training;
        List<String> path = path(node, index, node.getInput(1), "batch_norm");
        OnnxBatchNorm bn = new OnnxBatchNorm(device, c, eps, pytorchMomentum(onnxMomentum));
        module.addLayer(path, bn);
        bn.weight().copyFrom(scale.toFloats());
        bn.bias().copyFrom(bias.toFloats());
        bn.runningMean().copyFrom(mean.toFloats());
        bn.runningVar().copyFrom(var.toFloats());
        map(node.getInput(1), path, "weight");
        map(node.getInput(2), path, "bias");
        map(node.getInput(3), path, "running_mean");
        map(node.getInput(4), path, "running_var");
        layerStep(node, where, bn);
    }

    /**
     * ONNX's momentum weighs the old running value, PyTorch's the new batch value: {@code 1 - m}. Exporters write
     * PyTorch's 0.1 as the float32 0.9f, whose complement is 0.100000024; a complement within float32 rounding of a
     * six-decimal value is taken as that value.
     */
    static float pytorchMomentum(float onnxMomentum) {
        double exact = 1.0 - onnxMomentum;
        double rounded = Math.round(exact * 1e6) / 1e6;
        return Math.abs(rounded - exact) <= Math.ulp(onnxMomentum) ? (float) rounded : (float) exact;
    }

    private void gemm(NodeProto node, int index, String where) throws KilnFormatException {
        inputs(node, where, 2, 3);
        if (attrInt(node, where, "transA", 0) != 0) {
            throw format(where, "transA=1 is not supported (the input is the left operand as is)");
        }
        float alpha = attrFloat(node, where, "alpha", 1f);
        float beta = attrFloat(node, where, "beta", 1f);
        if (alpha != 1f || beta != 1f) {
            throw format(where, "alpha " + alpha + " and beta " + beta + ": Kiln's Linear computes alpha = beta = 1");
        }
        HostArray b = floatConstant(node, where, 1, "B");
        if (b.rank() != 2) {
            throw format(where, "B of shape " + Arrays.toString(b.shape()) + " is not a matrix");
        }
        boolean transB = attrInt(node, where, "transB", 0) != 0;
        int out = transB ? b.shape()[0] : b.shape()[1];
        int in = transB ? b.shape()[1] : b.shape()[0];
        HostArray c = node.getInputCount() > 2 && !node.getInput(2).isEmpty() ? floatConstant(node, where, 2, "C") : null;
        linear(node, index, where, node.getInput(0), node.getInput(1), transB ? b.toFloats() : transpose(b),
                in, out, c, c == null ? null : node.getInput(2), node.getOutput(0));
    }

    private void matMul(NodeProto node, int index, String where) throws KilnFormatException {
        inputs(node, where, 2, 2);
        String bName = node.getInput(1);
        if (!consts.containsKey(bName) || consts.get(bName).rank() != 2 || consts.get(bName).kind() != HostArray.Kind.FLOAT
                || isHost(node.getInput(0))) {
            if (isHost(node.getInput(0)) || isHost(bName) && !consts.containsKey(bName)) {
                throw format(where, "MatMul of shape vectors is not supported");
            }
            tensorStep(node, where, in -> new Object[]{((Tensor) in[0]).matmul((Tensor) in[1])});
            return;
        }
        HostArray b = consts.get(bName);
        String output = node.getOutput(0);
        HostArray bias = null;
        String biasName = null;
        List<Integer> r = readers.getOrDefault(output, List.of());
        if (r.size() == 1 && !graphOutputs.contains(output)) {
            NodeProto add = g.nodes().get(r.get(0));
            if (add.getOpType().equals("Add") && add.getDomain().isEmpty() && add.getInputCount() == 2) {
                String other = add.getInput(0).equals(output) ? add.getInput(1) : add.getInput(0);
                HostArray c = consts.get(other);
                if (c != null && c.kind() == HostArray.Kind.FLOAT && c.numel() == b.shape()[1]
                        && (c.rank() == 1 || c.rank() == 2 && c.shape()[0] == 1)) {
                    bias = c;
                    biasName = other;
                    absorbed.add(r.get(0));
                    output = add.getOutput(0);
                }
            }
        }
        linear(node, index, where, node.getInput(0), bName, transpose(b), b.shape()[0], b.shape()[1], bias, biasName, output);
    }

    private void linear(NodeProto node, int index, String where, String input, String weightName, float[] weight,
                        int in, int out, HostArray bias, String biasName, String output) throws KilnFormatException {
        if (in < 1 || out < 1) {
            throw format(where, "weight of " + in + " inputs and " + out + " outputs");
        }
        if (bias != null && bias.numel() != out) {
            if (bias.numel() != 1) {
                throw format(where, "bias of shape " + Arrays.toString(bias.shape()) + " for " + out + " outputs");
            }
            float[] filled = new float[out];
            Arrays.fill(filled, bias.toFloats()[0]);
            bias = HostArray.floats(filled, out);
        }
        if (isHost(input)) {
            throw format(where, "the input is a shape vector, not a float tensor");
        }
        List<String> path = path(node, index, weightName, "linear");
        Linear linear = new Linear(device, generator, in, out, bias != null);
        module.addLayer(path, linear);
        linear.weight().copyFrom(weight);
        map(weightName, path, "weight");
        if (bias != null) {
            linear.bias().copyFrom(bias.toFloats());
            map(biasName, path, "bias");
        }
        layerStep(where, input, output, linear);
    }

    private static float[] transpose(HostArray m) {
        int rows = m.shape()[0];
        int cols = m.shape()[1];
        float[] v = m.toFloats();
        float[] t = new float[v.length];
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                t[c * rows + r] = v[r * cols + c];
            }
        }
        return t;
    }

    private void layerStep(NodeProto node, String where, Module layer) {
        layerStep(where, node.getInput(0), node.getOutput(0), layer);
    }

    /** A step running {@code layer}; one that can fuse an activation is remembered for the activation after it. */
    private void layerStep(String where, String input, String output, Module layer) {
        addStep(where, List.of(input), List.of(output), in -> new Object[]{layer.forward((Tensor) in[0])}, false);
        if (layer instanceof FusesActivation f) {
            fusable.put(output, new Fusable(steps.size() - 1, where, input, layer, f));
        }
    }

    /** A layer step whose output an activation may take over: its step index, label, input and layer. */
    private record Fusable(int step, String where, String input, Module layer, FusesActivation fuses) {
    }

    private void activation(NodeProto node, String where, Activation a) throws KilnFormatException {
        inputs(node, where, 1, 1);
        requireTensor(node, where, 0);
        activationStep(node, where, a);
    }

    /**
     * The activation as a step of its own, or, when its input is the output of a batch norm or linear layer that
     * nothing else reads, as part of that layer's step: in eval mode without gradients one fused pass
     * ({@link FusesActivation}, as {@code LayerChain} does for Kiln's own models), else the two in turn.
     */
    private void activationStep(NodeProto node, String where, Activation a) {
        ActivationLayer activation = new ActivationLayer(a);
        String x = node.getInput(0);
        Fusable f = fusable.get(x);
        if (f != null && readers.getOrDefault(x, List.of()).size() == 1 && !graphOutputs.contains(x)) {
            fusable.remove(x);
            Module layer = f.layer();
            FusesActivation fuses = f.fuses();
            steps.set(f.step(), new OnnxModule.Step(f.where() + " + " + where, new int[]{slot(f.input())},
                    new int[]{slot(node.getOutput(0))}, in -> {
                        Tensor input = (Tensor) in[0];
                        Tensor fused = fuses.forwardActivated(input, a);
                        if (fused != null) {
                            return new Object[]{fused};
                        }
                        Tensor y = layer.forward(input);
                        Tensor out = activation.forward(y);
                        if (y != input) {
                            TensorScope.releaseIntermediate(y);
                        }
                        return new Object[]{out};
                    }, true, new int[0]));
            return;
        }
        addStep(where, List.of(x), List.of(node.getOutput(0)), in -> new Object[]{activation.forward((Tensor) in[0])}, false);
    }

    private void clip(NodeProto node, String where) throws KilnFormatException {
        inputs(node, where, 1, 3);
        requireTensor(node, where, 0);
        Float min;
        Float max;
        if (g.opset() >= 11) {
            min = scalar(node, where, 1);
            max = scalar(node, where, 2);
        } else {
            min = attr(node, "min") == null ? null : attrFloat(node, where, "min", 0f);
            max = attr(node, "max") == null ? null : attrFloat(node, where, "max", 0f);
        }
        if (min != null && max != null && min > max) {
            throw format(where, "min " + min + " is above max " + max);
        }
        Activation fused = min != null && min == 0f ? (max == null ? Activation.RELU : max == 6f ? Activation.RELU6 : null) : null;
        if (fused != null) {
            activationStep(node, where, fused);
            return;
        }
        Float lo = min;
        Float hi = max;
        addStep(where, List.of(node.getInput(0)), List.of(node.getOutput(0)), in -> {
            Tensor x = (Tensor) in[0];
            if (lo != null) {
                x = x.clampMin(lo);
            }
            if (hi != null) {
                x = x.clampMax(hi);
            }
            return new Object[]{x};
        }, false);
    }

    private Float scalar(NodeProto node, String where, int input) throws KilnFormatException {
        if (node.getInputCount() <= input || node.getInput(input).isEmpty()) {
            return null;
        }
        HostArray v = constant(node, where, input, "input " + input);
        if (v.numel() != 1) {
            throw format(where, "input " + input + " has " + v.numel() + " values, not one");
        }
        return (float) v.get(0);
    }

    private void pool(NodeProto node, int index, String where) throws KilnFormatException {
        boolean max = node.getOpType().equals("MaxPool");
        inputs(node, where, 1, 1);
        requireTensor(node, where, 0);
        if (max && node.getOutputCount() > 1 && !node.getOutput(1).isEmpty()
                && (readers.containsKey(node.getOutput(1)) || graphOutputs.contains(node.getOutput(1)))) {
            throw format(where, "the Indices output is read; Kiln's max pooling gives values only");
        }
        if (attr(node, "kernel_shape") == null) {
            throw format(where, "attribute 'kernel_shape' is missing");
        }
        int[] kernel = attrInts(node, where, "kernel_shape", null, 1);
        if (kernel.length != 2) {
            throw format(where, "kernel_shape " + Arrays.toString(kernel) + ": Kiln's import maps 2-d pooling");
        }
        int[] strides = attrInts(node, where, "strides", new int[]{1, 1}, 1);
        int[] dilations = attrInts(node, where, "dilations", new int[]{1, 1}, 1);
        if (strides.length != 2 || dilations[0] != 1 || dilations.length != 2 || dilations[1] != 1) {
            throw format(where, "strides " + Arrays.toString(strides) + ", dilations " + Arrays.toString(dilations)
                    + ": Kiln pools with 2 strides and no dilation");
        }
        if (attrInt(node, where, "ceil_mode", 0) != 0) {
            throw format(where, "ceil_mode=1 is not supported");
        }
        if (max && attrInt(node, where, "storage_order", 0) != 0) {
            throw format(where, "storage_order=1 is not supported");
        }
        int[] pads = symmetricPads(node, where);
        int[] fromPad = padsFromPad.get(index);
        if (fromPad != null) {
            pads = new int[]{pads[0] + fromPad[0], pads[1] + fromPad[1]};
        } else if (!max && (pads[0] > 0 || pads[1] > 0) && attrInt(node, where, "count_include_pad", 0) == 0) {
            throw format(where, "padding with count_include_pad=0: Kiln's average pooling counts the padding in the"
                    + " divisor (PyTorch's count_include_pad=True)");
        }
        if (pads[0] > kernel[0] / 2 || pads[1] > kernel[1] / 2) {
            throw format(where, "padding " + Arrays.toString(pads) + " is more than half the kernel "
                    + Arrays.toString(kernel) + " (PyTorch's limit for pooling)");
        }
        int kh = kernel[0];
        int kw = kernel[1];
        int sh = strides[0];
        int sw = strides[1];
        int ph = pads[0];
        int pw = pads[1];
        addStep(where, List.of(node.getInput(0)), List.of(node.getOutput(0)), in -> {
            Tensor x = (Tensor) in[0];
            return new Object[]{max ? PoolOps.maxPool2d(x, kh, kw, sh, sw, ph, pw) : PoolOps.avgPool2d(x, kh, kw, sh, sw, ph, pw)};
        }, false);
    }

    /**
     * {@code Pad} as exporters write it: all zero (a pass-through), or constant zero padding of the two spatial
     * dimensions read only by an {@code AveragePool}, which then pads itself (PyTorch's {@code AvgPool2d(padding=p)}
     * with {@code count_include_pad=True} exports so).
     */
    private void pad(NodeProto node, int index, String where) throws KilnFormatException {
        inputs(node, where, 1, 3);
        requireTensor(node, where, 0);
        String mode = attrString(node, where, "mode", "constant");
        long[] pads;
        if (g.opset() >= 11) {
            if (node.getInputCount() < 2 || node.getInput(1).isEmpty()) {
                throw format(where, "input 'pads' is missing");
            }
            pads = constant(node, where, 1, "pads").toLongs();
            if (node.getInputCount() > 2 && !node.getInput(2).isEmpty()) {
                HostArray v = constant(node, where, 2, "constant_value");
                if (v.numel() != 1 || v.get(0) != 0) {
                    throw format(where, "constant_value other than 0 is not supported");
                }
            }
        } else {
            pads = attrLongs(node, where, "pads");
            if (pads == null) {
                throw format(where, "attribute 'pads' is missing");
            }
            if (attrFloat(node, where, "value", 0f) != 0f) {
                throw format(where, "value other than 0 is not supported");
            }
        }
        boolean zero = true;
        for (long v : pads) {
            zero &= v == 0;
        }
        if (zero) {
            tensorStep(node, where, in -> new Object[]{in[0]}, 1);
            return;
        }
        String out = node.getOutput(0);
        List<Integer> r = readers.getOrDefault(out, List.of());
        boolean spatialOnly = pads.length == 8 && pads[0] == 0 && pads[1] == 0 && pads[4] == 0 && pads[5] == 0
                && pads[2] == pads[6] && pads[3] == pads[7] && pads[2] >= 0 && pads[3] >= 0
                && pads[2] <= Onnx.MAX_ATTRIBUTE_VALUE && pads[3] <= Onnx.MAX_ATTRIBUTE_VALUE;
        if (mode.equals("constant") && spatialOnly && r.size() == 1 && !graphOutputs.contains(out)) {
            NodeProto next = g.nodes().get(r.get(0));
            if (next.getOpType().equals("AveragePool") && next.getDomain().isEmpty() && next.getInput(0).equals(out)) {
                padsFromPad.put(r.get(0), new int[]{(int) pads[2], (int) pads[3]});
                // the pool reads this node's input directly
                aliases(out, node.getInput(0));
                return;
            }
        }
        throw format(where, "padding " + Arrays.toString(pads) + " (mode " + mode + ") is supported only as constant"
                + " zero padding of the spatial dimensions before an AveragePool");
    }

    /** Makes {@code name} read as {@code target}: a step that passes the tensor through. */
    private void aliases(String name, String target) {
        addStep("Pad", List.of(target), List.of(name), in -> new Object[]{in[0]}, false);
    }

    private void dropout(NodeProto node, String where) throws KilnFormatException {
        inputs(node, where, 1, 3);
        requireTensor(node, where, 0);
        float ratio;
        if (g.opset() >= 12) {
            Float given = node.getInputCount() > 1 && !node.getInput(1).isEmpty() ? scalar(node, where, 1) : null;
            ratio = given == null ? 0.5f : given;
        } else {
            ratio = attrFloat(node, where, "ratio", 0.5f);
        }
        if (!(ratio >= 0 && ratio < 1)) {
            throw format(where, "ratio " + ratio + " is not in [0, 1)");
        }
        if (node.getOutputCount() > 1 && !node.getOutput(1).isEmpty()
                && (readers.containsKey(node.getOutput(1)) || graphOutputs.contains(node.getOutput(1)))) {
            throw format(where, "the mask output is read; Kiln's dropout gives values only");
        }
        Dropout d = new Dropout(ratio, new Generator(0));
        module.addStepModule(d);
        addStep(where, List.of(node.getInput(0)), List.of(node.getOutput(0)), in -> new Object[]{d.forward((Tensor) in[0])}, false);
    }

    // ------------------------------------------------------------------ naming

    /**
     * Where a layer goes in the module: the path its weight's initializer names ({@code layer1.0.conv1.weight} ->
     * {@code layer1, 0, conv1}) when that path is free, else the node's name made into one identifier, else the op
     * and the node's position.
     */
    private List<String> path(NodeProto node, int index, String weightName, String kind) {
        int dot = weightName.lastIndexOf('.');
        if (dot > 0 && weightName.startsWith("weight", dot + 1) && weightName.length() == dot + 7) {
            List<String> path = List.of(weightName.substring(0, dot).split("\\.", -1));
            if (path.size() <= Onnx.MAX_NESTING && module.pathFree(path)) {
                return path;
            }
        }
        String name = node.getName().replaceAll("[^A-Za-z0-9_]", "_").replaceAll("^_+", "");
        if (name.length() > 64) {
            name = name.substring(name.length() - 64);
        }
        if (!name.isEmpty() && module.pathFree(List.of(name))) {
            return List.of(name);
        }
        String fallback = kind + "_" + index;
        for (int k = 2; !module.pathFree(List.of(fallback)); k++) {
            fallback = kind + "_" + index + "_" + k;
        }
        return List.of(fallback);
    }

    private void map(String initializer, List<String> path, String parameter) {
        module.mapStateDictKey(initializer, String.join(".", path) + "." + parameter);
    }

    // ------------------------------------------------------------------ attribute and input checks

    private void inputs(NodeProto node, String where, int min, int max) throws KilnFormatException {
        int n = node.getInputCount();
        while (n > 0 && node.getInput(n - 1).isEmpty()) {
            n--;
        }
        if (n < min || n > max) {
            throw format(where, "takes " + (min == max ? String.valueOf(min) : min + " to " + (max == Integer.MAX_VALUE ? "any" : max))
                    + " inputs, has " + n);
        }
        for (int i = 0; i < min; i++) {
            if (node.getInput(i).isEmpty()) {
                throw format(where, "input " + i + " is missing");
            }
        }
        if (node.getOutputCount() < 1 || node.getOutput(0).isEmpty()) {
            throw format(where, "has no output");
        }
    }

    private void requireTensor(NodeProto node, String where, int input) throws KilnFormatException {
        String name = node.getInput(input);
        if (hostValues.contains(name) || consts.containsKey(name) && consts.get(name).kind() != HostArray.Kind.FLOAT) {
            throw format(where, "input '" + p(name) + "' is an integer value, not a float tensor");
        }
    }

    private HostArray constant(NodeProto node, String where, int input, String what) throws KilnFormatException {
        String name = node.getInput(input);
        HostArray v = consts.get(name);
        if (v == null) {
            throw format(where, what + " ('" + p(name) + "') is computed at run time; Kiln's import needs it stored in"
                    + " the file (an initializer or constant)");
        }
        return v;
    }

    /** A layer's weight or statistic: a float32 constant. */
    private HostArray floatConstant(NodeProto node, String where, int input, String what) throws KilnFormatException {
        HostArray v = constant(node, where, input, what);
        if (v.kind() != HostArray.Kind.FLOAT) {
            throw format(where, what + " ('" + p(node.getInput(input)) + "') is an integer tensor; Kiln's layers hold float32");
        }
        return v;
    }

    private static AttributeProto attr(NodeProto node, String name) {
        return OnnxReader.attribute(node, name);
    }

    private int attrInt(NodeProto node, String where, String name, int fallback) throws KilnFormatException {
        AttributeProto a = attr(node, name);
        if (a == null) {
            return fallback;
        }
        if (!a.hasI() && a.getType() != AttributeProto.AttributeType.INT) {
            throw format(where, "attribute '" + name + "' is not an integer");
        }
        if (Math.abs(a.getI()) > Onnx.MAX_ATTRIBUTE_VALUE) {
            throw format(where, "attribute '" + name + "' = " + a.getI() + " is out of range");
        }
        return (int) a.getI();
    }

    private float attrFloat(NodeProto node, String where, String name, float fallback) throws KilnFormatException {
        AttributeProto a = attr(node, name);
        if (a == null) {
            return fallback;
        }
        if (!a.hasF() && a.getType() != AttributeProto.AttributeType.FLOAT) {
            throw format(where, "attribute '" + name + "' is not a float");
        }
        if (!Float.isFinite(a.getF())) {
            throw format(where, "attribute '" + name + "' = " + a.getF());
        }
        return a.getF();
    }

    private String attrString(NodeProto node, String where, String name, String fallback) throws KilnFormatException {
        AttributeProto a = attr(node, name);
        if (a == null) {
            return fallback;
        }
        if (!a.hasS() && a.getType() != AttributeProto.AttributeType.STRING) {
            throw format(where, "attribute '" + name + "' is not a string");
        }
        return a.getS().toString(StandardCharsets.UTF_8);
    }

    private long[] attrLongs(NodeProto node, String where, String name) throws KilnFormatException {
        AttributeProto a = attr(node, name);
        if (a == null) {
            return null;
        }
        if (a.getType() != AttributeProto.AttributeType.INTS && a.getIntsCount() == 0 && a.getType() != AttributeProto.AttributeType.UNDEFINED) {
            throw format(where, "attribute '" + name + "' is not a list of integers");
        }
        if (a.getIntsCount() > Onnx.MAX_RANK * 2) {
            throw format(where, "attribute '" + name + "' has " + a.getIntsCount() + " values");
        }
        long[] out = new long[a.getIntsCount()];
        for (int i = 0; i < out.length; i++) {
            out[i] = a.getInts(i);
            if (Math.abs(out[i]) > Onnx.MAX_ATTRIBUTE_VALUE) {
                throw format(where, "attribute '" + name + "' holds " + out[i] + ", out of range");
            }
        }
        return out;
    }

    /** Integer list attribute whose values are at least {@code min}. */
    private int[] attrInts(NodeProto node, String where, String name, int[] fallback, int min) throws KilnFormatException {
        long[] v = attrLongs(node, where, name);
        if (v == null) {
            return fallback;
        }
        int[] out = new int[v.length];
        for (int i = 0; i < v.length; i++) {
            if (v[i] < min) {
                throw format(where, "attribute '" + name + "' " + Arrays.toString(v) + " holds a value below " + min);
            }
            out[i] = (int) v[i];
        }
        return out;
    }

    /** The (h, w) padding of a 2-d conv or pool: pads [h0, w0, h1, w1] with h0 = h1, w0 = w1. */
    private int[] symmetricPads(NodeProto node, String where) throws KilnFormatException {
        String autoPad = attrString(node, where, "auto_pad", "NOTSET");
        if (!autoPad.equals("NOTSET") && !autoPad.equals("VALID")) {
            throw format(where, "auto_pad " + p(autoPad) + " is not supported (give explicit pads)");
        }
        int[] pads = attrInts(node, where, "pads", new int[]{0, 0, 0, 0}, 0);
        if (autoPad.equals("VALID")) {
            pads = new int[]{0, 0, 0, 0};
        }
        if (pads.length != 4 || pads[0] != pads[2] || pads[1] != pads[3]) {
            throw format(where, "pads " + Arrays.toString(pads) + ": Kiln pads both sides of each dimension alike"
                    + " ([h, w, h, w])");
        }
        return new int[]{pads[0], pads[1]};
    }

    private KilnFormatException format(String where, String problem) {
        return new KilnFormatException(source, where + ": " + problem);
    }

    private static String p(String s) {
        return OnnxReader.printable(s);
    }

    /** PyTorch's BatchNorm for any (N, C, *) input of rank 2 to 4, as ONNX's BatchNormalization takes. */
    static final class OnnxBatchNorm extends BatchNorm {
        OnnxBatchNorm(Device device, int numFeatures, float eps, float momentum) {
            super(device, numFeatures, eps, momentum, true, true);
        }

        @Override
        protected void checkInputDim(int[] shape) {
            if (shape.length < 2 || shape.length > 4) {
                throw new IllegalArgumentException(this + ": expected (N, C), (N, C, L) or (N, C, H, W) input, got shape "
                        + dev.kiln.core.Shapes.toString(shape));
            }
        }
    }
}
