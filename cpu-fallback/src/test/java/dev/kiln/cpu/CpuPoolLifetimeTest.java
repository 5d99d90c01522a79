package dev.kiln.cpu;

import dev.kiln.core.Device;
import dev.kiln.core.Generator;
import dev.kiln.core.GradMode;
import dev.kiln.core.Tensor;
import dev.kiln.core.TensorScope;
import dev.kiln.nn.CrossEntropyLoss;
import dev.kiln.nn.Sequential;
import dev.kiln.suites.SmallResNet;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The array pool under the tensor lifetimes: open buffers' bytes (outstanding) and their high-water mark for a
 * no-grad ResNet forward stay within the live activations, and a released array is reused within the same pass.
 */
class CpuPoolLifetimeTest {

    private static final int N = 8;
    private static final long A = 4L * N * 16 * 28 * 28;

    @Test
    void noGradForwardPeakIsTheLiveActivationsAndArraysAreReusedAtOnce() {
        try (CpuBackend be = new CpuBackend(1, 256L << 20)) {
            Device device = Device.of("cpu", be);
            try (Sequential net = SmallResNet.build(device, 5); TensorScope scope = TensorScope.open()) {
                net.eval();
                Tensor x = Tensor.randn(device, new Generator(1), N, 1, 28, 28);
                long outstanding = be.outstandingBytes();
                long fresh = be.freshBytes();
                be.resetPeakOutstanding();
                try (GradMode ignored = GradMode.noGrad()) {
                    net.forward(x).close();
                }
                long peak = be.peakOutstandingBytes() - outstanding;
                long allocatedFresh = be.freshBytes() - fresh;
                assertTrue(peak <= 4 * A + A / 2, "peak outstanding " + peak + " B, live activations at most " + 4 * A);
                assertEquals(outstanding, be.outstandingBytes(), "every array of the forward is back in the pool");
                // Without reuse during the pass the forward would allocate every activation fresh (about 24 A). The
                // pool reuses arrays of the same length, so each stage (A, A/2, A/4 per activation) needs its own live
                // set once: at most peak + peak/2 + peak/4.
                assertTrue(allocatedFresh <= 2 * peak, "the first pass allocated " + allocatedFresh
                        + " B fresh although no more than " + peak + " B were open at once: arrays not reused at once");
                try (GradMode ignored = GradMode.noGrad()) {
                    net.forward(x).close();
                }
                assertEquals(allocatedFresh, be.freshBytes() - fresh, "a warm forward allocates nothing");
            }
        }
    }

    @Test
    void backwardGivesSavedArraysBackToThePool() {
        try (CpuBackend be = new CpuBackend(1, 256L << 20)) {
            Device device = Device.of("cpu", be);
            try (Sequential net = SmallResNet.build(device, 6); TensorScope scope = TensorScope.open()) {
                Tensor x = Tensor.randn(device, new Generator(2), N, 1, 28, 28);
                float[] labels = new float[N];
                Tensor y = Tensor.of(device, labels, N);
                long outstanding = be.outstandingBytes();
                Tensor loss = new CrossEntropyLoss().forward(net.forward(x), y);
                long afterForward = be.outstandingBytes() - outstanding;
                loss.backward();
                long afterBackward = be.outstandingBytes() - outstanding;
                long gradients = 4 * net.parameterCount();
                assertTrue(afterForward > 12 * A, "saved activations after the forward: " + afterForward + " B");
                assertTrue(afterBackward <= gradients + 16 * 1024, afterBackward + " B open after backward; gradients "
                        + gradients + " B");
                net.zeroGrad();
            }
        }
    }
}
