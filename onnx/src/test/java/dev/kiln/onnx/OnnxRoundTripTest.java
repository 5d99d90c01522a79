package dev.kiln.onnx;

import dev.kiln.core.Device;
import dev.kiln.core.GradMode;
import dev.kiln.core.Tensor;
import dev.kiln.core.TensorScope;
import dev.kiln.data.Normalization;
import dev.kiln.nn.StateDict;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * PyTorch's exports imported, exported again by {@link OnnxExporter} and imported once more: the same logits (and,
 * with batch norm kept, the same state dict), with batch norm kept or folded and with the input normalisation baked
 * into the graph (Mul, Sub, Div nodes).
 */
class OnnxRoundTripTest {

    static final double ATOL = 1e-5;
    static final double RTOL = 1e-5;

    @Test
    void importedModelsExportAndLoadBackWithTheSameLogits(@TempDir Path dir) throws IOException {
        Device cpu = Device.cpu();
        for (String[] c : new String[][]{{"lenet.onnx", "lenet-goldens.safetensors"}, {"resnet.onnx", "resnet-goldens.safetensors"}}) {
            StateDict g = OnnxImportGoldensTest.goldens(c[1]);
            StateDict.Entry x = g.get("input");
            int[] sample = Arrays.copyOfRange(x.shape(), 1, x.shape().length);
            try (OnnxModule imported = Onnx.load(OnnxImportGoldensTest.resource(c[0]), cpu);
                 TensorScope s = TensorScope.open(); GradMode ng = GradMode.noGrad()) {
                float[] want = imported.forward(Tensor.of(cpu, x.data(), x.shape())).toArray();
                Path again = dir.resolve("again-" + c[0]);
                OnnxExporter.of(imported, sample).write(again);
                try (OnnxModule reloaded = Onnx.load(again, cpu)) {
                    float[] got = reloaded.forward(Tensor.of(cpu, x.data(), x.shape())).toArray();
                    OnnxImportGoldensTest.assertClose(c[0] + " exported and imported again", want, got, ATOL, RTOL);
                    assertEquals(imported.stateDict().entries().keySet(), reloaded.stateDict().entries().keySet(),
                            "the exporter names initializers as the state dict, so the names survive");
                }
                byte[] folded = OnnxExporter.of(imported, sample).foldBatchNorm(true).toBytes();
                try (OnnxModule reloaded = Onnx.load(folded, cpu)) {
                    float[] got = reloaded.forward(Tensor.of(cpu, x.data(), x.shape())).toArray();
                    OnnxImportGoldensTest.assertClose(c[0] + " exported folded and imported", want, got, ATOL, RTOL);
                    assertTrue(reloaded.namedModules().values().stream().noneMatch(m -> m instanceof dev.kiln.nn.BatchNorm));
                }
                // raw values in, the normalisation (x * scale - mean) / std as the graph's first nodes
                Normalization n = Normalization.MNIST;
                byte[] normalised = OnnxExporter.of(imported, sample).normalization(n).toBytes();
                float[] raw = x.data().clone();
                for (int i = 0; i < raw.length; i++) {
                    raw[i] = Math.round(Math.abs(raw[i]) * 100) % 256;
                }
                float[] inside = raw.clone();
                n.applyInPlace(inside, 0, inside.length);
                float[] wantRaw = imported.forward(Tensor.of(cpu, inside, x.shape())).toArray();
                try (OnnxModule reloaded = Onnx.load(normalised, cpu)) {
                    float[] got = reloaded.forward(Tensor.of(cpu, raw, x.shape())).toArray();
                    OnnxImportGoldensTest.assertClose(c[0] + " with the normalisation baked in", wantRaw, got, ATOL, RTOL);
                }
            }
        }
    }
}
