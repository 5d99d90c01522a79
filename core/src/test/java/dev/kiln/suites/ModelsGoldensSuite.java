package dev.kiln.suites;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.kiln.core.Generator;
import dev.kiln.core.GradMode;
import dev.kiln.core.Shapes;
import dev.kiln.core.Tensor;
import dev.kiln.core.TensorScope;
import dev.kiln.models.ResNet;
import dev.kiln.nn.BatchNorm;
import dev.kiln.nn.CrossEntropyLoss;
import dev.kiln.nn.Module;
import dev.kiln.nn.StateDict;
import dev.kiln.nn.init.Initializers;
import dev.kiln.nn.init.Initializers.FanMode;
import dev.kiln.nn.init.Initializers.Nonlinearity;
import dev.kiln.optim.Adam;
import dev.kiln.optim.AdamW;
import dev.kiln.optim.Optimizer;
import dev.kiln.optim.ParamGroup;
import dev.kiln.optim.SGD;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

import static dev.kiln.suites.GoldenJson.floats;
import static dev.kiln.suites.GoldenJson.ints;
import static dev.kiln.suites.GoldenJson.compareSummary;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The module API against PyTorch's own numbers ({@code goldens/pytorch-models.json}, written by
 * {@code tools/pytorch_goldens_models.py} with PyTorch 1.13 on the CPU): the {@code nn.init} initialisers bit for bit
 * on PyTorch's random stream, cross-entropy with label smoothing, optimizers with parameter groups, and the small
 * ResNet's initial weights and one training step. Tolerances follow {@link PyTorchGoldensSuite}'s reasoning and are
 * stated where used.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
public class ModelsGoldensSuite extends DeviceSuite {

    private JsonObject goldens;

    @BeforeAll
    void load() throws IOException {
        String resource = "/goldens/pytorch-models.json";
        try (InputStream in = ModelsGoldensSuite.class.getResourceAsStream(resource)) {
            assertNotNull(in, resource + " is missing: run /usr/bin/python3 tools/pytorch_goldens_models.py and commit its output");
            goldens = JsonParser.parseReader(new InputStreamReader(in, StandardCharsets.UTF_8)).getAsJsonObject();
        }
    }

    // ------------------------------------------------------------------ nn.init

    @Test
    @DisplayName("nn.init initialisers give PyTorch's values bit for bit after the same manual_seed, and leave the stream where PyTorch does")
    void initialisers() {
        JsonObject init = goldens.getAsJsonObject("init");
        int checked = 0;
        for (JsonElement e : init.getAsJsonArray("cases")) {
            JsonObject c = e.getAsJsonObject();
            String name = c.get("name").getAsString();
            int[] shape = ints(c.get("shape"));
            Generator gen = Generator.pytorch(c.get("seed").getAsLong());
            try (TensorScope scope = TensorScope.open()) {
                Tensor w = Tensor.zeros(device(), shape);
                apply(name, w, gen);
                float[] got = w.toArray();
                if (c.has("values")) {
                    assertArrayEquals(floats(c.get("values")), got, 0f, name + ": values vs PyTorch");
                } else {
                    assertArrayEquals(floats(c.get("head")), Arrays.copyOf(got, 8), 0f, name + ": first values vs PyTorch");
                    assertEquals(c.get("sha256").getAsString(), PyTorchGoldensSuite.sha256(got), name + ": every bit vs PyTorch");
                }
                float[] after = new float[3];
                gen.fillUniform(after, 0f, 1f);
                assertArrayEquals(floats(c.get("rand_3_after")), after, 0f, name + ": torch.rand(3) afterwards");
            }
            checked++;
        }
        assertEquals(36, checked, "init cases");
        JsonObject gains = init.getAsJsonObject("gains");
        for (Map.Entry<String, JsonElement> g : gains.entrySet()) {
            double got = g.getKey().equals("leaky_relu_0.2") ? Initializers.calculateGain(Nonlinearity.LEAKY_RELU, 0.2)
                    : Initializers.calculateGain(Nonlinearity.valueOf(g.getKey().toUpperCase(java.util.Locale.ROOT)));
            assertEquals(g.getValue().getAsDouble(), got, 0.0, "calculate_gain " + g.getKey());
        }
    }

    private static void apply(String name, Tensor w, Generator gen) {
        if (name.startsWith("kaiming_normal_fan_out_relu_")) {
            Initializers.kaimingNormal_(w, gen, 0, FanMode.FAN_OUT, Nonlinearity.RELU);
        } else if (name.startsWith("kaiming_normal_")) {
            Initializers.kaimingNormal_(w, gen);
        } else if (name.startsWith("kaiming_uniform_a_sqrt5_")) {
            Initializers.kaimingUniform_(w, gen, Math.sqrt(5), FanMode.FAN_IN, Nonlinearity.LEAKY_RELU);
        } else if (name.startsWith("kaiming_uniform_")) {
            Initializers.kaimingUniform_(w, gen);
        } else if (name.startsWith("xavier_uniform_gain_tanh_")) {
            Initializers.xavierUniform_(w, gen, Initializers.calculateGain(Nonlinearity.TANH));
        } else if (name.startsWith("xavier_uniform_")) {
            Initializers.xavierUniform_(w, gen);
        } else if (name.startsWith("xavier_normal_")) {
            Initializers.xavierNormal_(w, gen);
        } else if (name.startsWith("normal_0.3_0.02_")) {
            Initializers.normal_(w, gen, 0.3, 0.02);
        } else if (name.startsWith("uniform_-0.5_2_")) {
            Initializers.uniform_(w, gen, -0.5, 2.0);
        } else if (name.startsWith("constant_0.25_")) {
            Initializers.constant_(w, 0.25);
        } else if (name.startsWith("zeros_")) {
            Initializers.zeros_(w);
        } else if (name.startsWith("ones_")) {
            Initializers.ones_(w);
        } else {
            fail("unknown init case " + name);
        }
    }

    // ------------------------------------------------------------------ losses

    @Test
    @DisplayName("cross-entropy on int[] class indices with label smoothing 0, 0.1 and 1 matches PyTorch: loss and gradient")
    void crossEntropyLabelSmoothing() {
        for (JsonElement e : goldens.getAsJsonArray("cross_entropy")) {
            JsonObject c = e.getAsJsonObject();
            float smoothing = c.get("label_smoothing").getAsFloat();
            int[] labels = ints(c.get("labels"));
            try (TensorScope scope = TensorScope.open()) {
                Tensor logits = tensor(PyTorchGoldensSuite.pattern(80, 81, 4.0, 0.0), 8, 10).requiresGrad(true);
                Tensor loss = new CrossEntropyLoss(smoothing).forward(logits, labels);
                loss.backward();
                // A log-sum-exp per row and a mean over 8 rows in float32: rtol 1e-5.
                assertClose(new double[]{c.get("loss").getAsDouble()}, new float[]{loss.item()}, 1e-5, 1e-6,
                        "loss, label_smoothing " + smoothing);
                // softmax - target per element, over 8 rows: atol 1e-7 against values of 1e-2.
                assertClose(floats(c.get("grad")), logits.grad().toArray(), 1e-5, 1e-7, "grad, label_smoothing " + smoothing);
            }
        }
    }

    // ------------------------------------------------------------------ optimizers

    @Test
    @DisplayName("SGD, Adam and AdamW with two parameter groups (own lr, momentum, Nesterov, weight decay, betas, eps) match PyTorch over 3 steps")
    void parameterGroups() {
        JsonObject c = goldens.getAsJsonObject("optimizer_groups");
        runGroups("sgd", c, (a, b) -> SGD.builder().lr(0.1f).momentum(0.9f).weightDecay(0.01f)
                .group(ParamGroup.of(a)).group(ParamGroup.of(b).lr(0.05f).momentum(0.5f).weightDecay(0f)).build());
        runGroups("sgd_nesterov", c, (a, b) -> SGD.builder().lr(0.2f).momentum(0.8f).weightDecay(0.001f)
                .group(ParamGroup.of(a).weightDecay(0f).nesterov(true)).group(ParamGroup.of(b).momentum(0f)).build());
        runGroups("adam", c, (a, b) -> Adam.builder().lr(0.001f)
                .group(ParamGroup.of(a)).group(ParamGroup.of(b).lr(0.01f).betas(0.8f, 0.99f).weightDecay(0.1f)).build());
        runGroups("adamw", c, (a, b) -> AdamW.builder().lr(0.01f)
                .group(ParamGroup.of(a).weightDecay(0f)).group(ParamGroup.of(b).eps(1e-6f)).build());
    }

    private void runGroups(String name, JsonObject goldens, java.util.function.BiFunction<Tensor, Tensor, Optimizer> make) {
        JsonObject want = goldens.getAsJsonObject(name);
        try (TensorScope scope = TensorScope.open()) {
            Tensor a = Tensor.unscoped(device(), PyTorchGoldensSuite.pattern(5, 300, 1, 0), 5).requiresGrad(true);
            Tensor b = Tensor.unscoped(device(), PyTorchGoldensSuite.pattern(6, 301, 1, 0), 3, 2).requiresGrad(true);
            try (Optimizer opt = make.apply(a, b)) {
                for (int step = 0; step < 3; step++) {
                    a.setGrad(tensor(PyTorchGoldensSuite.pattern(5, 310 + step, 1, 0), 5));
                    b.setGrad(tensor(PyTorchGoldensSuite.pattern(6, 320 + step, 1, 0), 3, 2));
                    opt.step();
                }
                // A few multiply-adds (Adam: a square root and a division) per element: rtol 1e-5, atol 1e-7.
                assertClose(floats(want.get("a")), a.toArray(), 1e-5, 1e-7, name + " group 0");
                assertClose(floats(want.get("b")), b.toArray(), 1e-5, 1e-7, name + " group 1");
            } finally {
                a.close();
                b.close();
            }
        }
    }

    // ------------------------------------------------------------------ ResNet

    @Test
    @DisplayName("ResNet: 174,970 parameters, 15 batch norms, PyTorch's state-dict names and initial weights bit for bit (seeds 0 and 7)")
    void resnetInitialWeights() {
        JsonObject r = goldens.getAsJsonObject("resnet");
        for (Map.Entry<String, JsonElement> seed : r.getAsJsonObject("init_sha256").entrySet()) {
            try (ResNet net = new ResNet(device(), Generator.pytorch(Long.parseLong(seed.getKey())))) {
                assertEquals(r.get("parameters").getAsLong(), net.parameterCount(), "parameters");
                assertEquals(r.get("batch_norms").getAsInt(),
                        net.namedModules().values().stream().filter(m -> m instanceof BatchNorm).count(), "batch norms");
                StateDict sd = net.stateDict();
                List<String> keys = new ArrayList<>();
                for (String k : sd.entries().keySet()) {
                    if (!k.endsWith("num_batches_tracked")) {
                        keys.add(k);
                    }
                }
                assertEquals(new ArrayList<>(seed.getValue().getAsJsonObject().keySet()), keys, "state-dict keys, in order");
                for (Map.Entry<String, JsonElement> h : seed.getValue().getAsJsonObject().entrySet()) {
                    assertEquals(h.getValue().getAsString(), PyTorchGoldensSuite.sha256(sd.get(h.getKey()).data()),
                            "seed " + seed.getKey() + ": initial " + h.getKey());
                }
            }
        }
    }

    @Test
    @DisplayName("one ResNet SGD step (momentum, weight decay on conv/linear weights only) matches PyTorch: loss, every gradient, parameters, running statistics, eval logits")
    void resnetTrainingStep() {
        JsonObject c = goldens.getAsJsonObject("resnet");
        int batch = c.get("batch").getAsInt();
        try (TensorScope scope = TensorScope.open(); ResNet net = new ResNet(device(), new Generator(0))) {
            int i = 0;
            for (Map.Entry<String, Tensor> p : net.namedParameters().entrySet()) {
                String name = p.getKey();
                int[] s = p.getValue().shape();
                if (!(name.contains(".bn") || name.startsWith("bn") || name.contains("shortcut.1"))) {
                    double bound = s.length > 1 ? 1 / Math.sqrt(Shapes.numel(s) / (double) s[0]) : 0.1;
                    p.getValue().copyFrom(PyTorchGoldensSuite.pattern((int) Shapes.numel(s), 400 + i, bound, 0.0));
                }
                i++;
            }
            Tensor images = tensor(PyTorchGoldensSuite.pattern(batch * 784, 500, 1.0, 0.0), batch, 1, 28, 28);
            int[] labels = ints(c.get("labels"));
            List<Tensor> decay = new ArrayList<>();
            List<Tensor> noDecay = new ArrayList<>();
            for (Tensor p : net.parameters()) {
                (p.dim() > 1 ? decay : noDecay).add(p);
            }
            try (SGD sgd = SGD.builder().lr(0.1f).momentum(0.9f).weightDecay(5e-4f)
                    .group(ParamGroup.of(decay)).group(ParamGroup.of(noDecay).weightDecay(0f)).build()) {
                Tensor loss = new CrossEntropyLoss().forward(net.forward(images), labels);
                loss.backward();
                // Sixteen layers of float32 sums: rtol 1e-5 on the loss.
                assertClose(new double[]{c.get("loss").getAsDouble()}, new float[]{loss.item()}, 1e-5, 1e-6, "loss");
                for (Map.Entry<String, JsonElement> g : c.getAsJsonObject("grads").entrySet()) {
                    // Gradients back through 15 batch norms, whose (g - mean(g) - x^ mean(g x^)) / std cancels: as
                    // for LeNet, 1e-3 on the sum and the first values, 2e-3 on the sum of squares.
                    compareSummary("grad " + g.getKey(), g.getValue().getAsJsonObject(),
                            net.namedParameters().get(g.getKey()).grad().toArray(), 1e-3, 2e-3, 1e-3);
                }
                sgd.step();
            }
            StateDict after = net.stateDict();
            for (Map.Entry<String, JsonElement> s : c.getAsJsonObject("state_after_step").entrySet()) {
                // Parameters after the step inherit the gradients' 1e-3 where they started at 0 (batch-norm biases);
                // running statistics are sums over the batch: 1e-3 throughout.
                compareSummary("after step " + s.getKey(), s.getValue().getAsJsonObject(), after.get(s.getKey()).data(),
                        1e-3, 1e-3, 1e-3);
            }
            assertEquals(1L, after.get("layer3.1.bn2.num_batches_tracked").longValue(), "num_batches_tracked");
            net.eval();
            try (GradMode g = GradMode.noGrad()) {
                // Eval through the updated weights and running statistics: 1e-4 of the logits' scale.
                float[] logits = net.forward(images).toArray();
                float[] want = floats(c.get("eval_logits_after_step"));
                double rms = 0;
                for (float v : want) {
                    rms += v * v;
                }
                rms = Math.sqrt(rms / want.length);
                assertClose(want, logits, 1e-4, 1e-4 * rms, "eval logits after the step");
            }
        }
    }



}
