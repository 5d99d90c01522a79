package dev.kiln.onnx;

import dev.kiln.core.Device;
import dev.kiln.core.Generator;
import dev.kiln.core.GradMode;
import dev.kiln.core.Kiln;
import dev.kiln.core.OpGraph;
import dev.kiln.core.Shapes;
import dev.kiln.core.Tensor;
import dev.kiln.core.TensorScope;
import dev.kiln.data.Normalization;
import dev.kiln.io.AtomicFiles;
import dev.kiln.models.Architecture;
import dev.kiln.nn.Module;
import dev.kiln.onnx.proto.OnnxProto;
import dev.kiln.onnx.proto.OnnxProto.TensorShapeProto;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * Writes a Kiln model as an ONNX model: opset 17, IR version 8, one float32 input {@code (batch, inputShape...)} with
 * a dynamic batch dimension named {@code batch}, one output, parameters and buffers as float32 initializers named as
 * in the state dict ({@code layer1.0.conv1.weight}), eval-mode batch norm as {@code BatchNormalization} or folded
 * into the convolution or linear layer before it, and Kiln's provenance in the model's metadata.
 *
 * <p>Any module graph exports, including a {@code forward} written as ordinary code (a residual block's add and
 * shortcut): the exporter runs the forward pass in eval mode with gradients recorded, at two batch sizes, and writes
 * the recorded dataflow ({@link OpGraph}) op by op. The model is left as it was (its training mode restored, its
 * weights untouched). An op with no ONNX form throws {@link OnnxExportException} naming the op and its shape.
 *
 * <pre>{@code
 * byte[] onnx = OnnxExporter.of(model, 1, 28, 28)
 *         .normalization(Normalization.MNIST)   // raw pixels in, normalised by the graph's first nodes
 *         .foldBatchNorm(true)
 *         .toBytes();
 * }</pre>
 */
public final class OnnxExporter {

    public static final int OPSET = 17;
    public static final int IR_VERSION = 8;
    /** The name of the input's first dimension. */
    public static final String BATCH = "batch";

    private static final int TRACE_BATCH = 2;
    private static final int TWIN_BATCH = 3;

    private final Module model;
    private final int[] inputShape;
    private Normalization normalization = Normalization.NONE;
    private boolean foldBatchNorm;
    private String modelName;
    private String docString = "";
    private String inputName = "input";
    private String outputName = "output";
    private String sourceSha256;
    private String sourceName;
    private final Map<String, String> metadata = new LinkedHashMap<>();

    private OnnxExporter(Module model, int[] inputShape) {
        this.model = Objects.requireNonNull(model, "model");
        if (inputShape.length == 0) {
            throw new IllegalArgumentException("input shape without the batch dimension is empty; e.g. 1, 28, 28 for"
                    + " MNIST images");
        }
        for (int d : inputShape) {
            if (d < 1) {
                throw new IllegalArgumentException("input shape " + Shapes.toString(inputShape) + " has a dimension < 1");
            }
        }
        this.inputShape = inputShape.clone();
        this.modelName = Architecture.of(model).map(Architecture::name).orElse(model.getClass().getSimpleName());
    }

    /** An exporter for {@code model}, whose input is {@code (N, inputShape...)}. */
    public static OnnxExporter of(Module model, int... inputShape) {
        return new OnnxExporter(model, inputShape);
    }

    /**
     * Bakes {@code (x * scale - mean) / std} into the graph as its first nodes (Mul, Sub, Div, in Kiln's order of float
     * operations), so the ONNX model takes raw values (e.g. pixel bytes as floats 0..255) as Kiln's
     * {@code Predictor} does. {@link Normalization#NONE} (the default) adds nothing.
     */
    public OnnxExporter normalization(Normalization normalization) {
        this.normalization = Objects.requireNonNull(normalization, "normalization");
        return this;
    }

    /**
     * Folds each eval-mode batch norm whose only input is a convolution or linear layer's output (read by nothing
     * else) into that layer's weights, computed in double; other batch norms stay {@code BatchNormalization}.
     */
    public OnnxExporter foldBatchNorm(boolean fold) {
        this.foldBatchNorm = fold;
        return this;
    }

    /** The graph's name (default: the architecture's name, else the module's class name). */
    public OnnxExporter modelName(String name) {
        this.modelName = Objects.requireNonNull(name, "name");
        return this;
    }

    public OnnxExporter docString(String doc) {
        this.docString = Objects.requireNonNull(doc, "doc");
        return this;
    }

    public OnnxExporter inputName(String name) {
        this.inputName = requireName(name);
        return this;
    }

    public OnnxExporter outputName(String name) {
        this.outputName = requireName(name);
        return this;
    }

    /** Records the SHA-256 and file name of the file the model was read from in the metadata. */
    public OnnxExporter sourceFile(Path file) throws IOException {
        MessageDigest digest = sha256();
        try (InputStream in = Files.newInputStream(file)) {
            byte[] buf = new byte[1 << 16];
            for (int n; (n = in.read(buf)) > 0; ) {
                digest.update(buf, 0, n);
            }
        }
        this.sourceSha256 = HexFormat.of().formatHex(digest.digest());
        this.sourceName = file.getFileName() == null ? file.toString() : file.getFileName().toString();
        return this;
    }

    /** An extra metadata entry (the {@code kiln.} keys are the exporter's own). */
    public OnnxExporter metadata(String key, String value) {
        Objects.requireNonNull(key, "key");
        Objects.requireNonNull(value, "value");
        if (key.startsWith("kiln.")) {
            throw new IllegalArgumentException("metadata key " + key + ": keys starting with 'kiln.' are the exporter's");
        }
        metadata.put(key, value);
        return this;
    }

    /** The ONNX model as bytes (a serialised {@code ModelProto}). */
    public byte[] toBytes() {
        return toModel().toByteArray();
    }

    /** Writes the model to {@code file} atomically: a reader sees the old file or the whole new one. */
    public void write(Path file) throws IOException {
        byte[] bytes = toBytes();
        AtomicFiles.write(file, out -> out.write(bytes));
    }

    /** The ONNX model. */
    public OnnxProto.ModelProto toModel() {
        OnnxProto.GraphProto graph = traceAndWrite();
        OnnxProto.ModelProto.Builder m = OnnxProto.ModelProto.newBuilder()
                .setIrVersion(IR_VERSION)
                .addOpsetImport(OnnxProto.OperatorSetIdProto.newBuilder().setDomain("").setVersion(OPSET))
                .setProducerName("Kiln")
                .setProducerVersion(Kiln.version())
                .setDomain("dev.kiln")
                .setModelVersion(1)
                .setDocString(docString)
                .setGraph(graph);
        Map<String, String> props = new LinkedHashMap<>();
        props.put("kiln.version", Kiln.version());
        props.put("kiln.producer", "dev.kiln.onnx.OnnxExporter");
        Architecture.of(model).ifPresent(a -> props.put("kiln.architecture", a.name()));
        props.put("kiln.input_shape", Shapes.toString(inputShape));
        props.put("kiln.batch_norm", foldBatchNorm ? "folded where it follows a convolution or linear layer"
                : "BatchNormalization");
        props.put("kiln.normalization", normalization.isIdentity() ? "none"
                : "(x * " + normalization.scale() + " - " + normalization.mean() + ") / " + normalization.std());
        if (sourceSha256 != null) {
            props.put("kiln.source.file", sourceName);
            props.put("kiln.source.sha256", sourceSha256);
        }
        props.putAll(metadata);
        props.forEach((k, v) -> m.addMetadataProps(OnnxProto.StringStringEntryProto.newBuilder().setKey(k).setValue(v)));
        return m.build();
    }

    // ------------------------------------------------------------------ tracing

    private OnnxProto.GraphProto traceAndWrite() {
        Map<Module, Boolean> modes = new IdentityHashMap<>();
        List<Module> order = new ArrayList<>(model.namedModules().values());
        for (Module m : order) {
            modes.put(m, m.isTraining());
        }
        Device device = deviceOf(model);
        model.eval();
        try (TensorScope scope = TensorScope.open(); GradMode grad = GradMode.enableGrad()) {
            Generator gen = new Generator(17);
            Tensor inA = traceInput(device, gen, TRACE_BATCH);
            Tensor outA = forward(inA, TRACE_BATCH);
            Tensor inB = traceInput(device, gen, TWIN_BATCH);
            Tensor outB = forward(inB, TWIN_BATCH);
            return write(inA, outA, inB, outB);
        } finally {
            for (Module m : order) { // parents first: a child's own mode is set after its parent's
                m.train(modes.get(m));
            }
        }
    }

    private Tensor traceInput(Device device, Generator gen, int batch) {
        int[] shape = new int[inputShape.length + 1];
        shape[0] = batch;
        System.arraycopy(inputShape, 0, shape, 1, inputShape.length);
        return Tensor.uniform(device, gen, -1f, 1f, shape).requiresGrad(true);
    }

    private Tensor forward(Tensor input, int batch) {
        try {
            return model.forward(input);
        } catch (OnnxExportException e) {
            throw e;
        } catch (RuntimeException e) {
            throw new OnnxExportException("(forward)", input.shape(), "the model's forward pass failed on an input"
                    + " of shape " + Shapes.toString(input.shape()) + " (batch " + batch + "): " + e.getMessage(), e);
        }
    }

    private static Device deviceOf(Module model) {
        for (Tensor p : model.parameters()) {
            return p.device();
        }
        for (Tensor b : model.namedBuffers().values()) {
            return b.device();
        }
        return Device.cpu();
    }

    private OnnxProto.GraphProto write(Tensor inA, Tensor outA, Tensor inB, Tensor outB) {
        List<Tensor> a = OpGraph.topologicalOrder(outA);
        List<Tensor> b = OpGraph.topologicalOrder(outB);
        Map<Tensor, Tensor> twin = new IdentityHashMap<>();
        if (a.size() != b.size()) {
            throw new OnnxExportException(String.valueOf(outA.op()), outA.shape(), "the forward pass is not one graph:"
                    + " " + a.size() + " tensors at batch " + TRACE_BATCH + ", " + b.size() + " at batch " + TWIN_BATCH);
        }
        for (int i = 0; i < a.size(); i++) {
            Tensor ta = a.get(i);
            Tensor tb = b.get(i);
            if (!Objects.equals(ta.op(), tb.op()) || ta.dim() != tb.dim()
                    || OpGraph.inputs(ta).size() != OpGraph.inputs(tb).size()) {
                throw new OnnxExportException(String.valueOf(ta.op()), ta.shape(), "the forward pass is not one graph:"
                        + " at batch " + TWIN_BATCH + " the same step is op '" + tb.op() + "' of shape "
                        + Shapes.toString(tb.shape()));
            }
            twin.put(ta, tb);
        }
        Map<Tensor, String> parameterNames = new IdentityHashMap<>();
        Map<Tensor, Module> owners = new IdentityHashMap<>();
        for (Map.Entry<String, Module> e : model.namedModules().entrySet()) {
            String prefix = e.getKey().isEmpty() ? "" : e.getKey() + ".";
            for (Map.Entry<String, Tensor> p : directTensors(e.getValue()).entrySet()) {
                parameterNames.putIfAbsent(p.getValue(), prefix + p.getKey());
                owners.putIfAbsent(p.getValue(), e.getValue());
            }
        }
        Map<Tensor, List<Tensor>> readers = new IdentityHashMap<>();
        Map<Tensor, Integer> uses = new IdentityHashMap<>();
        readers.computeIfAbsent(outA, k -> new ArrayList<>()).add(null);
        for (Tensor t : a) {
            for (Tensor in : OpGraph.inputs(t)) {
                if (in != null) {
                    readers.computeIfAbsent(in, k -> new ArrayList<>()).add(t);
                    uses.merge(in, 1, Integer::sum);
                }
            }
            for (Object v : OpGraph.attributes(t).values()) {
                if (v instanceof Tensor p) {
                    uses.merge(p, 1, Integer::sum);
                }
            }
        }

        OnnxProto.GraphProto.Builder g = OnnxProto.GraphProto.newBuilder().setName(modelName);
        GraphWriter w = new GraphWriter(model, g, twin, parameterNames, owners, readers, uses, foldBatchNorm);
        twin.put(inA, inB);
        w.bind(inA, normalizedInput(w));
        for (Tensor t : a) {
            if (t == inA || OpGraph.inputs(t).isEmpty()) {
                continue; // the input, or a parameter, buffer or constant: an initializer when first read
            }
            if (w.isSkipped(t)) { // a batch norm folded into the layer before it
                OnnxOps.Mapping remainder = OnnxOps.remainderWhenFolded(t.op());
                if (remainder == null) {
                    w.alias(t, w.name(OpGraph.inputs(t).get(0)));
                } else {
                    String out = t == outA ? outputName : w.fresh(t.op());
                    w.begin(t, out);
                    remainder.write(w, t);
                    w.bind(t, out);
                }
                continue;
            }
            OnnxOps.Mapping mapping = OnnxOps.mapping(t.op());
            if (mapping == null) {
                throw new OnnxExportException(t.op(), t.shape(), "no ONNX mapping for this op (the exporter maps "
                        + String.join(", ", OnnxOps.table().keySet()) + ")");
            }
            String out = t == outA ? outputName : w.fresh(t.op());
            w.begin(t, out);
            mapping.write(w, t);
            if (!w.isAbsorbed(t)) {
                w.bind(t, out);
            }
        }
        w.begin(null, outputName);
        String result = w.name(outA);
        if (!result.equals(outputName)) {
            w.node("Identity", outputName, result);
        }
        g.addInput(valueInfo(inputName, inA, w));
        g.addOutput(valueInfo(outputName, outA, w));
        return g.build();
    }

    /** The graph input, and the normalisation nodes after it; returns the value the model's forward reads. */
    private String normalizedInput(GraphWriter w) {
        String x = inputName;
        w.fresh(inputName);
        w.fresh(outputName);
        if (normalization.scale() != 1f) {
            String y = w.fresh("input_scaled");
            w.node("Mul", y, x, w.scalar("normalization_scale", normalization.scale()));
            x = y;
        }
        if (normalization.mean() != 0f) {
            String y = w.fresh("input_centered");
            w.node("Sub", y, x, w.scalar("normalization_mean", normalization.mean()));
            x = y;
        }
        if (normalization.std() != 1f) {
            String y = w.fresh("input_normalized");
            w.node("Div", y, x, w.scalar("normalization_std", normalization.std()));
            x = y;
        }
        return x;
    }

    private static OnnxProto.ValueInfoProto valueInfo(String name, Tensor t, GraphWriter w) {
        boolean[] batch = w.batchDims(t);
        TensorShapeProto.Builder shape = TensorShapeProto.newBuilder();
        int[] s = t.shape();
        for (int i = 0; i < s.length; i++) {
            shape.addDim(batch[i] ? TensorShapeProto.Dimension.newBuilder().setDimParam(BATCH)
                    : TensorShapeProto.Dimension.newBuilder().setDimValue(s[i]));
        }
        return OnnxProto.ValueInfoProto.newBuilder()
                .setName(name)
                .setType(OnnxProto.TypeProto.newBuilder().setTensorType(OnnxProto.TypeProto.Tensor.newBuilder()
                        .setElemType(OnnxProto.TensorProto.DataType.FLOAT_VALUE)
                        .setShape(shape)))
                .build();
    }

    /** A module's own parameters and buffers (not its children's), by their short names. */
    private static Map<String, Tensor> directTensors(Module m) {
        Map<String, Tensor> own = new LinkedHashMap<>();
        Map<String, Tensor> all = new LinkedHashMap<>(m.namedParameters());
        all.putAll(m.namedBuffers());
        for (Map.Entry<String, Tensor> e : all.entrySet()) {
            if (!e.getKey().contains(".")) {
                own.put(e.getKey(), e.getValue());
            }
        }
        return own;
    }

    private static String requireName(String name) {
        if (name == null || name.isEmpty()) {
            throw new IllegalArgumentException("a value name must not be empty");
        }
        return name;
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is part of every Java platform", e);
        }
    }
}
