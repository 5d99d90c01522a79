package dev.kiln.onnx;

import dev.kiln.core.Device;
import dev.kiln.core.GradMode;
import dev.kiln.core.Tensor;
import dev.kiln.core.TensorScope;
import dev.kiln.io.SafeTensors;
import dev.kiln.nn.BatchNorm;
import dev.kiln.nn.Conv2d;
import dev.kiln.nn.CrossEntropyLoss;
import dev.kiln.nn.Linear;
import dev.kiln.nn.StateDict;
import dev.kiln.optim.SGD;
import dev.kiln.train.TrainingStep;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Models exported by PyTorch 1.13's {@code torch.onnx.export} (tools/pytorch_onnx_goldens.py) imported into Kiln on the
 * CPU backend: eval logits, a training-mode forward and one SGD step equal PyTorch's within float32 tolerance.
 * Tolerances: |kiln - torch| <= ATOL + RTOL * |torch| for logits and the loss, and for parameters and running
 * statistics after the step.
 */
class OnnxImportGoldensTest {

    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(OnnxImportGoldensTest.class);

    static final double LOGITS_ATOL = 1e-5;
    static final double LOGITS_RTOL = 1e-5;
    static final double STEP_ATOL = 1e-5;
    static final double STEP_RTOL = 1e-5;

    static Path resource(String name) {
        return Path.of("src/test/resources/onnx", name);
    }

    static StateDict goldens(String name) throws IOException {
        return SafeTensors.read(resource(name)).tensors();
    }

    static int[] labels(StateDict g) {
        float[] f = g.get("labels").data();
        int[] out = new int[f.length];
        for (int i = 0; i < f.length; i++) {
            out[i] = (int) f[i];
        }
        return out;
    }

    static Tensor input(StateDict g, Device d) {
        StateDict.Entry e = g.get("input");
        return Tensor.of(d, e.data(), e.shape());
    }

    /** Worst |got - want| / (atol + rtol |want|) (want: PyTorch's values, or Kiln's own); at most 1 passes. */
    static double assertClose(String what, float[] want, float[] got, double atol, double rtol) {
        assertEquals(want.length, got.length, what + ": length");
        double worst = 0;
        double maxAbs = 0;
        int at = -1;
        for (int i = 0; i < want.length; i++) {
            maxAbs = Math.max(maxAbs, Math.abs(got[i] - want[i]));
            double r = Math.abs(got[i] - want[i]) / (atol + rtol * Math.abs(want[i]));
            if (!(r <= worst)) {
                worst = r;
                at = i;
            }
        }
        if (!(worst <= 1)) {
            fail(what + ": element " + at + " is " + got[at] + ", expected " + want[at] + " (" + worst + " x tolerance)");
        }
        LOG.info("{}: max |got - want| {}, {} of the tolerance", what, maxAbs, String.format("%.3f", worst));
        return worst;
    }

    @Test
    void lenetEvalLogitsEqualPyTorch() throws IOException {
        Device cpu = Device.cpu();
        StateDict g = goldens("lenet-goldens.safetensors");
        try (OnnxModule m = Onnx.load(resource("lenet.onnx"), cpu); TensorScope s = TensorScope.open();
             GradMode ng = GradMode.noGrad()) {
            assertFalse(m.isTraining(), "a file with eval-mode batch norm loads in eval mode");
            assertTrue(m.namedModules().get("conv1") instanceof Conv2d);
            assertTrue(m.namedModules().get("bn3") instanceof BatchNorm);
            assertTrue(m.namedModules().get("dense1") instanceof Linear);
            assertEquals(java.util.List.of("conv1.weight", "conv1.bias", "bn1.weight", "bn1.bias", "bn1.running_mean",
                    "bn1.running_var"), m.stateDict().entries().keySet().stream().limit(6).toList());
            // 20 nodes: the 2 Constants fold away, each of the 4 batch norms runs with its sigmoid
            assertEquals(14, m.stepCount());
            float[] got = m.forward(input(g, cpu)).toArray();
            assertClose("LeNet eval logits", g.get("eval_logits").data(), got, LOGITS_ATOL, LOGITS_RTOL);
        }
    }

    @Test
    void resnetEvalLogitsEqualPyTorchWithAndWithoutFoldedBatchNorm() throws IOException {
        Device cpu = Device.cpu();
        StateDict g = goldens("resnet-goldens.safetensors");
        for (String file : new String[]{"resnet.onnx", "resnet-folded.onnx"}) {
            try (OnnxModule m = Onnx.load(resource(file), cpu); TensorScope s = TensorScope.open();
                 GradMode ng = GradMode.noGrad()) {
                float[] got = m.forward(input(g, cpu)).toArray();
                assertClose(file + " eval logits", g.get("eval_logits").data(), got, LOGITS_ATOL, LOGITS_RTOL);
                long bns = m.namedModules().values().stream().filter(x -> x instanceof BatchNorm).count();
                assertEquals(file.equals("resnet.onnx") ? 15 : 0, bns, file + ": batch norms");
            }
        }
        try (OnnxModule m = Onnx.load(resource("resnet.onnx"), cpu)) {
            assertTrue(m.namedModules().get("layer2.0.shortcut.0") instanceof Conv2d, m.namedModules().keySet().toString());
            assertEquals("layer2.0.shortcut.1.running_var", m.stateDictKeys().get("layer2.0.shortcut.1.running_var"));
        }
    }

    @Test
    void aNoGradForwardReleasesEveryIntermediateAsItGoes() throws IOException {
        Device cpu = Device.cpu();
        for (String[] c : new String[][]{{"lenet.onnx", "lenet-goldens.safetensors"}, {"resnet.onnx", "resnet-goldens.safetensors"}}) {
            StateDict g = goldens(c[1]);
            try (OnnxModule m = Onnx.load(resource(c[0]), cpu); TensorScope s = TensorScope.open();
                 GradMode ng = GradMode.noGrad()) {
                Tensor x = input(g, cpu);
                long before = cpu.tensorMemory().liveBytes();
                Tensor y = m.forward(x);
                long held = cpu.tensorMemory().liveBytes() - before;
                assertEquals(4L * y.numel(), held, c[0] + ": after the forward only its output is alive");
            }
        }
    }

    @Test
    void trainingModeFileRunsBatchNormOnBatchStatisticsAndUpdatesRunningStats() throws IOException {
        Device cpu = Device.cpu();
        StateDict g = goldens("resnet-goldens.safetensors");
        try (OnnxModule m = Onnx.load(resource("resnet-training.onnx"), cpu); TensorScope s = TensorScope.open();
             GradMode ng = GradMode.noGrad()) {
            assertTrue(m.isTraining(), "training_mode=1 batch norms load in training mode");
            float[] got = m.forward(input(g, cpu)).toArray();
            assertClose("training-mode logits", g.get("train_logits").data(), got, LOGITS_ATOL, LOGITS_RTOL);
            StateDict sd = m.stateDict();
            int compared = 0;
            for (Map.Entry<String, StateDict.Entry> e : g.entries().entrySet()) {
                if (e.getKey().startsWith("train.")) {
                    String key = e.getKey().substring("train.".length());
                    assertClose(key + " after a training forward", e.getValue().data(), sd.get(key).data(), STEP_ATOL, STEP_RTOL);
                    compared++;
                }
            }
            assertEquals(30, compared);
        }
    }

    @Test
    void lenetSgdStepAfterImportEqualsPyTorch() throws IOException {
        sgdStep("lenet.onnx", "lenet-goldens.safetensors");
    }

    @Test
    void resnetSgdStepAfterImportEqualsPyTorch() throws IOException {
        sgdStep("resnet.onnx", "resnet-goldens.safetensors");
    }

    @Test
    void trainingStepsCapturedAsAGraphEqualEagerOnes() throws IOException {
        Device cpu = Device.cpu();
        StateDict g = goldens("resnet-goldens.safetensors");
        StateDict.Entry x = g.get("input");
        int[] sample = java.util.Arrays.copyOfRange(x.shape(), 1, x.shape().length);
        float[][] results = new float[2][];
        String[] reasons = new String[2];
        for (int run = 0; run < 2; run++) {
            try (OnnxModule m = Onnx.load(resource("resnet.onnx"), cpu);
                 SGD sgd = SGD.builder().params(m.parameters()).lr(0.1f).momentum(0.9f).build();
                 TrainingStep step = new TrainingStep(m, new CrossEntropyLoss(), sgd, cpu, 8, sample, run == 1, 1)) {
                step.inputs().copyFrom(x.data());
                step.targets().copyFrom(g.get("labels").data());
                for (int i = 0; i < 4; i++) {
                    step.run();
                }
                reasons[run] = step.graphed() ? null : step.eagerReason();
                results[run] = m.stateDict().get("layer3.1.bn2.running_var").data();
                float[] w = m.stateDict().get("fc.weight").data();
                results[run] = java.util.Arrays.copyOf(results[run], results[run].length + w.length);
                System.arraycopy(w, 0, results[run], results[run].length - w.length, w.length);
            }
        }
        assertEquals(null, reasons[1], "the imported graph's training step captures");
        assertClose("4 captured steps against 4 eager ones", results[0], results[1], 1e-6, 1e-6);
    }

    /** One TrainingStep (SGD lr 0.1, momentum 0.9, cross-entropy) from the imported weights. */
    private static void sgdStep(String file, String goldens) throws IOException {
        Device cpu = Device.cpu();
        StateDict g = goldens(goldens);
        int stride = Integer.parseInt(SafeTensors.read(resource(goldens)).metadata().get("sample_stride"));
        try (OnnxModule m = Onnx.load(resource(file), cpu);
             SGD sgd = SGD.builder().params(m.parameters()).lr(0.1f).momentum(0.9f).build()) {
            StateDict.Entry x = g.get("input");
            int[] sample = java.util.Arrays.copyOfRange(x.shape(), 1, x.shape().length);
            int[] labels = labels(g);
            try (TrainingStep step = new TrainingStep(m, new CrossEntropyLoss(), sgd, cpu, labels.length, sample, false, 1)) {
                step.inputs().copyFrom(x.data());
                step.targets().copyFrom(g.get("labels").data());
                step.run();
                double loss = step.drain().lossSum() / labels.length;
                assertClose(file + " loss", g.get("step.loss").data(), new float[]{(float) loss}, STEP_ATOL, STEP_RTOL);
            }
            StateDict sd = m.stateDict();
            int compared = 0;
            for (Map.Entry<String, StateDict.Entry> e : g.entries().entrySet()) {
                String k = e.getKey();
                if (!k.startsWith("step.") || k.equals("step.loss")) {
                    continue;
                }
                String suffix = ".every" + stride;
                boolean sampled = k.endsWith(suffix);
                String key = k.substring(5, sampled ? k.length() - suffix.length() : k.length());
                StateDict.Entry mine = sd.get(key);
                assertTrue(mine != null, key + " is not in the imported module's state dict " + sd.entries().keySet());
                float[] got = mine.data();
                if (sampled) {
                    float[] every = new float[(got.length + stride - 1) / stride];
                    for (int i = 0; i < every.length; i++) {
                        every[i] = got[i * stride];
                    }
                    got = every;
                }
                assertClose(file + " " + key + " after one SGD step", e.getValue().data(), got, STEP_ATOL, STEP_RTOL);
                compared++;
            }
            long expected = sd.entries().keySet().stream().filter(k -> !k.endsWith("num_batches_tracked")).count();
            assertEquals(expected, compared, "every parameter and running statistic compared");
        }
    }
}
