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
import dev.kiln.io.SafeTensors;
import dev.kiln.models.LeNet5;
import dev.kiln.nn.BatchNorm;
import dev.kiln.nn.BatchNorm1d;
import dev.kiln.nn.BatchNorm2d;
import dev.kiln.nn.Conv2d;
import dev.kiln.nn.CrossEntropyLoss;
import dev.kiln.nn.Linear;
import dev.kiln.nn.StateDict;
import dev.kiln.nn.functional.Conv2dOp;
import dev.kiln.nn.functional.LossOps;
import dev.kiln.nn.functional.PoolOps;
import dev.kiln.optim.Adam;
import dev.kiln.optim.AdamW;
import dev.kiln.optim.Optimizer;
import dev.kiln.optim.SGD;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;

import static dev.kiln.suites.GoldenJson.floats;
import static dev.kiln.suites.GoldenJson.ints;
import static dev.kiln.suites.GoldenJson.compareSummary;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Kiln against PyTorch's own numbers, on the device under test. The goldens ({@code goldens/pytorch-goldens.json},
 * {@code goldens/pytorch-random.json}, {@code goldens/lenet-post.safetensors}) are written by
 * {@code tools/pytorch_goldens.py} with PyTorch 1.13 on the CPU and committed, so this suite runs everywhere, with no
 * PyTorch installed. Kernel inputs are not stored: both sides compute them with {@link #pattern}.
 *
 * <p>Tolerances are element-wise, {@code |kiln - torch| <= atol + rtol * |torch|}, and each is stated beside its
 * assertion with the reason. The common reason: both sides compute in float32 but sum in different orders (Kiln's
 * CPU backend accumulates batch-norm statistics in double, blocks its GEMMs differently, and so on), so results agree
 * to a few units in the last place of the largest terms, not bit for bit. Where an op involves no sum (max pooling,
 * the random streams) the comparison is exact.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
public class PyTorchGoldensSuite extends DeviceSuite {

    private JsonObject goldens;
    private JsonObject randomGoldens;

    @BeforeAll
    void load() throws IOException {
        goldens = readJson("/goldens/pytorch-goldens.json");
        randomGoldens = readJson("/goldens/pytorch-random.json");
    }

    private static JsonObject readJson(String resource) throws IOException {
        try (InputStream in = PyTorchGoldensSuite.class.getResourceAsStream(resource)) {
            assertNotNull(in, resource + " is missing from core's test resources: run /usr/bin/python3 "
                    + "tools/pytorch_goldens.py (any Python with torch) and commit its output");
            return JsonParser.parseReader(new InputStreamReader(in, StandardCharsets.UTF_8)).getAsJsonObject();
        }
    }

    /** The same values as pattern() in tools/goldens_common.py. */
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



    /**
     * Compares with a golden that is either every value or, for large tensors, every k-th value plus the sum and
     * sum of squares of all of them (so every element still counts).
     */
    private static void close(String what, JsonElement torch, float[] got, double rtol, double atol) {
        if (torch.isJsonArray()) {
            assertClose(floats(torch), got, rtol, atol, what + " vs PyTorch");
            return;
        }
        JsonObject s = torch.getAsJsonObject();
        assertEquals(s.get("n").getAsInt(), got.length, what + ": element count");
        int stride = s.get("stride").getAsInt();
        float[] sampled = new float[(got.length + stride - 1) / stride];
        for (int i = 0; i < sampled.length; i++) {
            sampled[i] = got[i * stride];
        }
        assertClose(floats(s.get("values")), sampled, rtol, atol, what + " (every " + stride + "th value) vs PyTorch");
        compareSums(what, s.get("sum").getAsDouble(), s.get("sumsq").getAsDouble(), got);
    }

    /**
     * Sums over n float32 values each within a few ulps of PyTorch's differ by at most about n * ulp * max|x|; the
     * bound used, 1e-5 * sqrt(n * sumsq) (>= 1e-5 * sum|x|), holds that with a wide margin and still catches a
     * single element off by more than 1e-5 of the tensor's norm.
     */
    private static void compareSums(String what, double wantSum, double wantSq, float[] got) {
        double sum = 0;
        double sumsq = 0;
        for (float v : got) {
            sum += v;
            sumsq += (double) v * v;
        }
        double scale = Math.sqrt(got.length * Math.max(sumsq, 1e-30));
        if (Math.abs(sum - wantSum) > 1e-5 * scale + 1e-7) {
            fail(what + ": sum " + sum + ", PyTorch " + wantSum);
        }
        if (Math.abs(sumsq - wantSq) > 1e-5 * Math.max(sumsq, wantSq) + 1e-12) {
            fail(what + ": sum of squares " + sumsq + ", PyTorch " + wantSq);
        }
    }

    /** SHA-256 of float32 values, little-endian, as the goldens script hashes them. */
    static String sha256(float[] values) {
        ByteBuffer b = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (float v : values) {
            b.putFloat(v);
        }
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b.array()));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    // ------------------------------------------------------------------ batch norm

    @Test
    @DisplayName("batch norm, every mode (1d/2d, affine, tracking, momentum 0.1/None/0/1): running stats per step, outputs, gradients, eval")
    void batchNorm() {
        int cases = 0;
        for (Map.Entry<String, JsonElement> e : goldens.getAsJsonObject("batch_norm").entrySet()) {
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
                        // Running statistics: means of at most 24 values and one blend; Kiln sums in double,
                        // PyTorch in float. Seen: 2e-7 relative.
                        close(name + " step " + k + " running_mean", r.get("mean"), bn.runningMean().toArray(), 1e-5, 1e-6);
                        close(name + " step " + k + " running_var", r.get("var"), bn.runningVar().toArray(), 1e-5, 1e-6);
                        assertEquals(r.get("num_batches_tracked").getAsLong(), bn.numBatchesTracked(), name);
                    }
                }
                // Outputs and gradients are divided by the batch std, which magnifies the summation-order
                // differences of the statistics (inputs here have spread up to 3): 1e-4 relative, 1e-5 absolute
                // (seen: 5e-7 absolute on values up to 3, 1e-6 on the accumulated weight/bias gradients up to 17).
                close(name + " y", c.get("last_y"), y.toArray(), 1e-4, 1e-5);
                close(name + " grad_x", c.get("last_grad_x"), x.grad().toArray(), 1e-4, 1e-5);
                if (affine) {
                    // Not zeroed between steps on either side: three steps' worth of accumulated gradient.
                    close(name + " grad_weight", c.get("last_grad_weight"), bn.weight().grad().toArray(), 1e-4, 1e-5);
                    close(name + " grad_bias", c.get("last_grad_bias"), bn.bias().grad().toArray(), 1e-4, 1e-5);
                }
                bn.eval();
                Tensor xe = patternTensor(shape, 40, 1.5, 0.5).requiresGrad(true);
                Tensor ye = bn.forward(xe);
                ye.backward(patternTensor(shape, 41, 1.0, 0.0));
                close(name + " eval y", c.get("eval_y"), ye.toArray(), 1e-4, 1e-5);
                close(name + " eval grad_x", c.get("eval_grad_x"), xe.grad().toArray(), 1e-4, 1e-5);
            }
            cases++;
        }
        assertEquals(30, cases, "batch-norm cases in the goldens (3 shapes x 2 affine x (4 momenta tracked + untracked))");
    }

    // ------------------------------------------------------------------ kernels

    @Test
    @DisplayName("conv2d forward and backward match PyTorch (4 geometries, LeNet's among them)")
    void conv2d() {
        for (Map.Entry<String, JsonElement> e : goldens.getAsJsonObject("conv2d").entrySet()) {
            JsonObject c = e.getValue().getAsJsonObject();
            int[] g = ints(c.get("geometry"));
            int n = g[0], cin = g[1], h = g[2], w = g[3], cout = g[4], k = g[5], stride = g[6], pad = g[7], dil = g[8];
            try (TensorScope scope = TensorScope.open()) {
                Tensor x = patternTensor(new int[]{n, cin, h, w}, 50, 1.0, 0.0).requiresGrad(true);
                Tensor wt = patternTensor(new int[]{cout, cin, k, k}, 51, 0.3, 0.0).requiresGrad(true);
                Tensor b = patternTensor(new int[]{cout}, 52, 1.0, 0.0).requiresGrad(true);
                Tensor y = Conv2dOp.conv2d(x, wt, b, stride, stride, pad, pad, dil, dil);
                y.backward(patternTensor(y.shape(), 53, 1.0, 0.0));
                // Dot products of up to 150 terms (forward) and up to 2*28*28 terms (weight gradient) of size ~1,
                // summed in another order than PyTorch's (im2col GEMM blocks vs oneDNN): the absolute error grows
                // with the number of terms, so rtol 1e-4 and atol 1e-4 (seen: 1.4e-6 on outputs up to 2.5; 3.4e-4 on
                // weight gradients up to 270, 1.3e-6 of the largest).
                close(e.getKey() + " y", c.get("y"), y.toArray(), 1e-4, 1e-4);
                close(e.getKey() + " grad_x", c.get("grad_x"), x.grad().toArray(), 1e-4, 1e-4);
                close(e.getKey() + " grad_weight", c.get("grad_weight"), wt.grad().toArray(), 1e-4, 1e-4);
                close(e.getKey() + " grad_bias", c.get("grad_bias"), b.grad().toArray(), 1e-4, 1e-4);
            }
        }
    }

    @Test
    @DisplayName("average and max pooling forward and backward match PyTorch")
    void pool2d() {
        for (Map.Entry<String, JsonElement> e : goldens.getAsJsonObject("pool2d").entrySet()) {
            JsonObject c = e.getValue().getAsJsonObject();
            int[] g = ints(c.get("geometry"));
            boolean max = c.get("kind").getAsString().equals("max");
            try (TensorScope scope = TensorScope.open()) {
                Tensor x = patternTensor(new int[]{g[0], g[1], g[2], g[3]}, 60, 1.0, 0.0).requiresGrad(true);
                Tensor y = max ? PoolOps.maxPool2d(x, g[4], g[4], g[5], g[5], g[6], g[6])
                        : PoolOps.avgPool2d(x, g[4], g[4], g[5], g[5], g[6], g[6]);
                y.backward(patternTensor(y.shape(), 61, 1.0, 0.0));
                if (max) {
                    // Max pooling selects and routes values, no arithmetic: exact (rtol 0, atol 0).
                    close(e.getKey() + " y", c.get("y"), y.toArray(), 0, 0);
                    close(e.getKey() + " grad_x", c.get("grad_x"), x.grad().toArray(), 0, 0);
                } else {
                    // A mean of at most 9 values and its gradient (g / 9, summed over overlapping windows): a few
                    // ulps, so rtol 1e-6 with atol 1e-7 for values near zero.
                    close(e.getKey() + " y", c.get("y"), y.toArray(), 1e-6, 1e-7);
                    close(e.getKey() + " grad_x", c.get("grad_x"), x.grad().toArray(), 1e-6, 1e-7);
                }
            }
        }
    }

    @Test
    @DisplayName("sigmoid and cross-entropy forward and backward match PyTorch")
    void sigmoidAndCrossEntropy() {
        JsonObject s = goldens.getAsJsonObject("sigmoid");
        try (TensorScope scope = TensorScope.open()) {
            int[] shape = ints(s.get("shape"));
            Tensor x = patternTensor(shape, 70, s.get("scale").getAsDouble(), 0.0).requiresGrad(true);
            Tensor y = x.sigmoid();
            y.backward(patternTensor(shape, 71, 1.0, 0.0));
            // One exp and one division per element: within 2 ulps, so rtol 1e-6; atol 1e-9 for the tail near 0
            // (sigmoid(-12) = 6e-6).
            close("sigmoid y", s.get("y"), y.toArray(), 1e-6, 1e-9);
            // The gradient g * y * (1 - y): for y near 1, 1 - y cancels, and one ulp of y (6e-8) is an absolute
            // error of up to 6e-8 * |g| that no float32 implementation avoids; |g| <= 1 here, two ulps allowed:
            // atol 1.5e-7 (seen: 8.9e-8).
            close("sigmoid grad_x", s.get("grad_x"), x.grad().toArray(), 1e-6, 1.5e-7);
        }
        JsonObject c = goldens.getAsJsonObject("cross_entropy");
        try (TensorScope scope = TensorScope.open()) {
            int[] shape = ints(c.get("shape"));
            float[] labels = floats(c.get("labels"));
            Tensor logits = patternTensor(shape, 80, c.get("scale").getAsDouble(), 0.0).requiresGrad(true);
            Tensor loss = LossOps.crossEntropy(logits, tensor(labels, labels.length));
            loss.backward();
            // log-sum-exp over 10 classes and a mean over 8 rows: rtol 1e-6 (seen: equal).
            assertClose(new double[]{c.get("loss").getAsDouble()}, new float[]{loss.item()}, 1e-6, 0, "cross-entropy loss");
            // (softmax - onehot) / N: rtol 1e-5, atol 1e-8 for the tiny probabilities of far-off classes.
            close("cross-entropy grad", c.get("grad"), logits.grad().toArray(), 1e-5, 1e-8);
        }
    }

    // ------------------------------------------------------------------ optimizers

    private void runOptimizer(String name, JsonObject c, java.util.function.Function<List<Tensor>, Optimizer> make,
                              double rtol, double atol) {
        try (TensorScope scope = TensorScope.open()) {
            Tensor p = Tensor.unscoped(device(), pattern(37, 90, 1.0, 0.0), 37);
            p.requiresGrad(true);
            try (Optimizer opt = make.apply(List.of(p))) {
                JsonArray steps = c.getAsJsonArray("after_step");
                for (int k = 0; k < steps.size(); k++) {
                    opt.zeroGrad();
                    Tensor g = patternTensor(new int[]{37}, 91 + k, 1.0 + 0.5 * k, 0.0);
                    p.sum().mul(0f).backward(); // creates p.grad (zeros) through autograd, then set it
                    p.grad().copyFrom(g.toArray());
                    opt.step();
                    close(name + " after step " + (k + 1), steps.get(k), p.toArray(), rtol, atol);
                }
            } finally {
                p.close();
            }
        }
    }

    @Test
    @DisplayName("SGD (momentum, dampening, Nesterov, weight decay) matches torch.optim.SGD step by step")
    void sgd() {
        for (Map.Entry<String, JsonElement> e : goldens.getAsJsonObject("sgd").entrySet()) {
            JsonObject c = e.getValue().getAsJsonObject();
            // Element-wise updates of a few float operations each, over 5 steps: Kiln may fuse a multiply-add that
            // PyTorch rounds twice, so a few ulps of values up to 1.7: rtol 1e-6, atol 3e-7 (seen: 1.2e-7, 1 ulp).
            runOptimizer("SGD " + e.getKey(), c, ps -> new SGD(ps, c.get("lr").getAsFloat(), c.get("momentum").getAsFloat(),
                    c.get("dampening").getAsFloat(), c.get("nesterov").getAsBoolean(), c.get("weight_decay").getAsFloat()),
                    1e-6, 3e-7);
        }
    }

    @Test
    @DisplayName("Adam and AdamW match torch.optim step by step")
    void adam() {
        for (Map.Entry<String, JsonElement> e : goldens.getAsJsonObject("adam").entrySet()) {
            JsonObject c = e.getValue().getAsJsonObject();
            float lr = c.get("lr").getAsFloat();
            float b1 = c.get("beta1").getAsFloat();
            float b2 = c.get("beta2").getAsFloat();
            float eps = c.get("eps").getAsFloat();
            float wd = c.get("weight_decay").getAsFloat();
            boolean decoupled = c.get("class").getAsString().equals("AdamW");
            // A square root, a division and the bias corrections (PyTorch computes those in double, Kiln in float)
            // per element: rtol 1e-5 on the parameter, atol 1e-7 (seen: 6e-8).
            runOptimizer(e.getKey(), c, ps -> decoupled ? new AdamW(ps, lr, b1, b2, eps, wd) : new Adam(ps, lr, b1, b2, eps, wd),
                    1e-5, 1e-7);
        }
    }

    // ------------------------------------------------------------------ LeNet

    @Test
    @DisplayName("one LeNet-BN SGD step matches PyTorch: loss, every gradient, every updated parameter and buffer")
    void lenetStep() {
        JsonObject c = goldens.getAsJsonObject("lenet_step");
        int batch = c.get("batch").getAsInt();
        try (TensorScope scope = TensorScope.open(); LeNet5 net = new LeNet5(device(), new Generator(0))) {
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
                // The loss after five layers of float32 sums: rtol 1e-5 (seen: 1e-7).
                assertClose(new double[]{c.get("loss").getAsDouble()}, new float[]{loss.item()}, 1e-5, 1e-6, "loss");
                for (Map.Entry<String, JsonElement> g : c.getAsJsonObject("grads").entrySet()) {
                    float[] got = net.namedParameters().get(g.getKey()).grad().toArray();
                    if (BIASES_BEFORE_BATCH_NORM.contains(g.getKey())) {
                        // Batch norm subtracts the batch mean, so the bias before it has gradient exactly 0 in exact
                        // arithmetic; both sides return rounding noise (PyTorch's: at most 5e-8, against gradients
                        // of 1e-4 to 1e-1 elsewhere). Noise is not compared with noise: it must stay below 1e-6.
                        for (float v : got) {
                            if (!(Math.abs(v) <= 1e-6)) {
                                fail("grad " + g.getKey() + " should be zero up to rounding, has " + v);
                            }
                        }
                        continue;
                    }
                    // Whole-network gradients pass back through sigmoids (whose y(1 - y) loses relative precision
                    // where they saturate, batch 8 saturates some) and BN's (g - mean(g) - x^ mean(g x^)) / std,
                    // which cancels: seen 4e-4 on bn3.weight's sum of squares (2e-4 on conv1.weight, dense1.weight),
                    // 1.4e-4 of the norm on bn1.bias's sum, 7e-5 of the rms on one bn1.bias entry; dense3 agrees to
                    // 1e-6. Tolerance 1e-3 on the sum and first values, 2e-3 on the sum of squares.
                    compareSummary("grad " + g.getKey(), g.getValue().getAsJsonObject(), got, 1e-3, 2e-3, 1e-3);
                }
                sgd.step();
            }
            StateDict after = net.stateDict();
            for (Map.Entry<String, JsonElement> s : c.getAsJsonObject("state_after_step").entrySet()) {
                // Parameters and running statistics after the step. A batch-norm bias starts at 0, so after one
                // step it is -0.1 times its gradient and inherits the gradient's 1e-3; the others agree to 1e-6.
                compareSummary("after step " + s.getKey(), s.getValue().getAsJsonObject(), after.get(s.getKey()).data(),
                        1e-3, 1e-3, 1e-3);
            }
        }
    }

    private static final java.util.Set<String> BIASES_BEFORE_BATCH_NORM =
            java.util.Set.of("conv1.bias", "conv2.bias", "dense1.bias", "dense2.bias");


    @Test
    @DisplayName("torch.manual_seed(0); LeNetModel(); 20 SGD steps on randn/randint batches: same init, losses, running stats, eval logits")
    void lenetTwentyStepsFromOneSeed() {
        JsonObject c = goldens.getAsJsonObject("lenet_train");
        int batch = c.get("batch").getAsInt();
        Generator gen = Generator.pytorch(c.get("seed").getAsLong());
        try (LeNet5 net = new LeNet5(device(), gen);
             SGD sgd = new SGD(net.parameters(), c.get("lr").getAsFloat(), c.get("momentum").getAsFloat(), 0f, false, 0f)) {
            StateDict init = net.stateDict();
            for (Map.Entry<String, JsonElement> h : c.getAsJsonObject("init_sha256").entrySet()) {
                // Initialisation is drawn from PyTorch's stream: bit for bit.
                assertEquals(h.getValue().getAsString(), sha256(init.get(h.getKey()).data()), "initial " + h.getKey());
            }
            float[] losses = new float[c.get("steps").getAsInt()];
            for (int step = 0; step < losses.length; step++) {
                try (TensorScope scope = TensorScope.open()) {
                    Tensor images = Tensor.randn(device(), gen, batch, 1, 28, 28); // torch.randn(16, 1, 28, 28)
                    float[] labels = new float[batch];
                    for (int i = 0; i < batch; i++) {
                        labels[i] = gen.randint(0, 10); // torch.randint(0, 10, (16,))
                    }
                    sgd.zeroGrad();
                    Tensor loss = new CrossEntropyLoss().forward(net.forward(images), tensor(labels, batch));
                    loss.backward();
                    sgd.step();
                    losses[step] = loss.item();
                }
            }
            // Same data, same start: the trajectories differ only by float32 summation order, which 20 steps of SGD
            // with momentum 0.9 could amplify (seen: 2e-7 relative): rtol 1e-4 on every loss.
            assertClose(floats(c.get("losses")), losses, 1e-4, 1e-6, "loss per step");
            StateDict after = net.stateDict();
            for (Map.Entry<String, JsonElement> s : c.getAsJsonObject("state_after").entrySet()) {
                // After 20 steps (seen: 3e-6 of the norm at most, in bn2's running mean): 1e-4 on all three.
                compareSummary("after 20 steps " + s.getKey(), s.getValue().getAsJsonObject(), after.get(s.getKey()).data(),
                        1e-4, 1e-4, 1e-4);
            }
            net.eval();
            try (GradMode g = GradMode.noGrad(); TensorScope scope = TensorScope.open()) {
                float[] logits = net.forward(patternTensor(new int[]{8, 1, 28, 28}, 210, 1.0, 0.0)).toArray();
                // Logits after 20 steps: the same drift, rtol 1e-4 and atol 1e-5 on logits up to 1.7 (seen: 1.5e-6).
                close("eval logits after 20 steps", c.get("eval_logits"), logits, 1e-4, 1e-5);
            }
        }
    }

    @Test
    @DisplayName("a state dict saved from the post's PyTorch LeNetModel loads into LeNet5 and gives PyTorch's logits")
    void lenetFromThePostsStateDict() throws IOException {
        JsonObject c = goldens.getAsJsonObject("lenet_post_file");
        // The resource may sit inside core's test-jar: read it through a temporary file.
        Path file = java.nio.file.Files.createTempFile("lenet-post", ".safetensors");
        StateDict sd;
        try (InputStream in = PyTorchGoldensSuite.class.getResourceAsStream("/" + c.get("file").getAsString())) {
            assertNotNull(in, c.get("file").getAsString() + " is missing from core's test resources");
            java.nio.file.Files.copy(in, file, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
            sd = SafeTensors.read(file).tensors();
        } finally {
            java.nio.file.Files.deleteIfExists(file);
        }
        List<String> torchKeys = c.getAsJsonArray("keys").asList().stream().map(JsonElement::getAsString).toList();
        try (LeNet5 net = new LeNet5(device(), new Generator(1))) {
            assertEquals(torchKeys, List.copyOf(net.stateDict().entries().keySet()),
                    "LeNet5's state-dict keys, in order, are LeNetModel's");
            net.loadStateDict(sd); // strict: every key present, none unexpected
            net.eval();
            try (GradMode g = GradMode.noGrad(); TensorScope scope = TensorScope.open()) {
                float[] logits = net.forward(patternTensor(new int[]{c.get("batch").getAsInt(), 1, 28, 28},
                        c.get("input_seed").getAsInt(), 1.0, 0.0)).toArray();
                // Same weights, one eval forward: summation order only, rtol 1e-5 and atol 1e-5 (seen: 1.2e-7).
                close("logits of the post's model", c.get("eval_logits"), logits, 1e-5, 1e-5);
            }
        }
        // The same file under the names Kiln saved before (fc1..fc3) loads into the same model.
        StateDict legacy = new StateDict();
        sd.entries().forEach((k, v) -> legacy.put(k.replaceFirst("^dense", "fc"), v));
        assertTrue(legacy.entries().containsKey("fc1.weight") && !legacy.entries().containsKey("dense1.weight"));
        try (LeNet5 net = new LeNet5(device(), new Generator(2))) {
            net.loadStateDict(legacy);
            net.eval();
            try (GradMode g = GradMode.noGrad(); TensorScope scope = TensorScope.open()) {
                float[] logits = net.forward(patternTensor(new int[]{c.get("batch").getAsInt(), 1, 28, 28},
                        c.get("input_seed").getAsInt(), 1.0, 0.0)).toArray();
                close("logits of the post's model saved under fc1..fc3", c.get("eval_logits"), logits, 1e-5, 1e-5);
            }
            // Both names for one tensor is ambiguous: refused, naming both, and the model is left as it was.
            StateDict both = new StateDict();
            sd.entries().forEach(both::put);
            both.put("fc1.bias", sd.get("dense1.bias"));
            float[] before = net.stateDict().get("dense1.bias").data();
            IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                    () -> net.loadStateDict(both));
            assertMessageContains(e, "fc1.bias", "dense1.bias");
            assertArrayEquals(before, net.stateDict().get("dense1.bias").data());
        }
    }

    // ------------------------------------------------------------------ default initialisation

    @Test
    @DisplayName("Generator.pytorch(s) initialises Linear, Conv2d, BatchNorm and LeNet5 as torch.manual_seed(s) does, bit for bit")
    void defaultInitialisationMatchesPyTorch() {
        JsonObject layers = randomGoldens.getAsJsonObject("layers");
        JsonObject lin = layers.getAsJsonObject("Linear_400_120_seed0");
        try (Linear l = new Linear(device(), Generator.pytorch(0), 400, 120)) {
            assertEquals(lin.get("weight_sha256").getAsString(), sha256(l.weight().toArray()), "Linear(400, 120).weight");
            assertEquals(lin.get("bias_sha256").getAsString(), sha256(l.bias().toArray()), "Linear(400, 120).bias");
        }
        JsonObject conv = layers.getAsJsonObject("Conv2d_6_16_5_seed1");
        try (Conv2d cv = new Conv2d(device(), Generator.pytorch(1), 6, 16, 5)) {
            assertEquals(conv.get("weight_sha256").getAsString(), sha256(cv.weight().toArray()), "Conv2d(6, 16, 5).weight");
            assertEquals(conv.get("bias_sha256").getAsString(), sha256(cv.bias().toArray()), "Conv2d(6, 16, 5).bias");
        }
        JsonObject bnGold = layers.getAsJsonObject("BatchNorm2d_6_seed2");
        Generator g2 = Generator.pytorch(2);
        try (BatchNorm2d bn = new BatchNorm2d(device(), 6)) {
            assertArrayEquals(floats(bnGold.get("weight")), bn.weight().toArray());
            assertArrayEquals(floats(bnGold.get("bias")), bn.bias().toArray());
            assertArrayEquals(floats(bnGold.get("running_mean")), bn.runningMean().toArray());
            assertArrayEquals(floats(bnGold.get("running_var")), bn.runningVar().toArray());
            float[] after = new float[4];
            g2.fillUniform(after, 0f, 1f);
            assertArrayEquals(floats(bnGold.get("rand_4_after")), after, "BatchNorm draws nothing from the stream");
        }
        for (Map.Entry<String, JsonElement> seed : randomGoldens.getAsJsonObject("lenet_init_sha256").entrySet()) {
            try (LeNet5 net = new LeNet5(device(), Generator.pytorch(Long.parseLong(seed.getKey())))) {
                StateDict sd = net.stateDict();
                for (Map.Entry<String, JsonElement> h : seed.getValue().getAsJsonObject().entrySet()) {
                    assertEquals(h.getValue().getAsString(), sha256(sd.get(h.getKey()).data()),
                            "seed " + seed.getKey() + ": " + h.getKey());
                }
            }
        }
    }
}
