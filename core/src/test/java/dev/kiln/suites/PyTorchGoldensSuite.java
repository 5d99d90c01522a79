package dev.kiln.suites;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.kiln.core.Shapes;
import dev.kiln.core.Tensor;
import dev.kiln.core.TensorScope;
import dev.kiln.models.LeNet5;
import dev.kiln.nn.BatchNorm;
import dev.kiln.nn.BatchNorm1d;
import dev.kiln.nn.BatchNorm2d;
import dev.kiln.nn.CrossEntropyLoss;
import dev.kiln.nn.StateDict;
import dev.kiln.nn.functional.Conv2dOp;
import dev.kiln.optim.SGD;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Kiln against PyTorch's own numbers ({@code goldens/pytorch-goldens.json}, written by
 * {@code tools/pytorch_goldens.py} where torch is installed). Inputs are not stored: both sides compute them with
 * {@link #pattern}. Tolerance: float32 results from different summation orders, |got - torch| <= 1e-5 + 1e-4 |torch|
 * element-wise; sums compared within 1e-4 of sqrt(n * sumsq).
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
public class PyTorchGoldensSuite extends DeviceSuite {

    private static final String RESOURCE = "/goldens/pytorch-goldens.json";
    private JsonObject goldens;

    @BeforeAll
    void load() throws IOException {
        try (InputStream in = PyTorchGoldensSuite.class.getResourceAsStream(RESOURCE)) {
            if (in != null) {
                goldens = JsonParser.parseReader(new InputStreamReader(in, StandardCharsets.UTF_8)).getAsJsonObject();
            }
        }
    }

    private JsonObject goldens() {
        assumeTrue(goldens != null, "no PyTorch goldens yet (" + RESOURCE + "): run tools/pytorch_goldens.py where torch "
                + "is installed (the GPU machine has it) and commit its output");
        return goldens;
    }

    /** The same values as pattern() in tools/pytorch_goldens.py. */
    static float[] pattern(int n, int seed, double scale, double offset) {
        float[] out = new float[n];
        for (int i = 0; i < n; i++) {
            out[i] = (float) (offset + scale * Math.sin(seed * 1.7 + i * 0.7311) * Math.cos(i * 0.0173 + seed));
        }
        return out;
    }

    private Tensor patternTensor(int[] shape, int seed, double scale, double offset) {
        return tensor(pattern((int) Shapes.numel(shape), seed, scale, offset), shape);
    }

    private static float[] floats(JsonElement e) {
        JsonArray a = e.getAsJsonArray();
        float[] out = new float[a.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = a.get(i).getAsFloat();
        }
        return out;
    }

    private static int[] ints(JsonElement e) {
        JsonArray a = e.getAsJsonArray();
        int[] out = new int[a.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = a.get(i).getAsInt();
        }
        return out;
    }

    private static void close(String what, JsonElement torch, float[] got) {
        assertClose(floats(torch), got, 1e-4, 1e-5, what + " vs PyTorch");
    }

    @Test
    @DisplayName("batch norm in every mode matches PyTorch: running stats per step, outputs, gradients, eval")
    void batchNorm() {
        for (Map.Entry<String, JsonElement> e : goldens().getAsJsonObject("batch_norm").entrySet()) {
            String name = e.getKey();
            JsonObject c = e.getValue().getAsJsonObject();
            int[] shape = ints(c.get("shape"));
            int channels = shape[1];
            boolean affine = c.get("affine").getAsBoolean();
            boolean track = c.get("track").getAsBoolean();
            Float momentum = c.get("momentum").isJsonNull() ? null : c.get("momentum").getAsFloat();
            try (TensorScope scope = TensorScope.open();
                 BatchNorm bn = c.get("kind").getAsString().equals("BatchNorm2d")
                         ? new BatchNorm2d(device(), channels, 1e-5f, momentum, affine, track)
                         : new BatchNorm1d(device(), channels, 1e-5f, momentum, affine, track)) {
                if (affine) {
                    bn.weight().copyFrom(pattern(channels, 11, 1.0, 1.0));
                    bn.bias().copyFrom(pattern(channels, 12, 0.5, 0.0));
                }
                Tensor x = null;
                Tensor y = null;
                for (int k = 0; k < 3; k++) {
                    x = patternTensor(shape, 20 + k, 1.0 + k, k).requiresGrad(true);
                    y = bn.forward(x);
                    y.backward(patternTensor(shape, 30 + k, 1.0, 0.0));
                    if (track) {
                        JsonObject r = c.getAsJsonArray("running").get(k).getAsJsonObject();
                        close(name + " step " + k + " running_mean", r.get("mean"), bn.runningMean().toArray());
                        close(name + " step " + k + " running_var", r.get("var"), bn.runningVar().toArray());
                        assertEquals(r.get("num_batches_tracked").getAsLong(), bn.numBatchesTracked(), name);
                    }
                }
                close(name + " y", c.get("last_y"), y.toArray());
                close(name + " grad_x", c.get("last_grad_x"), x.grad().toArray());
                if (affine) {
                    // Not zeroed between steps on either side: three steps' worth of accumulated gradient.
                    close(name + " grad_weight", c.get("last_grad_weight"), bn.weight().grad().toArray());
                    close(name + " grad_bias", c.get("last_grad_bias"), bn.bias().grad().toArray());
                }
                bn.eval();
                Tensor xe = patternTensor(shape, 40, 1.5, 0.5).requiresGrad(true);
                Tensor ye = bn.forward(xe);
                ye.backward(patternTensor(shape, 41, 1.0, 0.0));
                close(name + " eval y", c.get("eval_y"), ye.toArray());
                close(name + " eval grad_x", c.get("eval_grad_x"), xe.grad().toArray());
            }
        }
    }

    @Test
    @DisplayName("conv2d forward and backward match PyTorch")
    void conv2d() {
        for (Map.Entry<String, JsonElement> e : goldens().getAsJsonObject("conv2d").entrySet()) {
            JsonObject c = e.getValue().getAsJsonObject();
            int[] g = ints(c.get("geometry"));
            int n = g[0], cin = g[1], h = g[2], w = g[3], cout = g[4], k = g[5], stride = g[6], pad = g[7], dil = g[8];
            try (TensorScope scope = TensorScope.open()) {
                Tensor x = patternTensor(new int[]{n, cin, h, w}, 50, 1.0, 0.0).requiresGrad(true);
                Tensor wt = patternTensor(new int[]{cout, cin, k, k}, 51, 0.3, 0.0).requiresGrad(true);
                Tensor b = patternTensor(new int[]{cout}, 52, 1.0, 0.0).requiresGrad(true);
                Tensor y = Conv2dOp.conv2d(x, wt, b, stride, stride, pad, pad, dil, dil);
                y.backward(patternTensor(y.shape(), 53, 1.0, 0.0));
                close(e.getKey() + " y", c.get("y"), y.toArray());
                close(e.getKey() + " grad_x", c.get("grad_x"), x.grad().toArray());
                close(e.getKey() + " grad_weight", c.get("grad_weight"), wt.grad().toArray());
                close(e.getKey() + " grad_bias", c.get("grad_bias"), b.grad().toArray());
            }
        }
    }

    @Test
    @DisplayName("one LeNet-BN SGD step matches PyTorch: loss, every gradient, every updated parameter and buffer")
    void lenetStep() {
        JsonObject c = goldens().getAsJsonObject("lenet_step");
        int batch = c.get("batch").getAsInt();
        try (TensorScope scope = TensorScope.open(); LeNet5 net = new LeNet5(device(), new dev.kiln.core.Generator(0))) {
            int i = 0;
            for (Map.Entry<String, Tensor> p : net.namedParameters().entrySet()) {
                int[] s = p.getValue().shape();
                if (!p.getKey().startsWith("bn")) {
                    double bound = s.length > 1 ? 1 / Math.sqrt(Shapes.numel(s) / (double) s[0]) : 0.1;
                    p.getValue().copyFrom(pattern((int) Shapes.numel(s), 100 + i, bound, 0.0));
                }
                i++;
            }
            Tensor images = patternTensor(new int[]{batch, 1, 28, 28}, 200, 1.0, 0.0);
            float[] labels = floats(c.get("labels"));
            try (SGD sgd = new SGD(net.parameters(), 0.1f, 0.9f, 0f, false, 0f)) {
                Tensor loss = new CrossEntropyLoss().forward(net.forward(images), tensor(labels, batch));
                loss.backward();
                assertClose(new double[]{c.get("loss").getAsDouble()}, new float[]{loss.item()}, 1e-5, 1e-6, "loss");
                for (Map.Entry<String, JsonElement> g : c.getAsJsonObject("grads").entrySet()) {
                    compareSummary("grad " + g.getKey(), g.getValue().getAsJsonObject(),
                            net.namedParameters().get(g.getKey()).grad().toArray());
                }
                sgd.step();
            }
            StateDict after = net.stateDict();
            for (Map.Entry<String, JsonElement> s : c.getAsJsonObject("state_after_step").entrySet()) {
                compareSummary("after step " + s.getKey(), s.getValue().getAsJsonObject(), after.get(s.getKey()).data());
            }
        }
    }

    private static void compareSummary(String what, JsonObject torch, float[] got) {
        double sum = 0;
        double sumsq = 0;
        for (float v : got) {
            sum += v;
            sumsq += (double) v * v;
        }
        double scale = Math.sqrt(got.length * Math.max(sumsq, 1e-30));
        double wantSum = torch.get("sum").getAsDouble();
        double wantSq = torch.get("sumsq").getAsDouble();
        if (Math.abs(sum - wantSum) > 1e-4 * scale + 1e-7) {
            fail(what + ": sum " + sum + ", PyTorch " + wantSum);
        }
        if (Math.abs(sumsq - wantSq) > 2e-4 * Math.max(sumsq, wantSq) + 1e-12) {
            fail(what + ": sum of squares " + sumsq + ", PyTorch " + wantSq);
        }
        float[] head = java.util.Arrays.copyOf(got, Math.min(8, got.length));
        assertClose(floats(torch.get("head")), head, 1e-4, 1e-5, what + " first values vs PyTorch");
    }
}
