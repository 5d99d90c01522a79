package dev.kiln.suites;

import dev.kiln.core.GradMode;
import dev.kiln.core.Tensor;
import dev.kiln.core.TensorMemory;
import dev.kiln.core.TensorScope;
import dev.kiln.nn.CrossEntropyLoss;
import dev.kiln.nn.Sequential;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Tensor lifetimes (docs/architecture.md, "Tensor lifetimes"): intermediates die when nothing can reach them, not when
 * their scope closes; the backward pass releases what it saved after its last use. Measured with the device's
 * {@link TensorMemory} (bytes of live tensor storage and their high-water mark), on a small ResNet built from containers.
 */
public class LifetimeSuite extends DeviceSuite {

    private static final int N = 8;
    /** Bytes of the largest activation: (N, 16, 28, 28) floats. */
    private static final long A = 4L * N * 16 * 28 * 28;

    private Tensor images() {
        return randn(7, N, 1, 28, 28);
    }

    private Tensor labels() {
        float[] y = new float[N];
        for (int i = 0; i < N; i++) {
            y[i] = i % 10;
        }
        return tensor(y, N);
    }

    @Test
    @DisplayName("a no-grad ResNet forward holds at most a block's input and its branch, and only the output after")
    void noGradForwardHoldsOnlyLiveActivations() {
        try (Sequential net = SmallResNet.build(device(), 1); TensorScope scope = TensorScope.open()) {
            net.eval();
            Tensor x = images();
            TensorMemory mem = device().tensorMemory();
            long before = mem.liveBytes();
            mem.resetPeak();
            Tensor logits;
            try (GradMode ignored = GradMode.noGrad()) {
                logits = net.forward(x);
            }
            long peak = mem.peakBytes() - before;
            long after = mem.liveBytes() - before;
            // stage 1: the block input, the branch's current layer and the one it feeds, then y + x, relu(y + x)
            assertTrue(peak <= 4 * A + A / 2, "peak " + peak + " B above the input, but the live activations are at most "
                    + (4 * A) + " B (4 of " + A + " B)");
            assertEquals(4L * N * 10, after, "after the forward only the logits stay alive");
            assertEquals(N * 10, logits.toArray().length);
        }
    }

    @Test
    @DisplayName("backward releases each saved activation and every intermediate gradient once used")
    void backwardReleasesSavedTensors() {
        try (Sequential net = SmallResNet.build(device(), 2); TensorScope scope = TensorScope.open()) {
            net.train();
            Tensor x = images();
            Tensor y = labels();
            TensorMemory mem = device().tensorMemory();
            long before = mem.liveBytes();
            long storagesBefore = mem.liveStorages();
            long paramBytes = 4 * net.parameterCount();
            Tensor loss = new CrossEntropyLoss().forward(net.forward(x), y);
            long afterForward = mem.liveBytes() - before;
            assertTrue(afterForward > 12 * A, "the graph should hold the saved activations after the forward, holds "
                    + afterForward + " B");
            loss.backward();
            long afterBackward = mem.liveBytes() - before;
            // left: the gradients (as large as the parameters), logits, loss, per-channel batch statistics
            assertTrue(afterBackward <= paramBytes + 16 * 1024, "after backward " + afterBackward
                    + " B are alive beyond the gradients' " + paramBytes + " B: saved tensors were not released");
            long gradStorages = net.parameters().size();
            // logits, loss, the softmax probabilities, two per-channel statistics of each of the 15 batch norms
            assertTrue(mem.liveStorages() - storagesBefore <= gradStorages + 3 + 2 * 15, (mem.liveStorages() - storagesBefore)
                    + " storages outstanding after backward for " + gradStorages + " gradients");
            net.zeroGrad();
        }
    }

    @Test
    @DisplayName("a second backward through a released graph fails as in PyTorch; retainGraph keeps it")
    void secondBackwardNeedsRetainGraph() {
        try (TensorScope scope = TensorScope.open()) {
            Tensor w = randn(3, 4, 4).requiresGrad(true);
            Tensor loss = w.sigmoid().mul(w).sum();
            Tensor seed = Tensor.full(device(), 1f);
            loss.backward(seed, true);
            float[] once = w.grad().toArray();
            loss.backward(seed);
            float[] twice = w.grad().toArray();
            for (int i = 0; i < once.length; i++) {
                assertEquals(2 * once[i], twice[i], 1e-5f * Math.abs(once[i]) + 1e-7f, "index " + i);
            }
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> loss.backward(seed));
            assertMessageContains(e, "second time", "retainGraph");
            w.zeroGrad();
            w.close();
        }
    }

    @Test
    @DisplayName("closing an intermediate's handle keeps what the backward needs; the gradient is unchanged")
    void closedIntermediateStillBackpropagates() {
        try (TensorScope scope = TensorScope.open()) {
            Tensor w = randn(4, 3, 5).requiresGrad(true);
            Tensor h = w.sigmoid();
            Tensor loss = h.mul(h).sum();
            Tensor seed = Tensor.full(device(), 1f);
            loss.backward(seed, true);
            float[] want = w.grad().toArray();
            w.zeroGrad();
            Tensor h2 = w.sigmoid();
            Tensor loss2 = h2.mul(h2).sum();
            h2.close();
            loss2.backward(seed);
            float[] got = w.grad().toArray();
            for (int i = 0; i < want.length; i++) {
                assertEquals(want[i], got[i], 0f, "index " + i);
            }
            assertThrows(IllegalStateException.class, h2::toArray, "a closed handle stays closed to its user");
            w.zeroGrad();
            w.close();
        }
    }

    @Test
    @DisplayName("a recorded graph nothing can reach any more is released without a backward or its scope closing")
    void unreachableGraphIsReleased() {
        try (Sequential net = SmallResNet.build(device(), 3); TensorScope scope = TensorScope.open()) {
            net.train();
            Tensor x = images();
            TensorMemory mem = device().tensorMemory();
            long before = mem.liveBytes();
            Tensor logits = net.forward(x);
            assertTrue(mem.liveBytes() - before > 12 * A, "the graph holds its saved activations while reachable");
            logits.close();
            assertEquals(sideStatistics(net), mem.liveBytes() - before,
                    "closing the only handle on the graph released everything it saved");
        }
    }

    /** The per-channel batch statistics each training-mode batch norm keeps in the scope (its running update's input). */
    private static long sideStatistics(Sequential net) {
        long channels = 0;
        for (var e : net.namedBuffers().entrySet()) {
            if (e.getKey().endsWith("running_mean")) {
                channels += e.getValue().numel();
            }
        }
        return 2 * 4 * channels;
    }

    /** A module that keeps what it made: an op result, a detach() of it, a tensor made from data. */
    private static final class Probe extends dev.kiln.nn.Module {
        Tensor temporary;
        Tensor detached;
        Tensor data;

        @Override
        public Tensor forward(Tensor x) {
            temporary = x.mul(2f);
            detached = temporary.detach();
            data = Tensor.full(x.device(), 1f, x.shape());
            return temporary.add(data);
        }
    }

    @Test
    @DisplayName("a call frame releases the op results a module made and did not return, nothing else")
    void callFrameReleasesOnlyUnreturnedOpResults() {
        Probe probe = new Probe();
        try (Sequential seq = new Sequential(probe, new dev.kiln.nn.ReLU())) {
            Tensor x = randn(5, 3, 4);
            Tensor detached;
            Tensor data;
            try (TensorScope scope = TensorScope.open()) {
                x.requiresGrad(true);
                Tensor out = seq.forward(x);
                assertTrue(probe.temporary.isClosed(), "the op result the module did not return is released");
                detached = probe.detached;
                data = probe.data;
                float[] xs = x.toArray();
                float[] kept = detached.toArray();
                for (int i = 0; i < xs.length; i++) {
                    assertEquals(2 * xs[i], kept[i], 0f, "a detach() outlives the call, index " + i);
                }
                assertEquals(1f, data.toArray()[0], "a tensor made from data moves to the scope");
                out.sum().backward();
                float[] grad = x.grad().toArray();
                for (int i = 0; i < xs.length; i++) {
                    assertEquals(2 * xs[i] + 1 > 0 ? 2f : 0f, grad[i], 0f, "gradient through the released results, index " + i);
                }
            }
            assertTrue(detached.isClosed() && data.isClosed(), "the scope closes what the frame handed it");
            x.close();
        }
    }

    @Test
    @DisplayName("the scope stays the safety net: what a forward leaves behind goes when it closes")
    void scopeReleasesTheRest() {
        try (Sequential net = SmallResNet.build(device(), 4)) {
            net.train();
            TensorMemory mem = device().tensorMemory();
            long before = mem.liveBytes();
            try (TensorScope scope = TensorScope.open()) {
                Tensor loss = new CrossEntropyLoss().forward(net.forward(images()), labels());
                loss.backward();
                net.zeroGrad();
            }
            assertEquals(0, mem.liveBytes() - before, "bytes left after the scope closed");
        }
    }
}
