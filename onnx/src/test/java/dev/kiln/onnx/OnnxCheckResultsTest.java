package dev.kiln.onnx;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.kiln.core.Device;
import dev.kiln.nn.Module;

import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * The exported files that {@code tools/onnx_check.py} (ONNX's own checker, full check and shape inference, plus a
 * PyTorch evaluation of the graph) verified are the files the exporter writes today: their SHA-256 are in
 * {@code onnx_check_results.json}, which CI reads without Python.
 */
class OnnxCheckResultsTest {

    static final String RESULTS = "/dev/kiln/onnx/onnx_check_results.json";
    static final String WRITE_DIR = "kiln.onnx.checkDir";
    static final String REGENERATE = "regenerate the checker results: mvn -o -q -B -pl onnx -am test"
            + " -Dtest=OnnxCheckResultsTest#writeCheckFiles -Dsurefire.failIfNoSpecifiedTests=false"
            + " -D" + WRITE_DIR + "=/tmp/kiln-onnx-check, then /usr/bin/python3 tools/onnx_check.py /tmp/kiln-onnx-check"
            + " onnx/src/test/resources/dev/kiln/onnx/onnx_check_results.json, and commit the JSON";

    private final Device device = Device.cpu();

    /** The exported files, by file name: every case as exported, and LeNet-5 and the ResNet folded. */
    Map<String, byte[]> exports() {
        Map<String, byte[]> files = new LinkedHashMap<>();
        for (ExportCases.Case c : ExportCases.all()) {
            try (Module m = c.build(device)) {
                files.put(c.name() + ".onnx", OnnxExporter.of(m, c.inputShape()).toBytes());
                if (c.name().equals("lenet5") || c.name().equals("resnet")) {
                    files.put(c.name() + "_folded.onnx", OnnxExporter.of(m, c.inputShape()).foldBatchNorm(true).toBytes());
                }
            }
        }
        return files;
    }

    @Test
    void theCheckedFilesAreTheOnesTheExporterWritesAndAllPassedTheChecker() throws Exception {
        JsonObject results;
        try (InputStream in = getClass().getResourceAsStream(RESULTS)) {
            assertNotNull(in, RESULTS + " is missing; " + REGENERATE);
            results = JsonParser.parseReader(new InputStreamReader(in, StandardCharsets.UTF_8)).getAsJsonObject();
        }
        Map<String, JsonObject> byFile = new LinkedHashMap<>();
        for (JsonElement e : results.getAsJsonArray("files")) {
            byFile.put(e.getAsJsonObject().get("file").getAsString(), e.getAsJsonObject());
        }
        Map<String, byte[]> exports = exports();
        assertEquals(exports.keySet(), byFile.keySet(), "the checked files differ from the exported ones; " + REGENERATE);
        for (Map.Entry<String, byte[]> f : exports.entrySet()) {
            JsonObject r = byFile.get(f.getKey());
            assertEquals(r.get("sha256").getAsString(), sha256(f.getValue()),
                    f.getKey() + " changed since the checker ran; " + REGENERATE);
            assertEquals("ok", r.get("checker").getAsString(), f.getKey() + ": onnx.checker said " + r.get("checker"));
            assertEquals("ok", r.get("shape_inference").getAsString(), f.getKey() + ": shape inference said "
                    + r.get("shape_inference"));
            double torch = r.get("torch_max_abs_diff").getAsDouble();
            assertTrue(torch <= OrtRun.ABS, f.getKey() + ": PyTorch's evaluation of the graph differs from Kiln by " + torch);
        }
    }

    /**
     * Writes each exported file with an input and Kiln's output for it (float32 little-endian, shapes in
     * {@code NAME.json}) to the directory named by {@code -Dkiln.onnx.checkDir}; runs only when that is set.
     */
    @Test
    void writeCheckFiles() throws Exception {
        String dir = System.getProperty(WRITE_DIR);
        Assumptions.assumeTrue(dir != null, "writes the checker's input only with -D" + WRITE_DIR + "=DIR");
        Path out = Path.of(dir);
        Files.createDirectories(out);
        Map<String, byte[]> exports = exports();
        for (ExportCases.Case c : ExportCases.all()) {
            List<String> names = new ArrayList<>(List.of(c.name()));
            if (exports.containsKey(c.name() + "_folded.onnx")) {
                names.add(c.name() + "_folded");
            }
            int[] shape = OrtRun.batchShape(3, c.inputShape());
            float[] x = OrtRun.random(11, shape);
            float[] y;
            int[] outShape;
            try (Module m = c.build(device)) {
                y = OrtRun.kiln(m, device, x, shape);
                outShape = outputShape(m, shape);
            }
            for (String name : names) {
                Files.write(out.resolve(name + ".onnx"), exports.get(name + ".onnx"));
                Files.write(out.resolve(name + ".input.f32"), littleEndian(x));
                Files.write(out.resolve(name + ".kiln.f32"), littleEndian(y));
                JsonObject meta = new JsonObject();
                meta.add("input_shape", array(shape));
                meta.add("output_shape", array(outShape));
                Files.writeString(out.resolve(name + ".json"), meta.toString());
            }
        }
    }

    private int[] outputShape(Module m, int[] shape) {
        try (dev.kiln.core.GradMode g = dev.kiln.core.GradMode.noGrad();
             dev.kiln.core.TensorScope s = dev.kiln.core.TensorScope.open()) {
            return m.forward(dev.kiln.core.Tensor.zeros(device, shape)).shape();
        }
    }

    private static JsonArray array(int[] a) {
        JsonArray j = new JsonArray();
        for (int v : a) {
            j.add(v);
        }
        return j;
    }

    private static byte[] littleEndian(float[] a) {
        ByteBuffer b = ByteBuffer.allocate(a.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(a);
        return b.array();
    }

    static String sha256(byte[] bytes) throws IOException {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IOException(e);
        }
    }
}
