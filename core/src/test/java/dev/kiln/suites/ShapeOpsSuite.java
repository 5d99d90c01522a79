package dev.kiln.suites;

import dev.kiln.core.Generator;
import dev.kiln.core.GradMode;
import dev.kiln.core.Tensor;
import dev.kiln.core.TensorScope;
import dev.kiln.nn.AdaptiveAvgPool2d;
import dev.kiln.nn.AdaptiveMaxPool2d;
import dev.kiln.nn.Conv2d;
import dev.kiln.nn.Upsample;
import dev.kiln.nn.functional.PoolOps;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The public API of the shape ops and layers beyond what the goldens cover: {@code cat}, {@code stack},
 * {@code narrow}/{@code slice} edge cases, autograd bookkeeping and bad input; the {@link Conv2d} builder and the
 * adaptive pooling and upsampling layers' arguments.
 */
public class ShapeOpsSuite extends DeviceSuite {

    private Tensor range(int... shape) {
        int n = Arrays.stream(shape).reduce(1, (a, b) -> a * b);
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = i;
        }
        return tensor(v, shape);
    }

    @Test
    @DisplayName("narrow and slice: negative starts and bounds, clamping, empty results, values")
    void narrowAndSlice() {
        try (TensorScope scope = TensorScope.open()) {
            Tensor x = range(2, 5, 3);
            assertArrayEquals(new float[] {6, 7, 8, 9, 10, 11, 21, 22, 23, 24, 25, 26}, x.narrow(1, 2, 2).toArray());
            assertArrayEquals(x.narrow(1, 2, 2).toArray(), x.narrow(-2, -3, 2).toArray(), "negative dim and start");
            assertArrayEquals(x.narrow(1, 3, 2).toArray(), x.slice(1, -2, 100).toArray(), "x[:, -2:]");
            assertArrayEquals(new int[] {2, 0, 3}, x.slice(1, 4, 2).shape(), "an empty slice, as x[:, 4:2]");
            assertArrayEquals(new int[] {2, 5, 0}, x.narrow(2, 3, 0).shape(), "length 0 at the end");
            assertArrayEquals(new float[] {0, 3, 6, 9, 12, 15, 18, 21, 24, 27}, x.narrow(2, 0, 1).toArray());
            assertArrayEquals(new int[] {2, 1, 5, 3}, x.unsqueeze(1).shape());
            assertArrayEquals(new int[] {2, 5, 3, 1}, x.unsqueeze(-1).shape());
        }
    }

    @Test
    @DisplayName("narrow, cat and stack refuse bad arguments with the shapes and values in the message")
    void badArguments() {
        try (TensorScope scope = TensorScope.open()) {
            Tensor x = range(2, 5, 3);
            assertMessageContains(assertThrows(IndexOutOfBoundsException.class, () -> x.narrow(1, 4, 2)),
                    "start 4", "length 2", "size 5", "(2, 5, 3)");
            assertThrows(IndexOutOfBoundsException.class, () -> x.narrow(1, -6, 1));
            assertThrows(IndexOutOfBoundsException.class, () -> x.narrow(1, 0, -1));
            assertThrows(IndexOutOfBoundsException.class, () -> x.narrow(3, 0, 1));
            assertMessageContains(assertThrows(IllegalArgumentException.class,
                    () -> Tensor.cat(List.of(x, range(2, 5, 4)), 1)), "tensor 1", "(2, 5, 4)", "(2, 5, 3)", "dimension 1");
            assertThrows(IllegalArgumentException.class, () -> Tensor.cat(List.of(x, range(2, 5)), 0));
            assertMessageContains(assertThrows(IllegalArgumentException.class, () -> Tensor.cat(List.of(), 0)), "non-empty");
            List<Tensor> withNull = new ArrayList<>();
            withNull.add(x);
            withNull.add(null);
            assertMessageContains(assertThrows(IllegalArgumentException.class, () -> Tensor.cat(withNull, 0)), "tensor 1 is null");
            assertMessageContains(assertThrows(IllegalArgumentException.class,
                    () -> Tensor.stack(List.of(x, range(2, 5, 2)), 0)), "tensor 1", "(2, 5, 2)", "equal shapes");
            assertThrows(IndexOutOfBoundsException.class, () -> Tensor.stack(List.of(x, x), 4));
            assertThrows(IndexOutOfBoundsException.class, () -> Tensor.cat(List.of(x, x), 3));
        }
    }

    @Test
    @DisplayName("cat and stack: values along the first, middle and last dimension")
    void catAndStackValues() {
        try (TensorScope scope = TensorScope.open()) {
            Tensor a = range(2, 2);
            Tensor b = range(2, 2).add(10f);
            assertArrayEquals(new float[] {0, 1, 2, 3, 10, 11, 12, 13}, Tensor.cat(List.of(a, b), 0).toArray());
            assertArrayEquals(new float[] {0, 1, 10, 11, 2, 3, 12, 13}, Tensor.cat(List.of(a, b), 1).toArray());
            Tensor s = Tensor.stack(List.of(a, b), 2);
            assertArrayEquals(new int[] {2, 2, 2}, s.shape());
            assertArrayEquals(new float[] {0, 10, 1, 11, 2, 12, 3, 13}, s.toArray());
            assertArrayEquals(new int[] {3, 2, 2}, Tensor.stack(List.of(a, b, a), 0).shape());
            assertArrayEquals(a.toArray(), Tensor.cat(List.of(a), 1).toArray(), "cat of one tensor is a copy");
        }
    }

    @Test
    @DisplayName("autograd: only inputs that require a gradient get one; no graph under no_grad; sums where reused")
    void autogradBookkeeping() {
        try (TensorScope scope = TensorScope.open()) {
            Tensor a = range(2, 3).requiresGrad(true);
            Tensor c = range(2, 1);
            Tensor y = Tensor.cat(List.of(a, c, a), 1);
            assertTrue(y.requiresGrad());
            y.mul(range(2, 7)).sum().backward();
            // a appears at columns 0..2 and 4..6 of each row: its gradient is the sum of both weights
            assertArrayEquals(new float[] {0 + 4, 1 + 5, 2 + 6, 7 + 11, 8 + 12, 9 + 13}, a.grad().toArray());
            assertNull(c.grad(), "an input without requires_grad gets no gradient");
            try (GradMode ignored = GradMode.noGrad()) {
                assertFalse(Tensor.cat(List.of(a, a), 0).requiresGrad());
                assertFalse(a.narrow(1, 0, 1).requiresGrad());
                assertFalse(Tensor.stack(List.of(a, a), 0).requiresGrad());
            }
            Tensor z = range(3, 4).requiresGrad(true);
            z.narrow(0, 1, 1).sum().backward();
            assertArrayEquals(new float[] {0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0}, z.grad().toArray());
        }
    }

    @Test
    @DisplayName("Conv2d.builder: PyTorch's keyword arguments, shapes, repr, validation; the old constructors unchanged")
    void convBuilder() {
        Generator gen = new Generator(3);
        try (TensorScope scope = TensorScope.open();
             Conv2d dw = Conv2d.builder(8, 16).kernel(3, 5).stride(2, 1).padding(1, 2).dilation(1, 2).groups(8)
                     .bias(false).build(device(), gen);
             Conv2d plain = new Conv2d(device(), gen, 3, 4, 3, 2, 1)) {
            assertArrayEquals(new int[] {16, 1, 3, 5}, dw.weight().shape());
            assertNull(dw.bias());
            assertEquals(8, dw.groups());
            assertEquals("Conv2d(8, 16, kernel_size=(3, 5), stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=8, bias=False)",
                    dw.toString());
            Tensor y = dw.forward(range(2, 8, 9, 10));
            // H: (9 + 2 - 2 - 1) / 2 + 1 = 5; W: (10 + 4 - 8 - 1) / 1 + 1 = 6
            assertArrayEquals(new int[] {2, 16, 5, 6}, y.shape());
            assertMessageContains(assertThrows(IllegalStateException.class, dw::kernelSize), "(3, 5)");
            assertEquals(3, plain.kernelSize());
            assertEquals(2, plain.stride());
            assertEquals(1, plain.padding());
            assertEquals("Conv2d(3, 4, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1))", plain.toString());
            try (Conv2d copy = dw.toBuilder().bias(true).build(device(), gen)) {
                assertEquals(dw.toString().replace(", bias=False", ""), copy.toString());
                assertArrayEquals(new int[] {16}, copy.bias().shape());
            }
        }
        assertMessageContains(assertThrows(IllegalArgumentException.class,
                () -> Conv2d.builder(6, 9).kernel(3).groups(4).build(device(), gen)), "in_channels=6", "groups=4");
        assertMessageContains(assertThrows(IllegalArgumentException.class,
                () -> Conv2d.builder(6, 9).kernel(3).groups(3).bias(true).groups(2).build(device(), gen)), "out_channels=9");
        assertMessageContains(assertThrows(IllegalArgumentException.class,
                () -> Conv2d.builder(6, 6).build(device(), gen)), "kernel size not set");
        assertThrows(IllegalArgumentException.class, () -> Conv2d.builder(6, 6).kernel(3).stride(0).build(device(), gen));
        assertThrows(IllegalArgumentException.class, () -> Conv2d.builder(6, 6).kernel(3).padding(-1, 0).build(device(), gen));
    }

    @Test
    @DisplayName("grouped conv2d refuses a weight that does not fit the input's channels in its groups")
    void groupedConvShapes() {
        try (TensorScope scope = TensorScope.open()) {
            Tensor x = range(1, 6, 4, 4);
            Tensor w = range(6, 2, 3, 3);
            assertArrayEquals(new int[] {1, 6, 2, 2}, dev.kiln.nn.functional.Conv2dOp.conv2d(x, w, null, 1, 1, 0, 0, 1, 1, 3).shape());
            assertMessageContains(assertThrows(IllegalArgumentException.class,
                    () -> dev.kiln.nn.functional.Conv2dOp.conv2d(x, w, null, 1, 1, 0, 0, 1, 1, 2)), "2 group(s) expects 4");
            assertMessageContains(assertThrows(IllegalArgumentException.class,
                    () -> dev.kiln.nn.functional.Conv2dOp.conv2d(range(1, 4, 4, 4), range(6, 1, 3, 3), null, 1, 1, 0, 0, 1, 1, 4)),
                    "6 output channels", "groups=4");
        }
    }

    @Test
    @DisplayName("adaptive pooling and upsampling layers: any input size, and bad arguments refused")
    void layers() {
        try (TensorScope scope = TensorScope.open(); AdaptiveAvgPool2d avg = new AdaptiveAvgPool2d(2, 3);
             AdaptiveMaxPool2d max = AdaptiveMaxPool2d.global(); Upsample up = new Upsample(2, 3)) {
            for (int side : new int[] {5, 7, 32}) {
                assertArrayEquals(new int[] {2, 3, 2, 3}, avg.forward(range(2, 3, side, side)).shape());
                assertArrayEquals(new int[] {2, 3, 1, 1}, max.forward(range(2, 3, side, side)).shape());
            }
            Tensor mx = max.forward(range(1, 2, 3, 3));
            assertArrayEquals(new float[] {8, 17}, mx.toArray());
            Tensor[] withIdx = PoolOps.adaptiveMaxPool2dWithIndices(range(1, 2, 3, 3), 1, 1);
            assertArrayEquals(new float[] {8, 8}, withIdx[1].toArray(), "the position in each plane");
            // (1, 1, 2, 1) holding 0 and 1 becomes (1, 1, 4, 3): two rows of 0s, then two rows of 1s
            assertArrayEquals(new float[] {0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1}, up.forward(range(1, 1, 2, 1)).toArray());
            assertEquals("Upsample(scale_factor=(2.0, 3.0), mode='nearest')", up.toString());
            assertMessageContains(assertThrows(IllegalArgumentException.class, () -> avg.forward(range(3, 4, 4))),
                    "4-d input", "(3, 4, 4)");
            assertThrows(IllegalArgumentException.class, () -> up.forward(range(4, 4)));
        }
        assertThrows(IllegalArgumentException.class, () -> new AdaptiveAvgPool2d(0));
        assertThrows(IllegalArgumentException.class, () -> new AdaptiveMaxPool2d(2, -1));
        assertThrows(IllegalArgumentException.class, () -> new Upsample(0));
    }

    /** Parameters of a small U-Net after {@code steps} SGD steps on the given inputs, eagerly or captured after one. */
    private List<float[]> uNetSteps(float[][] inputs, boolean graphed) {
        Generator gen = new Generator(11);
        try (Conv2d enc = Conv2d.builder(1, 4).kernel(3).padding(1).build(device(), gen);
             dev.kiln.nn.MaxPool2d pool = new dev.kiln.nn.MaxPool2d(2);
             Conv2d mid = Conv2d.builder(4, 4).kernel(3).padding(1).groups(2).build(device(), gen);
             Upsample up = new Upsample(2);
             Conv2d dec = Conv2d.builder(8, 2).kernel(3, 1).padding(1, 0).build(device(), gen);
             AdaptiveAvgPool2d head = AdaptiveAvgPool2d.global();
             Tensor x = Tensor.unscoped(device(), new float[2 * 8 * 8], 2, 1, 8, 8)) {
            List<Tensor> params = new ArrayList<>();
            for (Conv2d c : List.of(enc, mid, dec)) {
                params.addAll(c.parameters());
            }
            try (dev.kiln.optim.SGD sgd = new dev.kiln.optim.SGD(params, 0.05f, 0.9f, 0f, false, 0f)) {
                Runnable step = () -> {
                    try (TensorScope scope = TensorScope.open()) {
                        sgd.zeroGrad();
                        Tensor skip = enc.forward(x).relu();
                        Tensor m = mid.forward(pool.forward(skip)).relu();
                        Tensor y = dec.forward(Tensor.cat(List.of(up.forward(m), skip.narrow(1, 0, 4)), 1));
                        Tensor loss = head.forward(y).square().mean().add(y.slice(2, 2, 6).square().mean());
                        loss.backward();
                        sgd.step();
                    }
                };
                x.copyFrom(inputs[0]);
                step.run();
                if (graphed) {
                    try (dev.kiln.core.CapturedGraph graph = dev.kiln.core.CapturedGraph.capture(device(), step)) {
                        for (int s = 1; s < inputs.length; s++) {
                            x.copyFrom(inputs[s]);
                            graph.replay();
                        }
                    }
                } else {
                    for (int s = 1; s < inputs.length; s++) {
                        x.copyFrom(inputs[s]);
                        step.run();
                    }
                }
                List<float[]> out = new ArrayList<>();
                for (Tensor p : params) {
                    out.add(p.toArray());
                }
                return out;
            }
        }
    }

    @Test
    @DisplayName("a U-Net step (grouped conv, cat, narrow, slice, upsample, adaptive pool) captured and replayed equals eager bit for bit")
    void capturedUNetStep() {
        Generator g = new Generator(4);
        float[][] inputs = new float[5][2 * 8 * 8];
        for (float[] in : inputs) {
            g.fillNormal(in, 0f, 1f);
        }
        List<float[]> eager = uNetSteps(inputs, false);
        List<float[]> graphed = uNetSteps(inputs, true);
        for (int i = 0; i < eager.size(); i++) {
            assertArrayEquals(eager.get(i), graphed.get(i), "parameter " + i + " after 5 steps");
        }
        try (Conv2d fresh = Conv2d.builder(1, 4).kernel(3).padding(1).build(device(), new Generator(11))) {
            assertFalse(Arrays.equals(fresh.weight().toArray(), eager.get(0)), "the steps changed the first weight");
        }
    }
}
