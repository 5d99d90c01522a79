package dev.kiln.onnx;

import com.google.protobuf.ByteString;
import com.google.protobuf.InvalidProtocolBufferException;
import dev.kiln.core.Device;
import dev.kiln.core.GradMode;
import dev.kiln.core.Tensor;
import dev.kiln.core.TensorScope;
import dev.kiln.io.KilnFormatException;
import dev.kiln.onnx.proto.OnnxProto.AttributeProto;
import dev.kiln.onnx.proto.OnnxProto.GraphProto;
import dev.kiln.onnx.proto.OnnxProto.ModelProto;
import dev.kiln.onnx.proto.OnnxProto.NodeProto;
import dev.kiln.onnx.proto.OnnxProto.StringStringEntryProto;
import dev.kiln.onnx.proto.OnnxProto.TensorProto;
import dev.kiln.onnx.proto.OnnxProto.TensorShapeProto;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * Mutants of the committed LeNet ONNX file (PyTorch's export of the batch-norm post's LeNetModel), loaded one by one
 * with {@link Onnx#load(byte[], Device)} and, when one loads, run on a batch: the main method of the small-heap JVM
 * that {@link OnnxMutationTest} starts. A load must give a module or a {@link KilnFormatException} naming the bytes;
 * a forward of a loaded mutant may refuse its input with {@link IllegalArgumentException} (a model whose shapes no
 * longer chain). Anything else prints a {@code FINDING} line; the process exits 1 if there was one.
 */
public final class OnnxMutants {

    static final long SEED = 28;
    static final long[] NUMBERS = {0, 1, 2, 3, 5, 6, 7, 16, 120, 400, -1, -2, Integer.MAX_VALUE, 1L << 31, 1L << 40,
            Long.MAX_VALUE, Long.MIN_VALUE};
    static final int[] TYPES = {0, 2, 3, 5, 6, 7, 8, 9, 10, 11, 16, 99, -1};
    static final String[] OPS = {"Relu", "Conv", "Gemm", "Softmax", "", "Flatten", "BatchNormalization", "Identity",
            "AveragePool", "Reshape", "Concat", "Add", "Loop", "MaxPool"};

    private OnnxMutants() {
    }

    static Path lenet() {
        return Path.of("src/test/resources/onnx/lenet.onnx");
    }

    static Map<String, List<byte[]>> mutants(byte[] file) throws InvalidProtocolBufferException {
        Random r = new Random(SEED);
        ModelProto model = ModelProto.parseFrom(file);
        GraphProto graph = model.getGraph();
        Map<String, List<byte[]>> kinds = new LinkedHashMap<>();

        List<byte[]> flips = kinds.computeIfAbsent("bit flip", k -> new ArrayList<>());
        for (int i = 0; i < 60; i++) {
            byte[] m = file.clone();
            // two thirds in the nodes (the file's first bytes) and the inputs, outputs and opset (its last)
            int at = i % 3 == 0 ? r.nextInt(m.length) : i % 3 == 1 ? r.nextInt(4096) : m.length - 1 - r.nextInt(1024);
            m[at] ^= (byte) (1 << r.nextInt(8));
            flips.add(m);
        }
        List<byte[]> edits = kinds.computeIfAbsent("byte edit", k -> new ArrayList<>());
        for (int i = 0; i < 30; i++) {
            byte[] m = file.clone();
            m[i % 2 == 0 ? r.nextInt(4096) : m.length - 1 - r.nextInt(1024)] = (byte) r.nextInt(256);
            edits.add(m);
        }
        List<byte[]> cuts = kinds.computeIfAbsent("truncation", k -> new ArrayList<>());
        for (int cut : new int[]{0, 1, 2, 16, 4096, file.length - 1}) {
            cuts.add(Arrays.copyOf(file, cut));
        }
        for (int i = 0; i < 14; i++) {
            cuts.add(Arrays.copyOf(file, r.nextInt(file.length)));
        }

        List<byte[]> dims = kinds.computeIfAbsent("initializer dims edit", k -> new ArrayList<>());
        for (int i = 0; i < 40; i++) {
            GraphProto.Builder g = graph.toBuilder();
            int t = r.nextInt(g.getInitializerCount());
            TensorProto.Builder tensor = g.getInitializerBuilder(t);
            if (i % 4 == 3) {
                tensor.addDims(1);
            } else if (tensor.getDimsCount() > 0) {
                int d = r.nextInt(tensor.getDimsCount());
                tensor.setDims(d, i % 2 == 0 ? tensor.getDims(d) + (r.nextBoolean() ? 1 : -1) : NUMBERS[r.nextInt(NUMBERS.length)]);
            }
            dims.add(model.toBuilder().setGraph(g).build().toByteArray());
        }
        List<byte[]> reshaped = kinds.computeIfAbsent("initializer reshaped (same size)", k -> new ArrayList<>());
        for (int i = 0; i < 15; i++) {
            GraphProto.Builder g = graph.toBuilder();
            TensorProto.Builder tensor = g.getInitializerBuilder(r.nextInt(g.getInitializerCount()));
            long n = tensor.getDimsList().stream().mapToLong(Long::longValue).reduce(1, (a, b) -> a * b);
            tensor.clearDims();
            if (i % 2 == 0) {
                tensor.addDims(n);
            } else {
                tensor.addDims(1).addDims(n);
            }
            reshaped.add(model.toBuilder().setGraph(g).build().toByteArray());
        }
        List<byte[]> types = kinds.computeIfAbsent("initializer type edit", k -> new ArrayList<>());
        for (int i = 0; i < 20; i++) {
            GraphProto.Builder g = graph.toBuilder();
            g.getInitializerBuilder(r.nextInt(g.getInitializerCount())).setDataType(TYPES[r.nextInt(TYPES.length)]);
            types.add(model.toBuilder().setGraph(g).build().toByteArray());
        }
        List<byte[]> data = kinds.computeIfAbsent("initializer data edit", k -> new ArrayList<>());
        for (int i = 0; i < 15; i++) {
            GraphProto.Builder g = graph.toBuilder();
            TensorProto.Builder tensor = g.getInitializerBuilder(r.nextInt(g.getInitializerCount()));
            ByteString raw = tensor.getRawData();
            switch (i % 5) {
                case 0 -> tensor.setRawData(raw.substring(0, raw.size() - 1 - r.nextInt(Math.max(1, raw.size() - 1))));
                case 1 -> tensor.setRawData(raw.concat(ByteString.copyFrom(new byte[4])));
                case 2 -> tensor.clearRawData().addFloatData(1f);
                case 3 -> tensor.setDataLocation(TensorProto.DataLocation.EXTERNAL).addExternalData(
                        StringStringEntryProto.newBuilder().setKey("location").setValue("../weights.bin"));
                default -> tensor.setName(i % 2 == 0 ? "" : g.getInitializer(0).getName());
            }
            data.add(model.toBuilder().setGraph(g).build().toByteArray());
        }
        List<byte[]> wiring = kinds.computeIfAbsent("node input or output rename", k -> new ArrayList<>());
        List<String> values = new ArrayList<>();
        graph.getNodeList().forEach(n -> values.addAll(n.getOutputList()));
        graph.getInitializerList().forEach(t -> values.add(t.getName()));
        values.add("input");
        values.add("nowhere");
        values.add("");
        for (int i = 0; i < 40; i++) {
            GraphProto.Builder g = graph.toBuilder();
            NodeProto.Builder n = g.getNodeBuilder(r.nextInt(g.getNodeCount()));
            String v = values.get(r.nextInt(values.size()));
            if (i % 3 != 2 && n.getInputCount() > 0) {
                n.setInput(r.nextInt(n.getInputCount()), v);
            } else if (n.getOutputCount() > 0) {
                n.setOutput(r.nextInt(n.getOutputCount()), v);
            }
            wiring.add(model.toBuilder().setGraph(g).build().toByteArray());
        }
        List<byte[]> ops = kinds.computeIfAbsent("op type edit", k -> new ArrayList<>());
        for (int i = 0; i < 25; i++) {
            GraphProto.Builder g = graph.toBuilder();
            NodeProto.Builder n = g.getNodeBuilder(r.nextInt(g.getNodeCount()));
            if (i % 5 == 4) {
                n.setDomain("com.example");
            } else {
                n.setOpType(OPS[r.nextInt(OPS.length)]);
            }
            ops.add(model.toBuilder().setGraph(g).build().toByteArray());
        }
        List<byte[]> attributes = kinds.computeIfAbsent("attribute edit", k -> new ArrayList<>());
        for (int i = 0; i < 50; i++) {
            GraphProto.Builder g = graph.toBuilder();
            NodeProto.Builder n = g.getNodeBuilder(r.nextInt(g.getNodeCount()));
            if (n.getAttributeCount() == 0) {
                n.addAttribute(AttributeProto.newBuilder().setName(i % 2 == 0 ? "axis" : "pads")
                        .setType(AttributeProto.AttributeType.INT).setI(NUMBERS[r.nextInt(NUMBERS.length)]));
            } else {
                AttributeProto.Builder a = n.getAttributeBuilder(r.nextInt(n.getAttributeCount()));
                switch (i % 5) {
                    case 0 -> a.setI(NUMBERS[r.nextInt(NUMBERS.length)]);
                    case 1 -> {
                        if (a.getIntsCount() > 0) {
                            a.setInts(r.nextInt(a.getIntsCount()), NUMBERS[r.nextInt(NUMBERS.length)]);
                        } else {
                            a.setF(i % 2 == 0 ? Float.NaN : -1f);
                        }
                    }
                    case 2 -> a.clearInts().addInts(NUMBERS[r.nextInt(NUMBERS.length)]);
                    case 3 -> a.setType(AttributeProto.AttributeType.STRING).clearI().clearInts().setS(ByteString.copyFromUtf8("x"));
                    default -> n.removeAttribute(0);
                }
            }
            attributes.add(model.toBuilder().setGraph(g).build().toByteArray());
        }
        List<byte[]> structure = kinds.computeIfAbsent("graph structure edit", k -> new ArrayList<>());
        for (int i = 0; i < 30; i++) {
            GraphProto.Builder g = graph.toBuilder();
            switch (i % 6) {
                case 0 -> g.removeNode(r.nextInt(g.getNodeCount()));
                case 1 -> { // reversed node order: still a valid graph once sorted
                    List<NodeProto> nodes = new ArrayList<>(g.getNodeList());
                    java.util.Collections.reverse(nodes);
                    g.clearNode().addAllNode(nodes);
                }
                case 2 -> g.addNode(g.getNode(r.nextInt(g.getNodeCount())));
                case 3 -> g.removeInitializer(r.nextInt(g.getInitializerCount()));
                case 4 -> g.getOutputBuilder(0).setName(values.get(r.nextInt(values.size())));
                default -> {
                    TensorShapeProto.Dimension.Builder d = g.getInputBuilder(0).getTypeBuilder().getTensorTypeBuilder()
                            .getShapeBuilder().getDimBuilder(1 + r.nextInt(3));
                    d.setDimValue(NUMBERS[r.nextInt(NUMBERS.length)]);
                }
            }
            structure.add(model.toBuilder().setGraph(g).build().toByteArray());
        }
        List<byte[]> header = kinds.computeIfAbsent("opset or IR version edit", k -> new ArrayList<>());
        for (long v : new long[]{0, 1, 6, 7, 11, 12, 13, 16, 18, 99, -1}) {
            ModelProto.Builder m = model.toBuilder();
            m.getOpsetImportBuilder(0).setVersion(v);
            header.add(m.build().toByteArray());
        }
        for (long v : new long[]{0, 2, 3, 11, -5}) {
            header.add(model.toBuilder().setIrVersion(v).build().toByteArray());
        }
        header.add(model.toBuilder().clearOpsetImport().build().toByteArray());
        header.add(model.toBuilder().clearGraph().build().toByteArray());
        return kinds;
    }

    public static void main(String[] args) throws Exception {
        byte[] file = Files.readAllBytes(lenet());
        Map<String, List<byte[]>> kinds = mutants(file);
        Device cpu = Device.cpu();
        float[] batch = new float[2 * 28 * 28];
        for (int i = 0; i < batch.length; i++) {
            batch[i] = (float) Math.sin(i * 0.37);
        }
        int total = 0;
        int findings = 0;
        for (Map.Entry<String, List<byte[]>> kind : kinds.entrySet()) {
            int rejected = 0;
            int ran = 0;
            int refusedInput = 0;
            for (byte[] m : kind.getValue()) {
                total++;
                String prefix = "ONNX bytes (" + m.length + " bytes): ";
                OnnxModule module;
                try {
                    module = Onnx.load(m, cpu);
                } catch (KilnFormatException e) {
                    if (!e.getMessage().startsWith(prefix)) {
                        findings++;
                        System.out.println("FINDING " + kind.getKey() + ": message does not name the bytes: " + e.getMessage());
                    }
                    rejected++;
                    continue;
                } catch (Throwable t) {
                    findings++;
                    System.out.println("FINDING " + kind.getKey() + " (load): " + t);
                    t.printStackTrace(System.out);
                    continue;
                }
                try (module; TensorScope scope = TensorScope.open(); GradMode ng = GradMode.noGrad()) {
                    module.forward(Tensor.of(cpu, batch, 2, 1, 28, 28)).toArray();
                    module.train();
                    module.forward(Tensor.of(cpu, batch, 2, 1, 28, 28)).toArray();
                    ran++;
                } catch (IllegalArgumentException e) {
                    refusedInput++;
                } catch (Throwable t) {
                    findings++;
                    System.out.println("FINDING " + kind.getKey() + " (forward): " + t);
                    t.printStackTrace(System.out);
                }
            }
            System.out.println(kind.getKey() + ": " + kind.getValue().size() + " mutants, " + rejected + " rejected, "
                    + ran + " ran, " + refusedInput + " refused the input");
        }
        System.out.println("total " + total + " mutants, " + findings + " findings");
        System.out.println("max heap " + (Runtime.getRuntime().maxMemory() >> 20) + " MiB");
        System.exit(findings == 0 ? 0 : 1);
    }
}
