package dev.kiln.onnx;

import com.google.protobuf.ByteString;
import dev.kiln.core.Device;
import dev.kiln.io.KilnFormatException;
import dev.kiln.onnx.proto.OnnxProto.AttributeProto;
import dev.kiln.onnx.proto.OnnxProto.GraphProto;
import dev.kiln.onnx.proto.OnnxProto.ModelProto;
import dev.kiln.onnx.proto.OnnxProto.NodeProto;
import dev.kiln.onnx.proto.OnnxProto.StringStringEntryProto;
import dev.kiln.onnx.proto.OnnxProto.TensorProto;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;

import static dev.kiln.onnx.TestGraphs.floats;
import static dev.kiln.onnx.TestGraphs.graph;
import static dev.kiln.onnx.TestGraphs.input;
import static dev.kiln.onnx.TestGraphs.model;
import static dev.kiln.onnx.TestGraphs.names;
import static dev.kiln.onnx.TestGraphs.node;
import static dev.kiln.onnx.TestGraphs.output;
import static dev.kiln.onnx.TestGraphs.relu;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The reader's refusals: each bad model is a KilnFormatException naming the bytes, then what and where. */
class OnnxReaderTest {

    private static String refused(byte[] bytes) {
        KilnFormatException e = assertThrows(KilnFormatException.class, () -> Onnx.load(bytes, Device.cpu()));
        String prefix = "ONNX bytes (" + bytes.length + " bytes): ";
        assertTrue(e.getMessage().startsWith(prefix), e.getMessage());
        return e.getMessage().substring(prefix.length());
    }

    private static String refused(ModelProto.Builder m) {
        return refused(m.build().toByteArray());
    }

    private static void assertContains(String message, String part) {
        assertTrue(message.contains(part), message);
    }

    @Test
    void theSmallestModelLoads() throws KilnFormatException {
        try (OnnxModule m = Onnx.load(relu().build().toByteArray(), Device.cpu())) {
            assertEquals(java.util.List.of("x"), m.inputNames());
            assertEquals(java.util.List.of("y"), m.outputNames());
        }
    }

    @Test
    void aStreamLoadsAndIsNamedInMessages() throws IOException {
        try (OnnxModule m = Onnx.load(new java.io.ByteArrayInputStream(relu().build().toByteArray()), Device.cpu())) {
            assertEquals(java.util.List.of("y"), m.outputNames());
        }
        KilnFormatException e = assertThrows(KilnFormatException.class, () -> Onnx.load(
                new java.io.ByteArrayInputStream(relu().clearGraph().build().toByteArray()), "upload #7", Device.cpu()));
        assertEquals("upload #7: the model holds no graph", e.getMessage());
    }

    @Test
    void modelLevelProblems() {
        assertContains(refused(relu().clearGraph()), "the model holds no graph");
        assertContains(refused(model(6, relu().getGraph().toBuilder())), "opset 6: Kiln reads opsets 7 to 17");
        assertContains(refused(model(18, relu().getGraph().toBuilder())), "opset 18: Kiln reads opsets 7 to 17");
        assertContains(refused(relu().clearOpsetImport()), "imports no version of the default (ai.onnx) operator set");
        assertContains(refused(relu().setIrVersion(2)), "IR version 2: Kiln reads IR versions 3 to 10");
        assertContains(refused(new byte[]{(byte) 0xff, 1, 2, 3}), "not an ONNX model (protobuf)");
        assertContains(refused(new byte[0]), "the model holds no graph");
    }

    @Test
    void initializersWhoseBytesDoNotFitTheirDimsOrTypeAreRefused() {
        TensorProto short3 = floats("w", new float[]{1, 2}, 2).toBuilder().setRawData(ByteString.copyFrom(new byte[7])).build();
        assertContains(refused(relu().setGraph(relu().getGraph().toBuilder().addInitializer(short3))),
                "initializer 'w': raw_data holds 7 bytes, dims [2] of float need 8");
        TensorProto typed = TensorProto.newBuilder().setName("v").setDataType(TensorProto.DataType.FLOAT_VALUE)
                .addDims(3).addFloatData(1).addFloatData(2).build();
        assertContains(refused(relu().setGraph(relu().getGraph().toBuilder().addInitializer(typed))),
                "initializer 'v' holds 2 values, dims [3] need 3");
        TensorProto dbl = TensorProto.newBuilder().setName("d").setDataType(TensorProto.DataType.DOUBLE_VALUE)
                .addDims(1).addDoubleData(1).build();
        assertContains(refused(relu().setGraph(relu().getGraph().toBuilder().addInitializer(dbl))),
                "initializer 'd' has data type double");
        TensorProto huge = TensorProto.newBuilder().setName("h").setDataType(TensorProto.DataType.FLOAT_VALUE)
                .addDims(1L << 20).addDims(1L << 20).build();
        assertContains(refused(relu().setGraph(relu().getGraph().toBuilder().addInitializer(huge))),
                "initializer 'h': dims [1048576, 1048576] hold more than " + Onnx.MAX_TENSOR_ELEMENTS);
        TensorProto negative = TensorProto.newBuilder().setName("n").setDataType(TensorProto.DataType.FLOAT_VALUE)
                .addDims(-4).build();
        assertContains(refused(relu().setGraph(relu().getGraph().toBuilder().addInitializer(negative))),
                "initializer 'n' has dimension -4");
        GraphProto.Builder twice = relu().getGraph().toBuilder().addInitializer(floats("w", new float[1], 1))
                .addInitializer(floats("w", new float[1], 1));
        assertContains(refused(relu().setGraph(twice)), "initializer 'w' is defined twice");
    }

    @Test
    void externalDataIsRefusedWithItsLocation() {
        TensorProto ext = TensorProto.newBuilder().setName("w").setDataType(TensorProto.DataType.FLOAT_VALUE).addDims(4)
                .setDataLocation(TensorProto.DataLocation.EXTERNAL)
                .addExternalData(StringStringEntryProto.newBuilder().setKey("location").setValue("../../etc/passwd")).build();
        assertContains(refused(relu().setGraph(relu().getGraph().toBuilder().addInitializer(ext))),
                "initializer 'w': external data (location '../../etc/passwd') is not supported");
    }

    @Test
    void danglingInputsDuplicateOutputsAndCyclesAreRefused() {
        GraphProto.Builder dangling = graph().addInput(input("x", 0, 4)).addOutput(output("y"))
                .addNode(node("Add", "add", names("x", "nowhere"), names("y")));
        assertContains(refused(model(17, dangling)), "node 'add' (Add): input 'nowhere' is produced by no node, graph input or initializer");
        GraphProto.Builder twice = graph().addInput(input("x", 0, 4)).addOutput(output("y"))
                .addNode(node("Relu", "a", names("x"), names("y"))).addNode(node("Sigmoid", "b", names("x"), names("y")));
        assertContains(refused(model(17, twice)), "node 'b' (Sigmoid): output 'y' is already produced by node 'a' (Relu)");
        GraphProto.Builder shadow = graph().addInput(input("x", 0, 4)).addOutput(output("x"))
                .addNode(node("Relu", "a", names("x"), names("x")));
        assertContains(refused(model(17, shadow)), "node 'a' (Relu): output 'x' is already produced by a graph input or initializer");
        GraphProto.Builder cycle = graph().addInput(input("x", 0, 4)).addOutput(output("y"))
                .addNode(node("Add", "p", names("x", "r"), names("q"))).addNode(node("Relu", "r1", names("q"), names("r")))
                .addNode(node("Relu", "out", names("q"), names("y")));
        String m = refused(model(17, cycle));
        assertContains(m, "the graph has a cycle through 3 nodes");
        assertContains(m, "node 'p' (Add)");
        GraphProto.Builder unproduced = graph().addInput(input("x", 0, 4)).addOutput(output("z"))
                .addNode(node("Relu", "a", names("x"), names("y")));
        assertContains(refused(model(17, unproduced)), "graph output 'z' is produced by no node, input or initializer");
        GraphProto.Builder noInput = graph().addOutput(output("y")).addInitializer(floats("c", new float[1], 1))
                .addNode(node("Relu", "a", names("c"), names("y")));
        assertContains(refused(model(17, noInput)), "the graph has no input other than initializers");
    }

    @Test
    void tooManyMessagesAreRefusedBeforeTheProtobufIsBuilt() throws IOException {
        // a graph of MAX_MESSAGES empty nodes: 2 bytes each in the file, far more as objects
        int nodes = (int) Onnx.MAX_MESSAGES;
        ByteArrayOutputStream graph = new ByteArrayOutputStream(nodes * 2);
        for (int i = 0; i < nodes; i++) {
            graph.write(0x0a);
            graph.write(0x00);
        }
        ByteArrayOutputStream model = new ByteArrayOutputStream();
        model.write(0x3a); // field 7 (graph), length-delimited
        int len = graph.size();
        while ((len & ~0x7f) != 0) {
            model.write((len & 0x7f) | 0x80);
            len >>>= 7;
        }
        model.write(len);
        graph.writeTo(model);
        assertContains(refused(model.toByteArray()), "more than " + Onnx.MAX_MESSAGES + " messages (Onnx.MAX_MESSAGES)");
    }

    @Test
    void deeplyNestedSubgraphsAreRefused() {
        GraphProto.Builder g = relu().getGraph().toBuilder();
        for (int i = 0; i < 8; i++) {
            NodeProto holder = NodeProto.newBuilder().setOpType("If").addAttribute(AttributeProto.newBuilder()
                    .setName("then_branch").setType(AttributeProto.AttributeType.GRAPH).setG(g)).build();
            g = GraphProto.newBuilder().addNode(holder);
        }
        assertContains(refused(relu().setGraph(g)), "messages nested more than " + Onnx.MAX_NESTING + " deep");
    }

    @Test
    void anOversizedFileIsRefusedBeforeItIsRead(@TempDir Path dir) throws IOException {
        Path big = dir.resolve("big.onnx");
        try (RandomAccessFile f = new RandomAccessFile(big.toFile(), "rw")) {
            f.setLength(Onnx.MAX_MODEL_BYTES + 1); // sparse: no disk used
        }
        KilnFormatException e = assertThrows(KilnFormatException.class, () -> Onnx.load(big, Device.cpu()));
        assertEquals(big.toString(), e.file());
        assertContains(e.problem(), "more than the " + Onnx.MAX_MODEL_BYTES);
        Path small = dir.resolve("relu.onnx");
        Files.write(small, relu().build().toByteArray());
        try (OnnxModule m = Onnx.load(small, Device.cpu())) {
            assertEquals(1, m.outputNames().size());
        }
    }
}
