package dev.kiln.onnx;

import dev.kiln.core.Shapes;
import dev.kiln.core.Tensor;
import dev.kiln.nn.AdaptiveAvgPool2d;
import dev.kiln.nn.AdaptiveMaxPool2d;
import dev.kiln.nn.Conv2d;
import dev.kiln.nn.Module;
import dev.kiln.onnx.proto.OnnxProto.NodeProto;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The table from Kiln ops (as {@link Tensor#op()} names them) to ONNX nodes. An entry writes as many nodes as the op
 * needs, ending in the value {@link GraphWriter#out()}: one Kiln op may be several ONNX nodes (a fused batch norm and
 * ReLU is {@code BatchNormalization} then {@code Relu}), and an entry may absorb the op after it (a batch norm folded
 * into its convolution) or before it (a sum and the scaling after it are one {@code ReduceMean}).
 */
final class OnnxOps {

    /** Writes the ONNX nodes of one traced op. */
    @FunctionalInterface
    interface Mapping {
        void write(GraphWriter w, Tensor t);
    }

    private static final Map<String, Mapping> TABLE = new LinkedHashMap<>();
    /**
     * Batch-norm ops that fold into the convolution or linear layer before them, with what remains of each once
     * folded (null: nothing, the output is the layer's).
     */
    private static final Map<String, Mapping> FOLDABLE = new LinkedHashMap<>();
    /** What each entry writes, for the documentation's op table and error messages. */
    private static final Map<String, String> NODES = new LinkedHashMap<>();

    static {
        register("conv2d", "Conv (with a folded batch norm: Conv on folded weights)", OnnxOps::conv);
        register("linear", "Gemm (transB = 1; with a folded batch norm: Gemm on folded weights)", OnnxOps::linear);
        register("batch_norm", "BatchNormalization (running statistics); batch statistics: ReduceMean, Sub, Mul,"
                + " Add, Sqrt, Div", OnnxOps::batchNorm);
        FOLDABLE.put("batch_norm", null);
        register("relu", "Relu", (w, t) -> unaryNode(w, t, "Relu"));
        register("sigmoid", "Sigmoid", (w, t) -> unaryNode(w, t, "Sigmoid"));
        register("tanh", "Tanh", (w, t) -> unaryNode(w, t, "Tanh"));
        register("identity", "Identity", (w, t) -> unaryNode(w, t, "Identity"));
        register("relu6", "Clip (0, 6)", (w, t) -> w.node("Clip", w.out(), w.name(input(t, 0)),
                w.scalar("clip_min", 0f), w.scalar("clip_max", 6f)));
        register("add", "Add", (w, t) -> elementwise(w, t, "Add"));
        register("sub", "Sub", (w, t) -> elementwise(w, t, "Sub"));
        register("mul", "Mul (a sum scaled by 1/count: ReduceMean)", OnnxOps::mul);
        register("div", "Div", (w, t) -> elementwise(w, t, "Div"));
        register("max", "Max", (w, t) -> elementwise(w, t, "Max"));
        register("min", "Min", (w, t) -> elementwise(w, t, "Min"));
        register("rsub", "Sub (constant - x)", (w, t) -> w.node("Sub", w.out(), constantOperand(w, t), w.name(input(t, 0))));
        register("pow", "Pow", (w, t) -> w.node("Pow", w.out(), w.name(input(t, 0)), constantOperand(w, t)));
        register("neg", "Neg", (w, t) -> unaryNode(w, t, "Neg"));
        register("exp", "Exp", (w, t) -> unaryNode(w, t, "Exp"));
        register("log", "Log", (w, t) -> unaryNode(w, t, "Log"));
        register("sqrt", "Sqrt", (w, t) -> unaryNode(w, t, "Sqrt"));
        register("abs", "Abs", (w, t) -> unaryNode(w, t, "Abs"));
        register("reciprocal", "Reciprocal", (w, t) -> unaryNode(w, t, "Reciprocal"));
        register("square", "Mul (x * x)", (w, t) -> {
            String x = w.name(input(t, 0));
            w.node("Mul", w.out(), x, x);
        });
        register("sum", "ReduceSum (and Reshape where a dimension of size 1 goes)", OnnxOps::sum);
        register("reshape", "Flatten (axis 1) or Reshape (the batch dimension as -1)", OnnxOps::reshape);
        register("broadcast_to", "Expand", OnnxOps::broadcastTo);
        register("matmul", "MatMul", (w, t) -> w.node("MatMul", w.out(), w.name(input(t, 0)), w.name(input(t, 1))));
        register("cat", "Concat", OnnxOps::cat);
        register("narrow", "Slice", OnnxOps::narrow);
        register("avg_pool2d", "AveragePool (count_include_pad = 1)", (w, t) -> pool(w, t, "AveragePool"));
        register("max_pool2d", "MaxPool", (w, t) -> pool(w, t, "MaxPool"));
        register("adaptive_avg_pool2d", "GlobalAveragePool for output (1, 1); AveragePool where the output size"
                + " divides the input size", (w, t) -> adaptivePool(w, t, "GlobalAveragePool", "AveragePool"));
        register("adaptive_max_pool2d", "GlobalMaxPool for output (1, 1); MaxPool where the output size divides the"
                + " input size", (w, t) -> adaptivePool(w, t, "GlobalMaxPool", "MaxPool"));
        register("upsample_nearest2d", "Resize (nearest, asymmetric, floor)", OnnxOps::upsample);
        register("softmax", "Softmax (axis 1)", (w, t) -> w.node("Softmax", w.out(), w.name(input(t, 0)))
                .addAttribute(GraphWriter.intAttr("axis", 1)));
        BUILT_IN = java.util.Set.copyOf(TABLE.keySet());
    }

    /** The ops this class maps itself (not those registered later). */
    private static final java.util.Set<String> BUILT_IN;

    private OnnxOps() {
    }

    /** Adds or replaces the entry for {@code op}; {@code nodes} says in words what it writes. */
    static void register(String op, String nodes, Mapping mapping) {
        TABLE.put(op, mapping);
        NODES.put(op, nodes);
    }

    /**
     * A fused op that is a batch norm then an activation (its inputs and recorded attributes as {@code batch_norm}'s:
     * x, -, -, weight, bias; eps, batch_stats, running_mean, running_var): BatchNormalization then the activation, or,
     * folded into the layer before it, the activation alone.
     */
    static void registerBatchNormThen(String op, String activationOpType) {
        register(op, "BatchNormalization, " + activationOpType, followedBy(OnnxOps::batchNorm, activationOpType));
        FOLDABLE.put(op, (w, t) -> w.node(activationOpType, w.out(), w.name(input(t, 0))));
    }

    /** A fused op that is a binary op then an activation (add + ReLU: inputs a, b): the two nodes. */
    static void registerBinaryThen(String op, String binaryOpType, String activationOpType) {
        register(op, binaryOpType + ", " + activationOpType,
                followedBy((w, t) -> elementwise(w, t, binaryOpType), activationOpType));
    }

    /** {@code first}'s nodes into an intermediate value, then {@code opType} of it as the op's output. */
    static Mapping followedBy(Mapping first, String opType) {
        return (w, t) -> {
            String out = w.out();
            String intermediate = w.fresh(out + "_before_" + opType.toLowerCase());
            w.begin(t, intermediate);
            first.write(w, t);
            w.begin(t, out);
            w.node(opType, out, intermediate);
        };
    }

    static Mapping mapping(String op) {
        return TABLE.get(op);
    }

    static boolean foldsIntoLayer(String op) {
        return FOLDABLE.containsKey(op);
    }

    /** What a folded batch-norm op still writes (null: nothing). */
    static Mapping remainderWhenFolded(String op) {
        return FOLDABLE.get(op);
    }

    static java.util.Set<String> builtIn() {
        return BUILT_IN;
    }

    /** Kiln op to the ONNX nodes it becomes, in words, in the table's order. */
    static Map<String, String> table() {
        return Collections.unmodifiableMap(NODES);
    }

    // ------------------------------------------------------------------ helpers

    private static Tensor input(Tensor t, int i) {
        List<Tensor> in = OnnxOps.inputs(t);
        if (i >= in.size() || in.get(i) == null) {
            throw new OnnxExportException(t.op(), t.shape(), "input " + i + " is missing");
        }
        return in.get(i);
    }

    private static List<Tensor> inputs(Tensor t) {
        return dev.kiln.core.OpGraph.inputs(t);
    }

    private static Tensor optionalInput(Tensor t, int i) {
        List<Tensor> in = inputs(t);
        return i < in.size() ? in.get(i) : null;
    }

    private static void unaryNode(GraphWriter w, Tensor t, String opType) {
        w.node(opType, w.out(), w.name(input(t, 0)));
    }

    private static int[] intPair(GraphWriter w, Tensor t, String key) {
        Object v = w.attributes(t).get(key);
        if (!(v instanceof int[] pair) || pair.length != 2) {
            throw w.unsupported(t, "the op recorded no " + key + " (an op made outside Kiln's functional ops?)");
        }
        return pair;
    }

    private static int intValue(GraphWriter w, Tensor t, String key) {
        Object v = w.attributes(t).get(key);
        if (!(v instanceof Integer i)) {
            throw w.unsupported(t, "the op recorded no " + key);
        }
        return i;
    }

    /** The scalar operand of a tensor-scalar op, which must not change with the batch size. */
    private static float scalarOperand(GraphWriter w, Tensor t) {
        Object a = w.attributes(t).get("scalar");
        Object b = w.attributes(w.twin(t)).get("scalar");
        if (!(a instanceof Float fa) || !(b instanceof Float fb)) {
            throw w.unsupported(t, "the op recorded no scalar operand");
        }
        if (Float.floatToIntBits(fa) != Float.floatToIntBits(fb)) {
            throw w.unsupported(t, "the scalar operand follows the batch size (" + fa + " at batch 2, " + fb
                    + " at batch 3), which a graph with a dynamic batch cannot hold as a constant");
        }
        return fa;
    }

    private static String constantOperand(GraphWriter w, Tensor t) {
        return w.scalar(t.op() + "_operand", scalarOperand(w, t));
    }

    /** Binary ops take two tensors; their tensor-scalar forms (same name) one tensor and a recorded scalar. */
    private static void elementwise(GraphWriter w, Tensor t, String opType) {
        List<Tensor> in = GraphWriter.nonNull(inputs(t));
        if (in.size() == 2) {
            w.node(opType, w.out(), w.name(in.get(0)), w.name(in.get(1)));
        } else {
            w.node(opType, w.out(), w.name(input(t, 0)), constantOperand(w, t));
        }
    }

    // ------------------------------------------------------------------ layers

    private static void conv(GraphWriter w, Tensor t) {
        Tensor x = input(t, 0);
        Tensor weight = input(t, 1);
        Tensor bias = optionalInput(t, 2);
        int[] stride;
        int[] padding;
        int[] dilation;
        int groups;
        if (w.attributes(t).containsKey("stride")) {
            stride = intPair(w, t, "stride");
            padding = intPair(w, t, "padding");
            dilation = intPair(w, t, "dilation");
            groups = intValue(w, t, "groups");
        } else if (w.owner(weight) instanceof Conv2d c) {
            stride = new int[]{c.strideH(), c.strideW()};
            padding = new int[]{c.padH(), c.padW()};
            dilation = new int[]{c.dilationH(), c.dilationW()};
            groups = c.groups();
        } else {
            throw w.unsupported(t, "a convolution whose geometry was not recorded and whose weight belongs to no Conv2d");
        }
        int[] ws = weight.shape();
        String[] wb = foldedOrPlain(w, t, weight, bias);
        NodeProto.Builder n = wb[1] == null ? w.node("Conv", w.out(), w.name(x), wb[0])
                : w.node("Conv", w.out(), w.name(x), wb[0], wb[1]);
        n.addAttribute(GraphWriter.ints("kernel_shape", ws[2], ws[3]))
                .addAttribute(GraphWriter.ints("strides", stride[0], stride[1]))
                .addAttribute(GraphWriter.ints("pads", padding[0], padding[1], padding[0], padding[1]))
                .addAttribute(GraphWriter.ints("dilations", dilation[0], dilation[1]))
                .addAttribute(GraphWriter.intAttr("group", groups));
    }

    private static void linear(GraphWriter w, Tensor t) {
        Tensor x = input(t, 0);
        Tensor weight = input(t, 1);
        Tensor bias = optionalInput(t, 2);
        String[] wb = foldedOrPlain(w, t, weight, bias);
        NodeProto.Builder n = wb[1] == null ? w.node("Gemm", w.out(), w.name(x), wb[0])
                : w.node("Gemm", w.out(), w.name(x), wb[0], wb[1]);
        n.addAttribute(GraphWriter.intAttr("transB", 1));
    }

    /**
     * The weight and bias value names of a convolution or linear layer: its own, or, when folding is on and the op's
     * only reader is an eval-mode batch norm over its channels (and neither layer is used elsewhere), new initializers
     * holding the folded values (computed in double), the batch norm then passing this op's output through.
     */
    private static String[] foldedOrPlain(GraphWriter w, Tensor t, Tensor weight, Tensor bias) {
        Tensor bn = foldableBatchNorm(w, t, weight, bias);
        if (bn == null) {
            return new String[]{w.name(weight), bias == null ? null : w.name(bias)};
        }
        Map<String, Object> a = w.attributes(bn);
        Tensor gamma = optionalInput(bn, 3);
        Tensor beta = optionalInput(bn, 4);
        float[] mean = ((Tensor) a.get("running_mean")).toArray();
        float[] var = ((Tensor) a.get("running_var")).toArray();
        float eps = (Float) a.get("eps");
        float[] g = gamma == null ? null : gamma.toArray();
        float[] bt = beta == null ? null : beta.toArray();
        float[] wv = weight.toArray();
        float[] bv = bias == null ? null : bias.toArray();
        int channels = weight.shape()[0];
        int per = wv.length / channels;
        float[] fw = new float[wv.length];
        float[] fb = new float[channels];
        for (int c = 0; c < channels; c++) {
            double s = (g == null ? 1.0 : g[c]) / Math.sqrt((double) var[c] + eps);
            for (int i = 0; i < per; i++) {
                fw[c * per + i] = (float) (wv[c * per + i] * s);
            }
            fb[c] = (float) (((bv == null ? 0.0 : bv[c]) - mean[c]) * s + (bt == null ? 0.0 : bt[c]));
        }
        String wName = w.parameterName(weight);
        String base = wName != null && wName.endsWith("weight") ? wName.substring(0, wName.length() - "weight".length())
                : t.op() + ".";
        w.skip(bn);
        return new String[]{w.initializer(w.fresh(base + "weight"), fw, weight.shape()),
                w.initializer(w.fresh(base + "bias"), fb, channels)};
    }

    private static Tensor foldableBatchNorm(GraphWriter w, Tensor t, Tensor weight, Tensor bias) {
        if (!w.foldBatchNorm()) {
            return null;
        }
        List<Tensor> readers = w.readers(t);
        if (readers.size() != 1 || readers.get(0) == null || !foldsIntoLayer(readers.get(0).op())) {
            return null;
        }
        Tensor bn = readers.get(0);
        Map<String, Object> a = w.attributes(bn);
        if (!Boolean.FALSE.equals(a.get("batch_stats")) || !(a.get("running_mean") instanceof Tensor mean)
                || mean.numel() != weight.shape()[0] || optionalInput(bn, 0) != t) {
            return null;
        }
        if (w.uses(weight) != 1 || (bias != null && w.uses(bias) != 1)) {
            return null;
        }
        for (int i = 3; i <= 4; i++) {
            Tensor p = optionalInput(bn, i);
            if (p != null && w.uses(p) != 1) {
                return null;
            }
        }
        return bn;
    }

    private static void batchNorm(GraphWriter w, Tensor t) {
        Map<String, Object> a = w.attributes(t);
        Tensor x = input(t, 0);
        Tensor gamma = optionalInput(t, 3);
        Tensor beta = optionalInput(t, 4);
        if (!(a.get("eps") instanceof Float eps) || !(a.get("batch_stats") instanceof Boolean batchStats)) {
            throw w.unsupported(t, "the batch norm recorded no eps and statistics mode");
        }
        int channels = x.shape()[1];
        String prefix = batchNormPrefix(w, t, gamma, a);
        if (!batchStats) {
            Tensor mean = (Tensor) a.get("running_mean");
            Tensor var = (Tensor) a.get("running_var");
            String scale = gamma != null ? w.name(gamma) : w.initializer(w.fresh(prefix + "weight"), filled(channels, 1f), channels);
            String shift = beta != null ? w.name(beta) : w.initializer(w.fresh(prefix + "bias"), filled(channels, 0f), channels);
            w.node("BatchNormalization", w.out(), w.name(x), scale, shift, w.name(mean), w.name(var))
                    .addAttribute(GraphWriter.floatAttr("epsilon", eps));
            return;
        }
        // eval mode without running statistics normalises with the batch's own (biased) statistics, as in training
        int rank = x.shape().length;
        long[] axes = new long[rank - 1];
        axes[0] = 0;
        for (int i = 2; i < rank; i++) {
            axes[i - 1] = i;
        }
        String in = w.name(x);
        String mean = w.fresh(w.out() + "_mean");
        w.node("ReduceMean", mean, in).addAttribute(GraphWriter.ints("axes", axes)).addAttribute(GraphWriter.intAttr("keepdims", 1));
        String centered = w.fresh(w.out() + "_centered");
        w.node("Sub", centered, in, mean);
        String squares = w.fresh(w.out() + "_squares");
        w.node("Mul", squares, centered, centered);
        String var = w.fresh(w.out() + "_var");
        w.node("ReduceMean", var, squares).addAttribute(GraphWriter.ints("axes", axes)).addAttribute(GraphWriter.intAttr("keepdims", 1));
        String shifted = w.fresh(w.out() + "_var_eps");
        w.node("Add", shifted, var, w.scalar(prefix + "eps", eps));
        String std = w.fresh(w.out() + "_std");
        w.node("Sqrt", std, shifted);
        boolean affine = gamma != null || beta != null;
        String normalised = affine ? w.fresh(w.out() + "_normalised") : w.out();
        w.node("Div", normalised, centered, std);
        if (!affine) {
            return;
        }
        int[] perChannel = new int[rank - 1];
        Arrays.fill(perChannel, 1);
        perChannel[0] = channels;
        String scaled = normalised;
        if (gamma != null) {
            scaled = beta == null ? w.out() : w.fresh(w.out() + "_scaled");
            String g = w.initializer(w.fresh(prefix + "weight_per_channel"), gamma.toArray(), perChannel);
            w.node("Mul", scaled, normalised, g);
        }
        if (beta != null) {
            String b = w.initializer(w.fresh(prefix + "bias_per_channel"), beta.toArray(), perChannel);
            w.node("Add", w.out(), scaled, b);
        }
    }

    private static String batchNormPrefix(GraphWriter w, Tensor t, Tensor gamma, Map<String, Object> a) {
        for (Object o : new Object[]{gamma, a.get("running_mean")}) {
            if (o instanceof Tensor p && w.parameterName(p) != null) {
                String n = w.parameterName(p);
                int dot = n.lastIndexOf('.');
                return dot < 0 ? "" : n.substring(0, dot + 1);
            }
        }
        return w.out() + ".";
    }

    private static float[] filled(int n, float v) {
        float[] a = new float[n];
        Arrays.fill(a, v);
        return a;
    }

    // ------------------------------------------------------------------ reductions and shapes

    /** A sum whose only reader scales it by 1 / (the number of values summed) at both batch sizes: a mean. */
    private static boolean isMeanSum(GraphWriter w, Tensor sum) {
        List<Tensor> readers = w.readers(sum);
        if (readers.size() != 1 || readers.get(0) == null) {
            return false;
        }
        Tensor r = readers.get(0);
        if (!"mul".equals(r.op()) || GraphWriter.nonNull(inputs(r)).size() != 1) {
            return false;
        }
        return scaleIsInverseCount(w, sum, r) && scaleIsInverseCount(w, w.twin(sum), w.twin(r));
    }

    private static boolean scaleIsInverseCount(GraphWriter w, Tensor sum, Tensor mul) {
        Object s = w.attributes(mul).get("scalar");
        Tensor x = inputs(sum).get(0);
        return s instanceof Float f && f == 1f / ((float) x.numel() / sum.numel());
    }

    private static void sum(GraphWriter w, Tensor t) {
        if (isMeanSum(w, t)) {
            w.absorb(t); // the scaling after it writes ReduceMean
            return;
        }
        reduce(w, "ReduceSum", input(t, 0), t, keptShape(w, t));
    }

    private static void mul(GraphWriter w, Tensor t) {
        List<Tensor> in = GraphWriter.nonNull(inputs(t));
        if (in.size() == 1 && "sum".equals(in.get(0).op()) && w.isAbsorbed(in.get(0))) {
            Tensor sum = in.get(0);
            reduce(w, "ReduceMean", input(sum, 0), t, keptShape(w, sum));
            return;
        }
        elementwise(w, t, "Mul");
    }

    private static int[] keptShape(GraphWriter w, Tensor sum) {
        if (!(w.attributes(sum).get("kept_shape") instanceof int[] kept)) {
            throw w.unsupported(sum, "the sum recorded no kept shape");
        }
        return kept;
    }

    /** {@code x} reduced over the dimensions where {@code kept} is 1, to {@code result}'s shape, as value out(). */
    private static void reduce(GraphWriter w, String opType, Tensor x, Tensor result, int[] kept) {
        int[] in = x.shape();
        List<Long> axes = new ArrayList<>();
        for (int i = 0; i < in.length; i++) {
            if (kept[i] == 1 && in[i] != 1) {
                axes.add((long) i);
            }
        }
        int outRank = result.shape().length;
        if (axes.isEmpty()) {
            w.reshape(w.name(x), result, w.out());
            return;
        }
        boolean keep = outRank == in.length;
        boolean direct = keep || outRank == in.length - axes.size();
        String reduced = direct ? w.out() : w.fresh(w.out() + "_kept");
        long[] ax = axes.stream().mapToLong(Long::longValue).toArray();
        NodeProto.Builder n;
        if ("ReduceSum".equals(opType)) { // opset 13 made ReduceSum's axes an input; ReduceMean's stay an attribute until 18
            n = w.node(opType, reduced, w.name(x), w.longs(reduced + "_axes", ax));
        } else {
            n = w.node(opType, reduced, w.name(x)).addAttribute(GraphWriter.ints("axes", ax));
        }
        n.addAttribute(GraphWriter.intAttr("keepdims", direct && !keep ? 0 : 1));
        if (!direct) {
            w.reshape(reduced, result, w.out());
        }
    }

    private static void reshape(GraphWriter w, Tensor t) {
        Tensor x = input(t, 0);
        int[] in = x.shape();
        int[] out = t.shape();
        if (Arrays.equals(in, out) && Arrays.equals(w.batchDims(x), w.batchDims(t))) {
            w.node("Identity", w.out(), w.name(x));
            return;
        }
        boolean[] bin = w.batchDims(x);
        boolean[] bout = w.batchDims(t);
        if (in.length >= 2 && out.length == 2 && out[0] == in[0] && bin[0] && bout[0] && !bout[1]
                && onlyFirst(bin) && (long) out[1] * out[0] == Shapes.numel(in)) {
            w.node("Flatten", w.out(), w.name(x)).addAttribute(GraphWriter.intAttr("axis", 1));
            return;
        }
        w.reshape(w.name(x), t, w.out());
    }

    private static boolean onlyFirst(boolean[] dims) {
        for (int i = 1; i < dims.length; i++) {
            if (dims[i]) {
                return false;
            }
        }
        return dims.length > 0 && dims[0];
    }

    private static void broadcastTo(GraphWriter w, Tensor t) {
        Tensor x = input(t, 0);
        int[] target = t.shape();
        boolean[] batch = w.batchDims(t);
        boolean[] inBatch = w.batchDims(x);
        int offset = target.length - inBatch.length;
        long[] shape = new long[target.length];
        for (int i = 0; i < target.length; i++) {
            if (batch[i]) {
                if (i < offset || !inBatch[i - offset]) {
                    throw w.unsupported(t, "broadcasting to the batch size from a tensor without a batch dimension");
                }
                shape[i] = 1; // Expand keeps the input's own (batch) size where the target says 1
            } else {
                shape[i] = target[i];
            }
        }
        w.node("Expand", w.out(), w.name(x), w.longs(w.out() + "_shape", shape));
    }

    private static void cat(GraphWriter w, Tensor t) {
        int dim = intValue(w, t, "dim");
        List<Tensor> in = GraphWriter.nonNull(inputs(t));
        String[] names = new String[in.size()];
        for (int i = 0; i < names.length; i++) {
            names[i] = w.name(in.get(i));
        }
        w.node("Concat", w.out(), names).addAttribute(GraphWriter.intAttr("axis", dim));
    }

    private static void narrow(GraphWriter w, Tensor t) {
        Tensor x = input(t, 0);
        int dim = intValue(w, t, "dim");
        int start = intValue(w, t, "start");
        int length = intValue(w, t, "length");
        if (w.batchDims(x)[dim]) {
            throw w.unsupported(t, "narrowing the batch dimension (dim " + dim + "), whose size the graph leaves open");
        }
        w.node("Slice", w.out(), w.name(x), w.longs(w.out() + "_starts", start),
                w.longs(w.out() + "_ends", (long) start + length), w.longs(w.out() + "_axes", dim));
    }

    // ------------------------------------------------------------------ pooling and resizing

    private static void pool(GraphWriter w, Tensor t, String opType) {
        int[] k = intPair(w, t, "kernel");
        int[] s = intPair(w, t, "stride");
        int[] p = intPair(w, t, "padding");
        NodeProto.Builder n = w.node(opType, w.out(), w.name(input(t, 0)))
                .addAttribute(GraphWriter.ints("kernel_shape", k[0], k[1]))
                .addAttribute(GraphWriter.ints("strides", s[0], s[1]))
                .addAttribute(GraphWriter.ints("pads", p[0], p[1], p[0], p[1]));
        if ("AveragePool".equals(opType)) {
            n.addAttribute(GraphWriter.intAttr("count_include_pad", 1)); // as Kiln's (and PyTorch's) average pool
        }
    }

    private static void adaptivePool(GraphWriter w, Tensor t, String global, String windowed) {
        Tensor x = input(t, 0);
        int[] in = x.shape();
        int[] out = t.shape();
        if (out[2] == 1 && out[3] == 1) {
            w.node(global, w.out(), w.name(x));
            return;
        }
        if (in[2] % out[2] != 0 || in[3] % out[3] != 0) {
            throw w.unsupported(t, layerName(w, t, out) + " pools (" + in[2] + ", " + in[3] + ") to (" + out[2] + ", "
                    + out[3] + "), windows of unequal size that no ONNX pooling op expresses (only an output size that"
                    + " divides the input size, or (1, 1), exports)");
        }
        int kh = in[2] / out[2];
        int kw = in[3] / out[3];
        w.node(windowed, w.out(), w.name(x))
                .addAttribute(GraphWriter.ints("kernel_shape", kh, kw))
                .addAttribute(GraphWriter.ints("strides", kh, kw));
    }

    /** The layer that made an adaptive pool, found by its output size; the op's name where no layer matches. */
    private static String layerName(GraphWriter w, Tensor t, int[] out) {
        List<String> names = new ArrayList<>();
        for (Map.Entry<String, Module> e : w.model().namedModules().entrySet()) {
            Module m = e.getValue();
            boolean match = (m instanceof AdaptiveAvgPool2d a && "adaptive_avg_pool2d".equals(t.op())
                    && a.outH() == out[2] && a.outW() == out[3])
                    || (m instanceof AdaptiveMaxPool2d b && "adaptive_max_pool2d".equals(t.op())
                    && b.outH() == out[2] && b.outW() == out[3]);
            if (match) {
                names.add("'" + e.getKey() + "' (" + m.getClass().getSimpleName() + ")");
            }
        }
        return names.isEmpty() ? "the op" : "layer " + String.join(" or ", names);
    }

    private static void upsample(GraphWriter w, Tensor t) {
        Tensor x = input(t, 0);
        int[] in = x.shape();
        int[] out = t.shape();
        if (out[2] % in[2] != 0 || out[3] % in[3] != 0) {
            throw w.unsupported(t, "nearest upsampling by a non-integer factor");
        }
        String scales = w.initializer(w.fresh(w.out() + "_scales"),
                new float[]{1f, 1f, (float) (out[2] / in[2]), (float) (out[3] / in[3])}, 4);
        w.node("Resize", w.out(), w.name(x), "", scales)
                .addAttribute(GraphWriter.stringAttr("mode", "nearest"))
                .addAttribute(GraphWriter.stringAttr("coordinate_transformation_mode", "asymmetric"))
                .addAttribute(GraphWriter.stringAttr("nearest_mode", "floor"));
    }
}
