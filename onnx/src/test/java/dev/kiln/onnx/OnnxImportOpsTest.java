package dev.kiln.onnx;

import dev.kiln.core.Device;
import dev.kiln.core.GradMode;
import dev.kiln.core.Tensor;
import dev.kiln.core.TensorScope;
import dev.kiln.io.KilnFormatException;
import dev.kiln.nn.Linear;
import dev.kiln.onnx.proto.OnnxProto.GraphProto;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import static dev.kiln.onnx.TestGraphs.floatAttr;
import static dev.kiln.onnx.TestGraphs.floats;
import static dev.kiln.onnx.TestGraphs.graph;
import static dev.kiln.onnx.TestGraphs.input;
import static dev.kiln.onnx.TestGraphs.intAttr;
import static dev.kiln.onnx.TestGraphs.ints;
import static dev.kiln.onnx.TestGraphs.longs;
import static dev.kiln.onnx.TestGraphs.model;
import static dev.kiln.onnx.TestGraphs.names;
import static dev.kiln.onnx.TestGraphs.node;
import static dev.kiln.onnx.TestGraphs.output;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Each op the import maps, on small graphs written with the protobuf builders, against values computed here. */
class OnnxImportOpsTest {

    private final Device cpu = Device.cpu();
    private TensorScope scope;

    @BeforeEach
    void open() {
        scope = TensorScope.open();
    }

    @AfterEach
    void close() {
        scope.close();
    }

    private OnnxModule load(GraphProto.Builder g) throws KilnFormatException {
        return Onnx.load(model(17, g).build().toByteArray(), cpu);
    }

    private static float[] range(int n, float scale, float offset) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = offset + scale * i;
        }
        return v;
    }

    @Test
    void theFlattenChainOfShapeGatherUnsqueezeConcatReshapeFollowsTheBatch() throws KilnFormatException {
        GraphProto.Builder g = graph().addInput(input("x", 0, 2, 3)).addOutput(output("y"))
                .addInitializer(longs("zero", new long[]{0}))
                .addInitializer(longs("axes", new long[]{0}, 1))
                .addInitializer(longs("rest", new long[]{-1}, 1))
                .addNode(node("Shape", "shape", names("x"), names("s")))
                .addNode(node("Gather", "gather", names("s", "zero"), names("n"), intAttr("axis", 0)))
                .addNode(node("Unsqueeze", "unsqueeze", names("n", "axes"), names("n1")))
                .addNode(node("Concat", "concat", names("n1", "rest"), names("target"), intAttr("axis", 0)))
                .addNode(node("Reshape", "reshape", names("x", "target"), names("y")));
        try (OnnxModule m = load(g)) {
            for (int batch : new int[]{1, 2, 5}) {
                float[] x = range(batch * 6, 0.5f, -1f);
                Tensor y = m.forward(Tensor.of(cpu, x, batch, 2, 3));
                assertArrayEquals(new int[]{batch, 6}, y.shape());
                assertArrayEquals(x, y.toArray());
            }
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> m.forward(Tensor.of(cpu, new float[12], 2, 3, 2)));
            assertTrue(e.getMessage().contains("input 'x' must have shape (?, 2, 3), got (2, 3, 2)"), e.getMessage());
        }
    }

    @Test
    void opset10TakesUnsqueezeAxesAndClipBoundsAsAttributes() throws KilnFormatException {
        GraphProto.Builder g = graph().addInput(input("x", 0, 3)).addOutput(output("y"))
                .addNode(node("Clip", "clip", names("x"), names("c"), floatAttr("min", -1f), floatAttr("max", 1f)))
                .addNode(node("Unsqueeze", "u", names("c"), names("y"), ints("axes", 1, 3)));
        try (OnnxModule m = Onnx.load(model(10, g).build().toByteArray(), cpu)) {
            Tensor y = m.forward(Tensor.of(cpu, new float[]{-3, 0.5f, 2, 4, -0.25f, -1}, 2, 3));
            assertArrayEquals(new int[]{2, 1, 3, 1}, y.shape());
            assertArrayEquals(new float[]{-1, 0.5f, 1, 1, -0.25f, -1}, y.toArray());
        }
    }

    @Test
    void initializersPyTorchDeduplicatedIntoIdentityNodesBecomeSeparateTensors() throws KilnFormatException {
        // a fresh BatchNorm's weight and running_var are both ones: PyTorch's export keeps one, the other an Identity
        GraphProto.Builder g = graph().addInput(input("x", 0, 2)).addOutput(output("y"))
                .addInitializer(floats("bn.weight", new float[]{1, 1}, 2))
                .addInitializer(floats("bn.bias", new float[]{0, 0}, 2))
                .addNode(node("Identity", "Identity_0", names("bn.weight"), names("bn.running_var")))
                .addNode(node("Identity", "Identity_1", names("bn.bias"), names("bn.running_mean")))
                .addNode(node("BatchNormalization", "/bn/BatchNormalization",
                        names("x", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"), names("y")));
        try (OnnxModule m = load(g)) {
            assertEquals(java.util.List.of("bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"),
                    java.util.List.copyOf(m.stateDict().entries().keySet()).subList(0, 4));
            m.namedParameters().get("bn.weight").copyFrom(new float[]{3, 3});
            assertArrayEquals(new float[]{1, 1}, m.namedBuffers().get("bn.running_var").toArray());
        }
    }

    @Test
    void matMulAndAddOfConstantsIsOneLinearLayer() throws KilnFormatException {
        float[] b = {1, 2, 3, 4, 5, 6}; // (3, 2)
        GraphProto.Builder g = graph().addInput(input("x", 0, 3)).addOutput(output("y"))
                .addInitializer(floats("fc.weight", b, 3, 2)).addInitializer(floats("fc.bias", new float[]{0.5f, -1f}, 2))
                .addNode(node("MatMul", "mm", names("x", "fc.weight"), names("h")))
                .addNode(node("Add", "add", names("h", "fc.bias"), names("y")));
        try (OnnxModule m = load(g); GradMode ng = GradMode.noGrad()) {
            assertTrue(m.namedModules().get("fc") instanceof Linear);
            assertArrayEquals(new float[]{1, 3, 5, 2, 4, 6}, m.namedParameters().get("fc.weight").toArray());
            assertEquals("fc.bias", m.stateDictKeys().get("fc.bias"));
            float[] y = m.forward(Tensor.of(cpu, new float[]{1, 0, -1, 2, 1, 0}, 2, 3)).toArray();
            assertArrayEquals(new float[]{1 - 5 + 0.5f, 2 - 6 - 1f, 2 + 3 + 0.5f, 4 + 4 - 1f}, y, 1e-6f);
        }
    }

    @Test
    void gemmWithoutTransBTransposesTheWeightAndTrains() throws KilnFormatException {
        GraphProto.Builder g = graph().addInput(input("x", 0, 2)).addOutput(output("y"))
                .addInitializer(floats("w", new float[]{1, 2, 3, 4, 5, 6}, 2, 3))
                .addNode(node("Gemm", "gemm", names("x", "w"), names("y")));
        try (OnnxModule m = load(g)) {
            Tensor w = m.parameters().get(0);
            assertArrayEquals(new int[]{3, 2}, w.shape());
            assertTrue(w.requiresGrad());
            Tensor y = m.forward(Tensor.of(cpu, new float[]{1, -1}, 1, 2));
            assertArrayEquals(new float[]{-3, -3, -3}, y.toArray(), 1e-6f);
            y.sum().backward();
            assertArrayEquals(new float[]{1, -1, 1, -1, 1, -1}, w.grad().toArray(), 1e-6f);
        }
    }

    @Test
    void clipIsRelu6ReluOrAClamp() throws KilnFormatException {
        float[] x = {-2, -0.5f, 0.25f, 3, 7};
        float[][] bounds = {{0, 6}, {0, Float.NaN}, {-1, 0.5f}};
        float[][] want = {{0, 0, 0.25f, 3, 6}, {0, 0, 0.25f, 3, 7}, {-1, -0.5f, 0.25f, 0.5f, 0.5f}};
        for (int c = 0; c < bounds.length; c++) {
            GraphProto.Builder g = graph().addInput(input("x", 0)).addOutput(output("y"))
                    .addInitializer(floats("lo", new float[]{bounds[c][0]}));
            if (Float.isNaN(bounds[c][1])) {
                g.addNode(node("Clip", "clip", names("x", "lo"), names("y")));
            } else {
                g.addInitializer(floats("hi", new float[]{bounds[c][1]}));
                g.addNode(node("Clip", "clip", names("x", "lo", "hi"), names("y")));
            }
            try (OnnxModule m = load(g)) {
                assertArrayEquals(want[c], m.forward(Tensor.of(cpu, x, 5)).toArray(), "clip " + c);
            }
        }
    }

    @Test
    void padBeforeAveragePoolIsPaddingCountedInTheDivisor() throws KilnFormatException {
        GraphProto.Builder g = graph().addInput(input("x", 0, 1, 2, 2)).addOutput(output("y"))
                .addInitializer(longs("pads", new long[]{0, 0, 1, 1, 0, 0, 1, 1}, 8))
                .addNode(node("Pad", "pad", names("x", "pads"), names("p")))
                .addNode(node("AveragePool", "pool", names("p"), names("y"), ints("kernel_shape", 2, 2),
                        ints("strides", 2, 2)));
        try (OnnxModule m = load(g)) {
            Tensor y = m.forward(Tensor.of(cpu, new float[]{4, 8, 12, 16}, 1, 1, 2, 2));
            assertArrayEquals(new int[]{1, 1, 2, 2}, y.shape());
            assertArrayEquals(new float[]{1, 2, 3, 4}, y.toArray(), 1e-6f);
        }
    }

    @Test
    void poolsConcatArithmeticIdentityAndDropout() throws KilnFormatException {
        GraphProto.Builder g = graph().addInput(input("x", 0, 1, 2, 2)).addOutput(output("y"))
                .addInitializer(floats("two", new float[]{2}))
                .addNode(node("MaxPool", "max", names("x"), names("mx"), ints("kernel_shape", 2, 2)))
                .addNode(node("GlobalAveragePool", "gap", names("x"), names("avg")))
                .addNode(node("Concat", "cat", names("mx", "avg"), names("c"), intAttr("axis", 1)))
                .addNode(node("Mul", "mul", names("c", "two"), names("d")))
                .addNode(node("Identity", "id", names("d"), names("e")))
                .addNode(node("Dropout", "drop", names("e"), names("f")))
                .addNode(node("Sub", "sub", names("f", "two"), names("y")));
        try (OnnxModule m = load(g)) {
            assertFalse(m.isTraining());
            Tensor y = m.forward(Tensor.of(cpu, new float[]{1, 5, 3, 7}, 1, 1, 2, 2));
            assertArrayEquals(new int[]{1, 2, 1, 1}, y.shape());
            assertArrayEquals(new float[]{7 * 2 - 2, 4 * 2 - 2}, y.toArray(), 1e-6f);
            m.train();
            float[] trained = m.forward(Tensor.of(cpu, range(400, 0.01f, 1f), 100, 1, 2, 2)).toArray();
            long dropped = 0;
            for (float v : trained) {
                dropped += v == -2f ? 1 : 0;
            }
            assertTrue(dropped > 30 && dropped < 170, "dropout in training mode zeroes about half: " + dropped + " of 200");
        }
    }

    @Test
    void anOpKilnLacksIsNamedWithItsNode() {
        GraphProto.Builder g = graph().addInput(input("x", 0, 4)).addOutput(output("y"))
                .addNode(node("Relu", "/act/Relu", names("x"), names("h")))
                .addNode(node("Softmax", "/head/Softmax", names("h"), names("y"), intAttr("axis", 1)));
        KilnFormatException e = assertThrows(KilnFormatException.class, () -> load(g));
        assertTrue(e.getMessage().startsWith("ONNX bytes ("), e.getMessage());
        assertTrue(e.getMessage().contains("node '/head/Softmax' (Softmax): op type 'Softmax' is not supported"), e.getMessage());
    }

    @Test
    void attributesKilnCannotHonourAreRefusedNamingTheNode() {
        GraphProto.Builder conv = graph().addInput(input("x", 0, 1, 4, 4)).addOutput(output("y"))
                .addInitializer(floats("w", new float[9], 1, 1, 3, 3))
                .addNode(node("Conv", "c1", names("x", "w"), names("y"), ints("pads", 1, 1, 0, 0)));
        KilnFormatException e = assertThrows(KilnFormatException.class, () -> load(conv));
        assertTrue(e.getMessage().contains("node 'c1' (Conv): pads [1, 1, 0, 0]"), e.getMessage());
        GraphProto.Builder gemm = graph().addInput(input("x", 0, 3)).addOutput(output("y"))
                .addInitializer(floats("w", new float[6], 2, 3))
                .addNode(node("Gemm", "g1", names("x", "w"), names("y"), floatAttr("alpha", 2f), intAttr("transB", 1)));
        e = assertThrows(KilnFormatException.class, () -> load(gemm));
        assertTrue(e.getMessage().contains("node 'g1' (Gemm): alpha 2.0"), e.getMessage());
        GraphProto.Builder dynamicWeight = graph().addInput(input("x", 0, 1, 4, 4)).addInput(input("w", 1, 1, 3, 3))
                .addOutput(output("y")).addNode(node("Conv", "c2", names("x", "w"), names("y")));
        e = assertThrows(KilnFormatException.class, () -> load(dynamicWeight));
        assertTrue(e.getMessage().contains("node 'c2' (Conv): weight ('w') is computed at run time"), e.getMessage());
    }

    @Test
    void momentumIsPyTorchsComplementOfOnnxs() {
        assertEquals(0.1f, GraphBuilder.pytorchMomentum(0.9f));
        assertEquals(0.01f, GraphBuilder.pytorchMomentum(0.99f));
        assertEquals(1f - 0.123456789f, GraphBuilder.pytorchMomentum(0.123456789f), 1e-7f);
    }
}
