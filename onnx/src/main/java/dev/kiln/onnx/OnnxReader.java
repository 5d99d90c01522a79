package dev.kiln.onnx;

import com.google.protobuf.CodedInputStream;
import com.google.protobuf.Descriptors;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.WireFormat;
import dev.kiln.io.KilnFormatException;
import dev.kiln.onnx.proto.OnnxProto.AttributeProto;
import dev.kiln.onnx.proto.OnnxProto.GraphProto;
import dev.kiln.onnx.proto.OnnxProto.ModelProto;
import dev.kiln.onnx.proto.OnnxProto.NodeProto;
import dev.kiln.onnx.proto.OnnxProto.OperatorSetIdProto;
import dev.kiln.onnx.proto.OnnxProto.TensorProto;
import dev.kiln.onnx.proto.OnnxProto.TensorShapeProto;
import dev.kiln.onnx.proto.OnnxProto.ValueInfoProto;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.PriorityQueue;
import java.util.Set;

/**
 * Reads ONNX model bytes into a checked {@link OnnxGraph}, refusing with {@link KilnFormatException} anything it cannot
 * vouch for: before the protobuf is built, a scan of the wire format counts its messages and repeated values against
 * {@link Onnx}'s limits (so a small hostile file cannot make a large object tree); then the opset, the graph, every
 * initializer's size against its dims and type, names that are produced twice or never, and cycles.
 */
final class OnnxReader {

    private OnnxReader() {
    }

    /** A checked graph: nodes in an order where every input is produced before it is read. */
    record OnnxGraph(String source, ModelProto model, int opset, List<NodeProto> nodes,
                     Map<String, HostArray> initializers, List<ValueInfoProto> inputs, List<String> outputs) {
    }

    static OnnxGraph read(byte[] bytes, String source) throws KilnFormatException {
        if (bytes.length > Onnx.MAX_MODEL_BYTES) {
            throw new KilnFormatException(source, bytes.length + " bytes, more than the " + Onnx.MAX_MODEL_BYTES
                    + " an ONNX model may have here (Onnx.MAX_MODEL_BYTES)");
        }
        scan(bytes, source);
        ModelProto model;
        try {
            CodedInputStream in = CodedInputStream.newInstance(bytes);
            in.setRecursionLimit(Onnx.MAX_NESTING + 4);
            model = ModelProto.parseFrom(in);
        } catch (InvalidProtocolBufferException e) {
            throw new KilnFormatException(source, "not an ONNX model (protobuf): " + e.getMessage(), e);
        } catch (IOException e) {
            throw new KilnFormatException(source, "not an ONNX model (protobuf): " + e.getMessage(), e);
        }
        return check(model, source);
    }

    // ------------------------------------------------------------------ wire-format scan

    /** Counts messages and repeated values as the parser would build them, without building anything. */
    private static void scan(byte[] bytes, String source) throws KilnFormatException {
        long[] counts = new long[2];
        try {
            CodedInputStream in = CodedInputStream.newInstance(bytes);
            scanMessage(in, ModelProto.getDescriptor(), 1, counts, source);
        } catch (InvalidProtocolBufferException e) {
            throw new KilnFormatException(source, "not an ONNX model (protobuf): " + e.getMessage(), e);
        } catch (KilnFormatException e) {
            throw e;
        } catch (IOException e) {
            throw new KilnFormatException(source, "not an ONNX model (protobuf): " + e.getMessage(), e);
        }
    }

    private static void scanMessage(CodedInputStream in, Descriptors.Descriptor type, int depth, long[] counts,
                                    String source) throws IOException {
        if (depth > Onnx.MAX_NESTING) {
            throw new KilnFormatException(source, "messages nested more than " + Onnx.MAX_NESTING + " deep (at "
                    + type.getName() + "; Onnx.MAX_NESTING)");
        }
        while (true) {
            int tag = in.readTag();
            if (tag == 0) {
                return;
            }
            int wireType = WireFormat.getTagWireType(tag);
            if (wireType == WireFormat.WIRETYPE_START_GROUP || wireType == WireFormat.WIRETYPE_END_GROUP) {
                throw new KilnFormatException(source, "protobuf group in " + type.getName() + " (field "
                        + WireFormat.getTagFieldNumber(tag) + "), which ONNX never uses");
            }
            Descriptors.FieldDescriptor field = type.findFieldByNumber(WireFormat.getTagFieldNumber(tag));
            if (field != null && wireType == WireFormat.WIRETYPE_LENGTH_DELIMITED
                    && field.getJavaType() == Descriptors.FieldDescriptor.JavaType.MESSAGE) {
                count(counts, 0, 1, Onnx.MAX_MESSAGES, "messages", "Onnx.MAX_MESSAGES", source);
                int length = in.readRawVarint32();
                if (length < 0) {
                    throw new KilnFormatException(source, "negative length " + length + " in " + type.getName());
                }
                int old = in.pushLimit(length);
                scanMessage(in, field.getMessageType(), depth + 1, counts, source);
                in.popLimit(old);
            } else if (field != null && field.isRepeated() && wireType == WireFormat.WIRETYPE_LENGTH_DELIMITED
                    && field.getJavaType() != Descriptors.FieldDescriptor.JavaType.STRING
                    && field.getJavaType() != Descriptors.FieldDescriptor.JavaType.BYTE_STRING) {
                // packed numbers: at most one value per byte
                int length = in.readRawVarint32();
                if (length < 0) {
                    throw new KilnFormatException(source, "negative length " + length + " in " + type.getName());
                }
                count(counts, 1, length, Onnx.MAX_REPEATED_VALUES, "repeated values", "Onnx.MAX_REPEATED_VALUES", source);
                in.skipRawBytes(length);
            } else {
                if (field != null && field.isRepeated()) {
                    count(counts, 1, 1, Onnx.MAX_REPEATED_VALUES, "repeated values", "Onnx.MAX_REPEATED_VALUES", source);
                }
                in.skipField(tag);
            }
        }
    }

    private static void count(long[] counts, int which, long n, long max, String what, String constant, String source)
            throws KilnFormatException {
        counts[which] += n;
        if (counts[which] > max) {
            throw new KilnFormatException(source, "more than " + max + " " + what + " (" + constant + ")");
        }
    }

    // ------------------------------------------------------------------ model checks

    private static OnnxGraph check(ModelProto model, String source) throws KilnFormatException {
        if (!model.hasGraph()) {
            throw new KilnFormatException(source, "the model holds no graph");
        }
        if (model.getIrVersion() < Onnx.MIN_IR_VERSION || model.getIrVersion() > Onnx.MAX_IR_VERSION) {
            throw new KilnFormatException(source, "IR version " + model.getIrVersion() + ": Kiln reads IR versions "
                    + Onnx.MIN_IR_VERSION + " to " + Onnx.MAX_IR_VERSION);
        }
        int opset = -1;
        for (OperatorSetIdProto id : model.getOpsetImportList()) {
            if (id.getDomain().isEmpty() || id.getDomain().equals("ai.onnx")) {
                if (opset != -1) {
                    throw new KilnFormatException(source, "the default operator set is imported twice");
                }
                if (id.getVersion() < Onnx.MIN_OPSET || id.getVersion() > Onnx.MAX_OPSET) {
                    throw new KilnFormatException(source, "opset " + id.getVersion() + ": Kiln reads opsets "
                            + Onnx.MIN_OPSET + " to " + Onnx.MAX_OPSET);
                }
                opset = (int) id.getVersion();
            }
        }
        if (opset == -1) {
            throw new KilnFormatException(source, "the model imports no version of the default (ai.onnx) operator set");
        }
        GraphProto g = model.getGraph();
        if (g.getNodeCount() > Onnx.MAX_NODES) {
            throw new KilnFormatException(source, g.getNodeCount() + " nodes, more than " + Onnx.MAX_NODES + " (Onnx.MAX_NODES)");
        }
        if (g.getInitializerCount() > Onnx.MAX_INITIALIZERS) {
            throw new KilnFormatException(source, g.getInitializerCount() + " initializers, more than "
                    + Onnx.MAX_INITIALIZERS + " (Onnx.MAX_INITIALIZERS)");
        }
        if (g.getSparseInitializerCount() > 0) {
            throw new KilnFormatException(source, "sparse initializer '" + printable(g.getSparseInitializer(0).getValues().getName())
                    + "': sparse tensors are not supported");
        }
        Map<String, HostArray> initializers = new LinkedHashMap<>();
        for (TensorProto t : g.getInitializerList()) {
            String name = t.getName();
            if (name.isEmpty()) {
                throw new KilnFormatException(source, "an initializer has no name");
            }
            if (initializers.containsKey(name)) {
                throw new KilnFormatException(source, "initializer '" + printable(name) + "' is defined twice");
            }
            initializers.put(name, tensor(t, "initializer '" + printable(name) + "'", source));
        }
        Set<String> produced = new HashSet<>(initializers.keySet());
        List<ValueInfoProto> inputs = new ArrayList<>();
        for (ValueInfoProto in : g.getInputList()) {
            if (initializers.containsKey(in.getName())) {
                continue; // an initializer listed as an input too (IR < 4): a constant here
            }
            if (in.getName().isEmpty()) {
                throw new KilnFormatException(source, "a graph input has no name");
            }
            if (!produced.add(in.getName())) {
                throw new KilnFormatException(source, "graph input '" + printable(in.getName()) + "' is declared twice");
            }
            checkInputType(in, source);
            inputs.add(in);
        }
        if (inputs.isEmpty()) {
            throw new KilnFormatException(source, "the graph has no input other than initializers");
        }
        List<NodeProto> nodes = order(g, produced, source);
        List<String> outputs = new ArrayList<>();
        Set<String> seenOutputs = new HashSet<>();
        for (ValueInfoProto out : g.getOutputList()) {
            if (!produced.contains(out.getName())) {
                throw new KilnFormatException(source, "graph output '" + printable(out.getName())
                        + "' is produced by no node, input or initializer");
            }
            if (!seenOutputs.add(out.getName())) {
                throw new KilnFormatException(source, "graph output '" + printable(out.getName()) + "' is listed twice");
            }
            outputs.add(out.getName());
        }
        if (outputs.isEmpty()) {
            throw new KilnFormatException(source, "the graph has no output");
        }
        return new OnnxGraph(source, model, opset, nodes, initializers, inputs, outputs);
    }

    private static void checkInputType(ValueInfoProto in, String source) throws KilnFormatException {
        String what = "graph input '" + printable(in.getName()) + "'";
        if (!in.hasType() || !in.getType().hasTensorType()) {
            throw new KilnFormatException(source, what + " is not declared as a tensor");
        }
        int type = in.getType().getTensorType().getElemType();
        if (type != TensorProto.DataType.FLOAT_VALUE) {
            throw new KilnFormatException(source, what + " has element type " + typeName(type) + "; Kiln's inputs are float32");
        }
        if (in.getType().getTensorType().hasShape()) {
            TensorShapeProto shape = in.getType().getTensorType().getShape();
            if (shape.getDimCount() > Onnx.MAX_RANK) {
                throw new KilnFormatException(source, what + " has rank " + shape.getDimCount() + ", more than "
                        + Onnx.MAX_RANK + " (Onnx.MAX_RANK)");
            }
            for (TensorShapeProto.Dimension d : shape.getDimList()) {
                if (d.hasDimValue() && (d.getDimValue() < 0 || d.getDimValue() > Integer.MAX_VALUE)) {
                    throw new KilnFormatException(source, what + " has dimension " + d.getDimValue());
                }
            }
        }
    }

    /**
     * The nodes in dependency order (Kahn's algorithm, stable: nodes already in order stay so). Each output is
     * produced once; every input is a graph input, an initializer or another node's output; leftover nodes are a
     * cycle.
     */
    private static List<NodeProto> order(GraphProto g, Set<String> produced, String source) throws KilnFormatException {
        int n = g.getNodeCount();
        Map<String, Integer> producer = new HashMap<>();
        for (int i = 0; i < n; i++) {
            NodeProto node = g.getNode(i);
            if (node.getOpType().isEmpty()) {
                throw new KilnFormatException(source, describe(node, i) + " has no op_type");
            }
            for (String out : node.getOutputList()) {
                if (out.isEmpty()) {
                    continue; // an optional output left out
                }
                if (produced.contains(out) || producer.containsKey(out)) {
                    throw new KilnFormatException(source, describe(node, i) + ": output '" + printable(out)
                            + "' is already produced by " + (producer.containsKey(out)
                            ? describe(g.getNode(producer.get(out)), producer.get(out)) : "a graph input or initializer"));
                }
                producer.put(out, i);
            }
        }
        int[] waiting = new int[n];
        List<List<Integer>> readers = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            readers.add(new ArrayList<>());
        }
        for (int i = 0; i < n; i++) {
            NodeProto node = g.getNode(i);
            for (String in : node.getInputList()) {
                if (in.isEmpty() || produced.contains(in)) {
                    continue;
                }
                Integer from = producer.get(in);
                if (from == null) {
                    throw new KilnFormatException(source, describe(node, i) + ": input '" + printable(in)
                            + "' is produced by no node, graph input or initializer");
                }
                waiting[i]++;
                readers.get(from).add(i);
            }
        }
        // lowest index first, so a file already in order keeps its order
        PriorityQueue<Integer> queue = new PriorityQueue<>();
        for (int i = 0; i < n; i++) {
            if (waiting[i] == 0) {
                queue.add(i);
            }
        }
        List<NodeProto> ordered = new ArrayList<>(n);
        while (!queue.isEmpty()) {
            int i = queue.poll();
            ordered.add(g.getNode(i));
            for (int r : readers.get(i)) {
                if (--waiting[r] == 0) {
                    queue.add(r);
                }
            }
        }
        if (ordered.size() < n) {
            List<String> stuck = new ArrayList<>();
            for (int i = 0; i < n && stuck.size() < 5; i++) {
                if (waiting[i] > 0) {
                    stuck.add(describe(g.getNode(i), i));
                }
            }
            throw new KilnFormatException(source, "the graph has a cycle through " + (n - ordered.size()) + " nodes, e.g. "
                    + String.join(", ", stuck));
        }
        for (NodeProto node : ordered) {
            for (String out : node.getOutputList()) {
                if (!out.isEmpty()) {
                    produced.add(out);
                }
            }
        }
        return ordered;
    }

    // ------------------------------------------------------------------ tensors

    /** A tensor's values, after checking its type, dims and stored size; refuses external and segmented data. */
    static HostArray tensor(TensorProto t, String what, String source) throws KilnFormatException {
        if (t.getDataLocation() == TensorProto.DataLocation.EXTERNAL || t.getExternalDataCount() > 0) {
            String location = "";
            for (var e : t.getExternalDataList()) {
                if (e.getKey().equals("location")) {
                    location = " (location '" + printable(e.getValue()) + "')";
                }
            }
            throw new KilnFormatException(source, what + ": external data" + location + " is not supported; Kiln reads"
                    + " models whose tensors are stored in the .onnx file (onnx.save_model without save_as_external_data)");
        }
        if (t.hasSegment()) {
            throw new KilnFormatException(source, what + ": segmented tensors are not supported");
        }
        if (t.getDimsCount() > Onnx.MAX_RANK) {
            throw new KilnFormatException(source, what + " has rank " + t.getDimsCount() + ", more than " + Onnx.MAX_RANK
                    + " (Onnx.MAX_RANK)");
        }
        int[] shape = new int[t.getDimsCount()];
        long numel = 1;
        for (int i = 0; i < shape.length; i++) {
            long d = t.getDims(i);
            if (d < 0 || d > Integer.MAX_VALUE) {
                throw new KilnFormatException(source, what + " has dimension " + d + " in dims " + t.getDimsList());
            }
            shape[i] = (int) d;
            numel *= d;
            if (numel > Onnx.MAX_TENSOR_ELEMENTS) {
                throw new KilnFormatException(source, what + ": dims " + t.getDimsList() + " hold more than "
                        + Onnx.MAX_TENSOR_ELEMENTS + " values (Onnx.MAX_TENSOR_ELEMENTS)");
            }
        }
        int count = (int) numel;
        int type = t.getDataType();
        int elementBytes = switch (type) {
            case TensorProto.DataType.FLOAT_VALUE, TensorProto.DataType.INT32_VALUE -> 4;
            case TensorProto.DataType.INT64_VALUE -> 8;
            case TensorProto.DataType.BOOL_VALUE -> 1;
            default -> throw new KilnFormatException(source, what + " has data type " + typeName(type)
                    + "; Kiln reads float32 tensors, and int64, int32 and bool for shapes and indices");
        };
        if (t.hasRawData()) {
            long expected = (long) count * elementBytes;
            if (t.getRawData().size() != expected) {
                throw new KilnFormatException(source, what + ": raw_data holds " + t.getRawData().size() + " bytes, dims "
                        + t.getDimsList() + " of " + typeName(type) + " need " + expected);
            }
            ByteBuffer b = t.getRawData().asReadOnlyByteBuffer().slice().order(ByteOrder.LITTLE_ENDIAN);
            switch (type) {
                case TensorProto.DataType.FLOAT_VALUE -> {
                    float[] out = new float[count];
                    b.asFloatBuffer().get(out);
                    return HostArray.floats(out, shape);
                }
                case TensorProto.DataType.INT64_VALUE -> {
                    long[] out = new long[count];
                    b.asLongBuffer().get(out);
                    return HostArray.longs(out, shape);
                }
                case TensorProto.DataType.INT32_VALUE -> {
                    long[] out = new long[count];
                    for (int i = 0; i < count; i++) {
                        out[i] = b.getInt(4 * i);
                    }
                    return HostArray.longs(out, shape);
                }
                default -> {
                    long[] out = new long[count];
                    for (int i = 0; i < count; i++) {
                        out[i] = b.get(i) != 0 ? 1 : 0;
                    }
                    return HostArray.longs(out, shape);
                }
            }
        }
        int stored = switch (type) {
            case TensorProto.DataType.FLOAT_VALUE -> t.getFloatDataCount();
            case TensorProto.DataType.INT64_VALUE -> t.getInt64DataCount();
            default -> t.getInt32DataCount();
        };
        if (stored != count) {
            throw new KilnFormatException(source, what + " holds " + stored + " values, dims " + t.getDimsList()
                    + " need " + count);
        }
        if (type == TensorProto.DataType.FLOAT_VALUE) {
            float[] out = new float[count];
            for (int i = 0; i < count; i++) {
                out[i] = t.getFloatData(i);
            }
            return HostArray.floats(out, shape);
        }
        long[] out = new long[count];
        for (int i = 0; i < count; i++) {
            out[i] = type == TensorProto.DataType.INT64_VALUE ? t.getInt64Data(i)
                    : type == TensorProto.DataType.BOOL_VALUE ? (t.getInt32Data(i) != 0 ? 1 : 0) : t.getInt32Data(i);
        }
        return HostArray.longs(out, shape);
    }

    static String typeName(int type) {
        TensorProto.DataType d = TensorProto.DataType.forNumber(type);
        return d == null ? "unknown (" + type + ")" : d.name().toLowerCase(java.util.Locale.ROOT);
    }

    /** How messages name a node: its name and op type, or its position when it has no name. */
    static String describe(NodeProto node, int index) {
        String op = printable(node.getDomain().isEmpty() || node.getDomain().equals("ai.onnx")
                ? node.getOpType() : node.getDomain() + ":" + node.getOpType());
        return node.getName().isEmpty() ? "node #" + index + " (" + op + ")"
                : "node '" + printable(node.getName()) + "' (" + op + ")";
    }

    static String printable(String fromFile) {
        return KilnFormatException.printable(fromFile);
    }

    /** The attribute named {@code name}, or null. */
    static AttributeProto attribute(NodeProto node, String name) {
        for (AttributeProto a : node.getAttributeList()) {
            if (a.getName().equals(name)) {
                return a;
            }
        }
        return null;
    }
}
