package dev.kiln.onnx;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.onnxruntime.NodeInfo;
import ai.onnxruntime.TensorInfo;
import dev.kiln.backend.Backend;
import dev.kiln.backend.Buffer;
import dev.kiln.core.Device;
import dev.kiln.core.Generator;
import dev.kiln.core.Tensor;
import dev.kiln.data.Normalization;
import dev.kiln.inference.Predictor;
import dev.kiln.models.LeNet5;
import dev.kiln.models.ResNet;
import dev.kiln.nn.AdaptiveAvgPool2d;
import dev.kiln.nn.Linear;
import dev.kiln.nn.Module;
import dev.kiln.nn.Sequential;
import dev.kiln.onnx.proto.OnnxProto;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Exported models run in ONNX Runtime Java and agree with Kiln's eval forward (and Predictor) within {@link OrtRun}'s tolerance. */
class OnnxExporterTest {

    private static final Logger LOG = LoggerFactory.getLogger(OnnxExporterTest.class);
    private final Device device = Device.cpu();
    private final List<Module> opened = new java.util.ArrayList<>();

    private Module track(Module m) {
        opened.add(m);
        return m;
    }

    @org.junit.jupiter.api.AfterEach
    void closeModels() {
        opened.forEach(Module::close);
    }

    static Stream<Arguments> cases() {
        return ExportCases.all().stream().flatMap(c -> Stream.of(Arguments.of(c.name(), false), Arguments.of(c.name(), true)));
    }

    @ParameterizedTest(name = "{0} folded={1}")
    @MethodSource("cases")
    void onnxRuntimeAgreesWithKilnAtBatch1And64(String name, boolean fold) throws Exception {
        ExportCases.Case c = ExportCases.named(name);
        double max = 0;
        try (Module model = c.build(device);
             OrtRun ort = new OrtRun(OnnxExporter.of(model, c.inputShape()).foldBatchNorm(fold).toBytes())) {
            for (int batch : new int[]{1, 64}) {
                int[] shape = OrtRun.batchShape(batch, c.inputShape());
                float[] x = OrtRun.random(batch, shape);
                max = Math.max(max, OrtRun.maxAbsDiff(name + " batch " + batch, OrtRun.kiln(model, device, x, shape),
                        ort.run(x, shape)));
            }
        }
        LOG.info("{} folded={}: max |onnx - kiln| = {}", name, fold, max);
    }

    @Test
    void theBatchDimensionIsDynamicAndNamed() throws Exception {
        ExportCases.Case c = ExportCases.named("resnet");
        Module model = track(c.build(device));
        byte[] onnx = OnnxExporter.of(model, c.inputShape()).toBytes();
        OnnxProto.ModelProto proto = OnnxProto.ModelProto.parseFrom(onnx);
        OnnxProto.TensorShapeProto in = proto.getGraph().getInput(0).getType().getTensorType().getShape();
        assertEquals(OnnxExporter.BATCH, in.getDim(0).getDimParam());
        assertEquals(List.of(1L, 28L, 28L), in.getDimList().subList(1, 4).stream()
                .map(OnnxProto.TensorShapeProto.Dimension::getDimValue).toList());
        OnnxProto.TensorShapeProto out = proto.getGraph().getOutput(0).getType().getTensorType().getShape();
        assertEquals(OnnxExporter.BATCH, out.getDim(0).getDimParam());
        assertEquals(10, out.getDim(1).getDimValue());
        try (OrtRun ort = new OrtRun(onnx)) {
            NodeInfo info = ort.session().getInputInfo().values().iterator().next();
            assertEquals(-1, ((TensorInfo) info.getInfo()).getShape()[0]);
            for (int batch : new int[]{5, 17}) { // neither of the traced sizes
                int[] shape = OrtRun.batchShape(batch, c.inputShape());
                float[] x = OrtRun.random(batch, shape);
                OrtRun.maxAbsDiff("batch " + batch, OrtRun.kiln(model, device, x, shape), ort.run(x, shape));
            }
        }
    }

    @Test
    void theModelHeaderHasOpset17IrVersion8AndKilnsProvenance(@TempDir Path dir) throws Exception {
        Path source = dir.resolve("model.safetensors");
        Files.write(source, new byte[]{1, 2, 3});
        Module model = track(ExportCases.named("lenet5").build(device));
        OnnxProto.ModelProto proto = OnnxProto.ModelProto.parseFrom(OnnxExporter.of(model, 1, 28, 28)
                .sourceFile(source).metadata("owner", "digits team").toBytes());
        assertEquals(8, proto.getIrVersion());
        assertEquals(1, proto.getOpsetImportCount());
        assertEquals(17, proto.getOpsetImport(0).getVersion());
        assertEquals("", proto.getOpsetImport(0).getDomain());
        assertEquals("Kiln", proto.getProducerName());
        Map<String, String> meta = proto.getMetadataPropsList().stream()
                .collect(Collectors.toMap(OnnxProto.StringStringEntryProto::getKey, OnnxProto.StringStringEntryProto::getValue));
        assertEquals(dev.kiln.core.Kiln.version(), meta.get("kiln.version"));
        assertEquals("LeNet5", meta.get("kiln.architecture"));
        assertEquals("model.safetensors", meta.get("kiln.source.file"));
        // sha256 of the bytes 01 02 03
        assertEquals("039058c6f2c0cb492c533b0a4d14ef77cc0f78abccced5287d84a1a2011cfb81", meta.get("kiln.source.sha256"));
        assertEquals("digits team", meta.get("owner"));
        assertThrows(IllegalArgumentException.class, () -> OnnxExporter.of(model, 1, 28, 28).metadata("kiln.version", "x"));
    }

    @Test
    void parametersAreFloat32LittleEndianInitializersWithStateDictNames() throws Exception {
        Module model = track(ExportCases.named("resnet").build(device));
        OnnxProto.ModelProto proto = OnnxProto.ModelProto.parseFrom(OnnxExporter.of(model, 1, 28, 28).toBytes());
        Map<String, OnnxProto.TensorProto> init = new HashMap<>();
        proto.getGraph().getInitializerList().forEach(t -> init.put(t.getName(), t));
        for (Map.Entry<String, Tensor> p : model.namedParameters().entrySet()) {
            OnnxProto.TensorProto t = init.get(p.getKey());
            assertTrue(t != null, "initializer " + p.getKey() + " among " + init.keySet());
            assertEquals(OnnxProto.TensorProto.DataType.FLOAT_VALUE, t.getDataType());
            float[] expected = p.getValue().toArray();
            float[] actual = new float[expected.length];
            ByteBuffer.wrap(t.getRawData().toByteArray()).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(actual);
            assertArrayEquals(expected, actual, p.getKey());
        }
        assertTrue(init.containsKey("layer1.0.conv1.weight"));
        assertTrue(init.containsKey("layer2.0.shortcut.1.running_var"));
        long batchNorms = proto.getGraph().getNodeList().stream().filter(n -> n.getOpType().equals("BatchNormalization")).count();
        assertEquals(model.namedModules().values().stream().filter(m -> m instanceof dev.kiln.nn.BatchNorm).count(), batchNorms);
    }

    @Test
    void foldingLeavesNoBatchNormalizationAfterAConvolutionAndAgreesWithKilnsFoldedPredictor() throws Exception {
        for (String name : new String[]{"lenet5", "resnet"}) {
            Module model = track(ExportCases.named(name).build(device));
            byte[] onnx = OnnxExporter.of(model, 1, 28, 28).foldBatchNorm(true).toBytes();
            OnnxProto.ModelProto proto = OnnxProto.ModelProto.parseFrom(onnx);
            assertFalse(proto.getGraph().getNodeList().stream().anyMatch(n -> n.getOpType().equals("BatchNormalization")),
                    name + ": every batch norm follows a convolution or linear layer");
            try (Predictor folded = Predictor.of(model, Normalization.NONE, Predictor.Options.defaults().foldBatchNorm(true));
                 OrtRun ort = new OrtRun(onnx)) {
                assertTrue(folded.foldedBatchNorms() > 0);
                int[] shape = OrtRun.batchShape(64, new int[]{1, 28, 28});
                float[] x = OrtRun.random(3, shape);
                float[][] images = new float[64][];
                for (int i = 0; i < 64; i++) {
                    images[i] = java.util.Arrays.copyOfRange(x, i * 784, (i + 1) * 784);
                }
                float[] kiln = flatten(folded.logits(images));
                double max = OrtRun.maxAbsDiff(name + " folded vs Predictor folded", kiln, ort.run(x, shape));
                LOG.info("{} folded vs Kiln's folded Predictor: max |diff| = {}", name, max);
            }
        }
    }

    @Test
    void bakedNormalizationTakesRawPixelsAsPredictorDoes() throws Exception {
        Module model = track(new LeNet5(device, new Generator(21)));
        ExportCases.randomizeStatistics(model, new java.util.Random(21));
        model.eval();
        byte[] onnx = OnnxExporter.of(model, 1, 28, 28).normalization(Normalization.MNIST).toBytes();
        java.util.Random r = new java.util.Random(5);
        int n = 64;
        byte[][] images = new byte[n][784];
        float[] raw = new float[n * 784];
        for (int i = 0; i < n; i++) {
            r.nextBytes(images[i]);
            for (int j = 0; j < 784; j++) {
                raw[i * 784 + j] = images[i][j] & 0xff;
            }
        }
        try (Predictor p = Predictor.of(model, Normalization.MNIST, Predictor.Options.defaults().foldBatchNorm(false));
             OrtRun ort = new OrtRun(onnx)) {
            double max = OrtRun.maxAbsDiff("raw pixels", flatten(p.logits(images)), ort.run(raw, n, 1, 28, 28));
            LOG.info("LeNet-5 with MNIST normalisation baked in vs Predictor on raw bytes: max |diff| = {}", max);
        }
    }

    @Test
    void anOpWithoutAnOnnxFormIsRefusedNamingTheOpAndItsShape() {
        Module custom = track(new Sequential(new Linear(device, new Generator(1), 4, 3), new Module() {
            @Override
            public Tensor forward(Tensor x) {
                Backend be = x.device().backend();
                Buffer y = be.allocateUninitialized(x.numel());
                be.copy(x.buffer(), 0, y, 0, x.numel());
                return Tensor.fromOp("swish_custom", x.device(), y, x.shape(), g -> new Tensor[]{g}, x);
            }
        }));
        OnnxExportException e = assertThrows(OnnxExportException.class, () -> OnnxExporter.of(custom, 4).toBytes());
        assertEquals("swish_custom", e.op());
        assertArrayEquals(new int[]{2, 3}, e.shape());
        assertTrue(e.getMessage().contains("'swish_custom'") && e.getMessage().contains("(2, 3)"), e.getMessage());
    }

    @Test
    void aForwardThatRefusesTheInputShapeIsReportedWithTheShapeAndTheModelKeepsItsMode() {
        Module model = track(new LeNet5(device, new Generator(1)));
        model.train();
        OnnxExportException e = assertThrows(OnnxExportException.class, () -> OnnxExporter.of(model, 1, 32, 32).toBytes());
        assertTrue(e.getMessage().contains("(2, 1, 32, 32)"), e.getMessage());
        assertTrue(model.isTraining());
    }

    @Test
    void aValueComputedOutsideTheRecordedGraphIsRefusedNotFrozenAsAConstant() {
        Module model = track(new Sequential(new Linear(device, new Generator(1), 4, 3), new Module() {
            @Override
            public Tensor forward(Tensor x) {
                Tensor columnSums; // the same shape at any batch size, values that follow the input
                try (dev.kiln.core.GradMode g = dev.kiln.core.GradMode.noGrad()) {
                    columnSums = x.sum(0, true);
                }
                return x.add(columnSums);
            }
        }));
        OnnxExportException e = assertThrows(OnnxExportException.class, () -> OnnxExporter.of(model, 4).toBytes());
        assertTrue(e.getMessage().contains("outside the recorded graph"), e.getMessage());
    }

    @Test
    void aConstantTheForwardPassCreatesIsAnInitializer() throws Exception {
        Module model = track(new Sequential(new Linear(device, new Generator(1), 4, 3), new Module() {
            @Override
            public Tensor forward(Tensor x) {
                return x.mul(Tensor.of(x.device(), new float[]{0.5f, -2f, 3f}, 3));
            }
        }));
        model.eval();
        byte[] onnx = OnnxExporter.of(model, 4).toBytes();
        assertTrue(OnnxProto.ModelProto.parseFrom(onnx).getGraph().getInitializerList().stream()
                .anyMatch(t -> t.getName().startsWith("constant") && t.getDims(0) == 3));
        try (OrtRun ort = new OrtRun(onnx)) {
            float[] x = OrtRun.random(9, 5, 4);
            OrtRun.maxAbsDiff("constant", OrtRun.kiln(model, device, x, 5, 4), ort.run(x, 5, 4));
        }
    }

    @Test
    void anAdaptivePoolWithUnequalWindowsIsRefusedNamingTheLayer() {
        Module model = new Sequential(new AdaptiveAvgPool2d(3));
        OnnxExportException e = assertThrows(OnnxExportException.class, () -> OnnxExporter.of(model, 2, 7, 7).toBytes());
        assertEquals("adaptive_avg_pool2d", e.op());
        assertTrue(e.getMessage().contains("'0' (AdaptiveAvgPool2d)") && e.getMessage().contains("(7, 7) to (3, 3)"),
                e.getMessage());
    }

    @Test
    void exportingLeavesTheModelAsItWasAndIsDeterministic() throws Exception {
        Module model = track(new ResNet(device, new Generator(4)));
        model.train();
        Map<String, float[]> before = new HashMap<>();
        Map<String, Tensor> state = new HashMap<>(model.namedParameters());
        state.putAll(model.namedBuffers());
        state.forEach((k, v) -> before.put(k, v.toArray()));
        byte[] first = OnnxExporter.of(model, 1, 28, 28).foldBatchNorm(true).toBytes();
        assertTrue(model.isTraining());
        assertTrue(model.namedModules().values().stream().allMatch(Module::isTraining));
        state.forEach((k, v) -> assertArrayEquals(before.get(k), v.toArray(), k));
        assertArrayEquals(first, OnnxExporter.of(model, 1, 28, 28).foldBatchNorm(true).toBytes());
    }

    @Test
    void writeReplacesTheFileAtomically(@TempDir Path dir) throws Exception {
        Module model = track(ExportCases.named("linear_nobias_tanh").build(device));
        Path out = dir.resolve("sub/model.onnx");
        OnnxExporter exporter = OnnxExporter.of(model, 10);
        exporter.write(out);
        assertArrayEquals(exporter.toBytes(), Files.readAllBytes(out));
        try (Stream<Path> files = Files.list(out.getParent())) {
            assertEquals(List.of(out.getFileName()), files.map(Path::getFileName).toList());
        }
    }

    private static float[] flatten(float[][] rows) {
        int n = 0;
        for (float[] r : rows) {
            n += r.length;
        }
        float[] out = new float[n];
        int at = 0;
        for (float[] r : rows) {
            System.arraycopy(r, 0, out, at, r.length);
            at += r.length;
        }
        return out;
    }
}
