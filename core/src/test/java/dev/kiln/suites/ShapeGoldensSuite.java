package dev.kiln.suites;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.kiln.core.Generator;
import dev.kiln.core.Shapes;
import dev.kiln.core.Tensor;
import dev.kiln.core.TensorScope;
import dev.kiln.nn.AdaptiveAvgPool2d;
import dev.kiln.nn.AdaptiveMaxPool2d;
import dev.kiln.nn.BatchNorm2d;
import dev.kiln.nn.Conv2d;
import dev.kiln.nn.Flatten;
import dev.kiln.nn.MaxPool2d;
import dev.kiln.nn.Module;
import dev.kiln.nn.ReLU;
import dev.kiln.nn.Sequential;
import dev.kiln.nn.Upsample;
import dev.kiln.nn.functional.Conv2dOp;
import dev.kiln.nn.functional.PoolOps;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;

import static dev.kiln.suites.GoldenJson.floats;
import static dev.kiln.suites.GoldenJson.ints;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Grouped and rectangular convolution, adaptive pooling, nearest upsampling, cat/stack/narrow and two small networks
 * built from them (a MobileNet-style depthwise-separable block, a two-level U-Net) against PyTorch's numbers
 * ({@code goldens/pytorch-shape-goldens.json}, written by {@code tools/pytorch_shape_goldens.py} with PyTorch 1.13 on
 * the CPU), on the device under test. Inputs and weights come from {@link PyTorchGoldensSuite#pattern} on both sides.
 *
 * <p>Tolerances: copies (cat, stack, narrow, upsampling forward, max pooling forward and indices) are exact; sums are
 * compared element-wise with {@code |kiln - torch| <= atol + rtol * |torch|}, rtol and atol stated per assertion: the
 * two sides add the same terms in different orders.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
public class ShapeGoldensSuite extends DeviceSuite {

    /** Convolutions and batch norms: sums of tens of products of values near 1, in another order than PyTorch's. */
    private static final double SUM_RTOL = 1e-4;
    private static final double SUM_ATOL = 2e-5;

    private JsonObject goldens;

    @BeforeAll
    void load() throws IOException {
        String resource = "/goldens/pytorch-shape-goldens.json";
        try (InputStream in = ShapeGoldensSuite.class.getResourceAsStream(resource)) {
            assertNotNull(in, resource + " is missing from core's test resources: run /usr/bin/python3 "
                    + "tools/pytorch_shape_goldens.py (any Python with torch) and commit its output");
            goldens = JsonParser.parseReader(new InputStreamReader(in, StandardCharsets.UTF_8)).getAsJsonObject();
        }
    }



    private Tensor pattern(int seed, double scale, int... shape) {
        return tensor(PyTorchGoldensSuite.pattern((int) Shapes.numel(shape), seed, scale, 0), shape);
    }

    private Tensor pattern(int seed, int... shape) {
        return pattern(seed, 1.0, shape);
    }

    private static void exact(JsonElement want, Tensor got, String what) {
        assertArrayEquals(floats(want), got.toArray(), what + " (exact)");
    }

    private static void sums(JsonElement want, Tensor got, String what) {
        assertClose(floats(want), got.toArray(), SUM_RTOL, SUM_ATOL, what);
    }

    // ------------------------------------------------------------------ convolution

    @Test
    @DisplayName("conv2d with groups, rectangular kernels and per-axis geometry: output and gradients")
    void groupedConvolution() {
        for (Map.Entry<String, JsonElement> e : goldens.getAsJsonObject("conv2d_grouped").entrySet()) {
            JsonObject c = e.getValue().getAsJsonObject();
            int[] g = ints(c.get("geometry"));
            boolean hasBias = c.get("bias").getAsBoolean();
            int n = g[0], cin = g[1], h = g[2], w = g[3], cout = g[4], kh = g[5], kw = g[6], groups = g[13];
            try (TensorScope scope = TensorScope.open()) {
                Tensor x = pattern(90, n, cin, h, w).requiresGrad(true);
                Tensor wt = pattern(91, 0.4, cout, cin / groups, kh, kw).requiresGrad(true);
                Tensor b = hasBias ? pattern(92, cout).requiresGrad(true) : null;
                Tensor y = Conv2dOp.conv2d(x, wt, b, g[7], g[8], g[9], g[10], g[11], g[12], groups);
                assertArrayEquals(ints(c.get("y_shape")), y.shape(), e.getKey() + " shape");
                y.backward(pattern(93, y.shape()));
                sums(c.get("y"), y, e.getKey() + " y");
                sums(c.get("grad_x"), x.grad(), e.getKey() + " grad x");
                sums(c.get("grad_weight"), wt.grad(), e.getKey() + " grad weight");
                if (hasBias) {
                    sums(c.get("grad_bias"), b.grad(), e.getKey() + " grad bias");
                }
            }
        }
    }

    @Test
    @DisplayName("Conv2d.builder: PyTorch's default initialisation of grouped and rectangular layers, bit for bit")
    void builderInitialisation() {
        for (Map.Entry<String, JsonElement> e : goldens.getAsJsonObject("conv2d_init").entrySet()) {
            JsonObject c = e.getValue().getAsJsonObject();
            int[] a = ints(c.get("args"));
            try (Conv2d conv = Conv2d.builder(a[1], a[2]).kernel(a[3], a[4]).groups(a[5]).bias(a[6] == 1)
                    .build(device(), Generator.pytorch(a[0]))) {
                assertArrayEquals(ints(c.get("weight_shape")), conv.weight().shape(), e.getKey() + " weight shape");
                assertEquals(c.get("weight_sha256").getAsString(), PyTorchGoldensSuite.sha256(conv.weight().toArray()),
                        e.getKey() + " weight");
                if (a[6] == 1) {
                    assertEquals(c.get("bias_sha256").getAsString(), PyTorchGoldensSuite.sha256(conv.bias().toArray()),
                            e.getKey() + " bias");
                } else {
                    assertNull(conv.bias(), e.getKey() + " has no bias");
                }
            }
        }
    }

    // ------------------------------------------------------------------ adaptive pooling and upsampling

    @Test
    @DisplayName("adaptive average and max pooling: output, PyTorch's indices, gradient")
    void adaptivePooling() {
        for (Map.Entry<String, JsonElement> e : goldens.getAsJsonObject("adaptive_pool").entrySet()) {
            JsonObject c = e.getValue().getAsJsonObject();
            int[] g = ints(c.get("geometry"));
            boolean max = c.get("kind").getAsString().equals("max");
            try (TensorScope scope = TensorScope.open()) {
                Tensor x = pattern(c.has("rounded") ? 102 : 100, g[0], g[1], g[2], g[3]);
                if (c.has("rounded")) {
                    // torch.round(x * 1.5): half to even, and -0.0 for small negatives, as Math.rint
                    float[] v = x.toArray();
                    for (int i = 0; i < v.length; i++) {
                        v[i] = (float) Math.rint(v[i] * 1.5f);
                    }
                    x = tensor(v, x.shape());
                }
                x.requiresGrad(true);
                Tensor y;
                if (max) {
                    Tensor[] r = PoolOps.adaptiveMaxPool2dWithIndices(x, g[4], g[5]);
                    y = r[0];
                    float[] idx = r[1].toArray();
                    int[] want = ints(c.get("indices"));
                    for (int i = 0; i < want.length; i++) {
                        assertEquals(want[i], (int) idx[i], e.getKey() + " index " + i);
                    }
                } else {
                    y = PoolOps.adaptiveAvgPool2d(x, g[4], g[5]);
                }
                y.backward(pattern(c.has("rounded") ? 103 : 101, y.shape()));
                if (max) {
                    exact(c.get("y"), y, e.getKey() + " y");
                    // each input gets the sum of the (one or two) dy that chose it
                    assertClose(floats(c.get("grad_x")), x.grad().toArray(), 1e-6, 1e-7, e.getKey() + " grad x");
                } else {
                    // the mean of a window; dy / kh / kw summed over at most 2x2 windows, as PyTorch orders them
                    assertClose(floats(c.get("y")), y.toArray(), 1e-6, 1e-7, e.getKey() + " y");
                    assertClose(floats(c.get("grad_x")), x.grad().toArray(), 1e-6, 1e-7, e.getKey() + " grad x");
                }
            }
        }
    }

    @Test
    @DisplayName("the layers: AdaptiveAvgPool2d.global() and AdaptiveMaxPool2d give PyTorch's output at any input size")
    void adaptiveLayers() {
        JsonObject avg = goldens.getAsJsonObject("adaptive_pool").getAsJsonObject("avg_n2_c3_7x6_to_1x1");
        JsonObject max = goldens.getAsJsonObject("adaptive_pool").getAsJsonObject("max_n2_c3_7x6_to_3x4");
        try (TensorScope scope = TensorScope.open(); AdaptiveAvgPool2d global = AdaptiveAvgPool2d.global();
             AdaptiveMaxPool2d pool = new AdaptiveMaxPool2d(3, 4)) {
            Tensor x = pattern(100, 2, 3, 7, 6);
            Tensor y = global.forward(x);
            assertArrayEquals(new int[] {2, 3, 1, 1}, y.shape());
            assertClose(floats(avg.get("y")), y.toArray(), 1e-6, 1e-7, "global average pooling");
            exact(max.get("y"), pool.forward(x), "adaptive max pooling layer");
            assertTrue(global.toString().contains("output_size=(1, 1)"), global.toString());
        }
    }

    @Test
    @DisplayName("Upsample (nearest, integer factors): output exact, gradient sums each block")
    void upsampleNearest() {
        for (Map.Entry<String, JsonElement> e : goldens.getAsJsonObject("upsample_nearest").entrySet()) {
            JsonObject c = e.getValue().getAsJsonObject();
            int[] g = ints(c.get("geometry"));
            try (TensorScope scope = TensorScope.open(); Upsample up = new Upsample(g[4], g[5])) {
                Tensor x = pattern(110, g[0], g[1], g[2], g[3]).requiresGrad(true);
                Tensor y = up.forward(x);
                assertArrayEquals(new int[] {g[0], g[1], g[2] * g[4], g[3] * g[5]}, y.shape(), e.getKey());
                y.backward(pattern(111, y.shape()));
                exact(c.get("y"), y, e.getKey() + " y");
                // sums of scaleH * scaleW gradients in the same row-major order as PyTorch's
                assertClose(floats(c.get("grad_x")), x.grad().toArray(), 1e-6, 1e-7, e.getKey() + " grad x");
            }
        }
    }

    // ------------------------------------------------------------------ slices

    @Test
    @DisplayName("cat, stack, narrow and slicing: values and gradients exact")
    void slices() {
        JsonObject s = goldens.getAsJsonObject("slices");
        try (TensorScope scope = TensorScope.open()) {
            Tensor a = pattern(120, 2, 3, 4).requiresGrad(true);
            Tensor b = pattern(121, 2, 5, 4).requiresGrad(true);
            Tensor c = pattern(122, 2, 1, 4).requiresGrad(true);
            Tensor cat = Tensor.cat(List.of(a, b, c), 1);
            assertArrayEquals(new int[] {2, 9, 4}, cat.shape());
            cat.backward(pattern(123, cat.shape()));
            JsonObject k = s.getAsJsonObject("cat_dim1");
            exact(k.get("y"), cat, "cat dim 1");
            exact(k.get("grad_a"), a.grad(), "cat grad a");
            exact(k.get("grad_b"), b.grad(), "cat grad b");
            exact(k.get("grad_c"), c.grad(), "cat grad c");

            Tensor p = pattern(124, 3, 2, 2).requiresGrad(true);
            Tensor q = pattern(125, 3, 2, 3).requiresGrad(true);
            Tensor last = Tensor.cat(List.of(p, q), -1);
            last.backward(pattern(126, last.shape()));
            k = s.getAsJsonObject("cat_dim_last");
            exact(k.get("y"), last, "cat dim -1");
            exact(k.get("grad_p"), p.grad(), "cat dim -1 grad p");
            exact(k.get("grad_q"), q.grad(), "cat dim -1 grad q");

            Tensor u = pattern(127, 3, 4).requiresGrad(true);
            Tensor v = pattern(128, 3, 4).requiresGrad(true);
            Tensor st = Tensor.stack(List.of(u, v, u), 1);
            k = s.getAsJsonObject("stack_dim1");
            assertArrayEquals(ints(k.get("shape")), st.shape());
            st.backward(pattern(129, st.shape()));
            exact(k.get("y"), st, "stack dim 1");
            exact(k.get("grad_u"), u.grad(), "stack grad u (used twice)");
            exact(k.get("grad_v"), v.grad(), "stack grad v");

            k = s.getAsJsonObject("narrow_slice");
            Tensor x = pattern(130, 2, 6, 5).requiresGrad(true);
            Tensor nw = x.narrow(1, 2, 3);
            exact(k.get("narrow_y"), nw, "narrow");
            nw.sum(2, true).mul(pattern(131, 2, 3, 1)).sum().backward();
            exact(k.get("narrow_grad_x"), x.grad(), "narrow grad x");
            x.zeroGrad();
            Tensor sl = x.slice(2, -3, Integer.MAX_VALUE);
            exact(k.get("slice_y"), sl, "x[:, :, -3:]");
            sl.mul(pattern(132, sl.shape())).sum().backward();
            exact(k.get("slice_grad_x"), x.grad(), "x[:, :, -3:] grad x");
        }
    }

    // ------------------------------------------------------------------ small networks

    /** Every parameter of {@code m} from the pattern, in registration order, seeds counting up from {@code seed}. */
    private static void loadPattern(Module m, int seed, double scale) {
        int i = 0;
        for (Tensor p : m.namedParameters().values()) {
            p.copyFrom(PyTorchGoldensSuite.pattern((int) p.numel(), seed + i++, scale, 0));
        }
    }

    @Test
    @DisplayName("a depthwise-separable block (MobileNet): training forward, backward, running statistics")
    void separableBlock() {
        JsonObject gold = goldens.getAsJsonObject("separable_block");
        Generator gen = new Generator(0);
        try (TensorScope scope = TensorScope.open();
             Sequential block = new Sequential(
                     Conv2d.builder(4, 4).kernel(3).stride(2).padding(1).groups(4).bias(false).build(device(), gen),
                     new BatchNorm2d(device(), 4), new ReLU(),
                     Conv2d.builder(4, 8).kernel(1).bias(false).build(device(), gen),
                     new BatchNorm2d(device(), 8), new ReLU(), AdaptiveAvgPool2d.global(), new Flatten())) {
            assertEquals(List.of("0.weight", "1.weight", "1.bias", "3.weight", "4.weight", "4.bias"),
                    List.copyOf(block.namedParameters().keySet()), "PyTorch's parameter order");
            loadPattern(block, 140, 0.5);
            Tensor x = pattern(150, 3, 4, 9, 9).requiresGrad(true);
            Tensor y = block.forward(x);
            assertArrayEquals(new int[] {3, 8}, y.shape());
            y.backward(pattern(151, y.shape()));
            sums(gold.get("y"), y, "block output");
            sums(gold.get("grad_x"), x.grad(), "block grad x");
            for (Map.Entry<String, Tensor> p : block.namedParameters().entrySet()) {
                sums(gold.getAsJsonObject("grads").get(p.getKey()), p.getValue().grad(), "grad " + p.getKey());
            }
            for (Map.Entry<String, Tensor> b : block.namedBuffers().entrySet()) {
                if (b.getKey().contains("running")) {
                    sums(gold.getAsJsonObject("running").get(b.getKey()), b.getValue(), b.getKey());
                }
            }
        }
    }

    @Test
    @DisplayName("a two-level U-Net (max pool down, nearest upsample up, cat with the skip): output and every gradient")
    void tinyUNet() {
        JsonObject gold = goldens.getAsJsonObject("tiny_unet");
        Generator gen = new Generator(0);
        try (TensorScope scope = TensorScope.open();
             Conv2d enc = Conv2d.builder(1, 4).kernel(3).padding(1).build(device(), gen);
             MaxPool2d pool = new MaxPool2d(2);
             Conv2d mid = Conv2d.builder(4, 8).kernel(3).padding(1).build(device(), gen);
             Upsample up = new Upsample(2);
             Conv2d dec = Conv2d.builder(12, 2).kernel(3).padding(1).build(device(), gen)) {
            Map<String, Conv2d> convs = Map.of("enc", enc, "mid", mid, "dec", dec);
            int seed = 160;
            for (Conv2d conv : List.of(enc, mid, dec)) {
                loadPattern(conv, seed, 0.4);
                seed += 2;
            }
            Tensor x = pattern(170, 2, 1, 8, 8).requiresGrad(true);
            Tensor skip = enc.forward(x).relu();
            Tensor m = mid.forward(pool.forward(skip)).relu();
            Tensor y = dec.forward(Tensor.cat(List.of(up.forward(m), skip), 1));
            assertArrayEquals(new int[] {2, 2, 8, 8}, y.shape());
            y.backward(pattern(171, y.shape()));
            sums(gold.get("y"), y, "U-Net output");
            sums(gold.get("grad_x"), x.grad(), "U-Net grad x");
            for (Map.Entry<String, Conv2d> c : convs.entrySet()) {
                sums(gold.getAsJsonObject("grads").get(c.getKey() + ".weight"), c.getValue().weight().grad(),
                        c.getKey() + ".weight grad");
                sums(gold.getAsJsonObject("grads").get(c.getKey() + ".bias"), c.getValue().bias().grad(),
                        c.getKey() + ".bias grad");
            }
        }
    }
}
