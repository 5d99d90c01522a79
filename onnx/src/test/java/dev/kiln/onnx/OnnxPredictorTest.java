package dev.kiln.onnx;

import dev.kiln.core.Device;
import dev.kiln.core.GradMode;
import dev.kiln.core.Tensor;
import dev.kiln.core.TensorScope;
import dev.kiln.data.Normalization;
import dev.kiln.inference.Predictor;
import dev.kiln.models.Architecture;
import dev.kiln.nn.StateDict;
import org.junit.jupiter.api.Test;

import java.io.IOException;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** An imported graph serves through Kiln's Predictor: its batch norms folded, PyTorch's logits within tolerance. */
class OnnxPredictorTest {

    @Test
    void anImportedModelServesThroughPredictorWithItsBatchNormsFolded() throws IOException {
        Device cpu = Device.cpu();
        for (String[] c : new String[][]{{"lenet.onnx", "lenet-goldens.safetensors", "4"}, {"resnet.onnx", "resnet-goldens.safetensors", "15"}}) {
            StateDict g = OnnxImportGoldensTest.goldens(c[1]);
            StateDict.Entry x = g.get("input");
            try (OnnxModule model = Onnx.load(OnnxImportGoldensTest.resource(c[0]), cpu)) {
                Architecture arch = model.architecture(c[0]);
                assertArrayEquals(java.util.Arrays.copyOfRange(x.shape(), 1, 4), arch.inputShape());
                try (Predictor p = Predictor.of(model, Normalization.MNIST,
                        Predictor.Options.defaults().device(cpu).architecture(arch));
                     TensorScope s = TensorScope.open(); GradMode ng = GradMode.noGrad()) {
                    assertEquals(Integer.parseInt(c[2]), p.foldedBatchNorms(), c[0] + ": every batch norm follows a conv or linear layer");
                    assertEquals(10, p.numClasses());
                    float[] got = p.logits(Tensor.of(cpu, x.data(), x.shape())).toArray();
                    OnnxImportGoldensTest.assertClose(c[0] + " served by Predictor", g.get("eval_logits").data(), got,
                            OnnxImportGoldensTest.LOGITS_ATOL, OnnxImportGoldensTest.LOGITS_RTOL);
                }
            }
        }
    }

    @Test
    void aGraphWithoutAFixedSampleShapeNamesItForPredictor() throws IOException {
        try (OnnxModule relu = Onnx.load(TestGraphs.model(17, TestGraphs.graph().addInput(TestGraphs.input("x", 0, 0))
                .addOutput(TestGraphs.output("y")).addNode(TestGraphs.node("Relu", "r", TestGraphs.names("x"),
                        TestGraphs.names("y")))).build().toByteArray(), Device.cpu())) {
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> relu.architecture("relu"));
            assertEquals(true, e.getMessage().contains("declares no fixed sample shape"), e.getMessage());
        }
    }
}
