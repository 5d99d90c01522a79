package dev.kiln.cuda;

import dev.kiln.core.Device;
import dev.kiln.core.Generator;
import dev.kiln.core.GradMode;
import dev.kiln.core.Tensor;
import dev.kiln.core.TensorScope;
import dev.kiln.nn.CrossEntropyLoss;
import dev.kiln.nn.Sequential;
import dev.kiln.suites.SmallResNet;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Tensor lifetimes on the CUDA backend's host code over the checking stand-in (no GPU): the caching allocator's peak
 * for a no-grad ResNet forward is the live activations (blocks released mid-forward are reused at once, not a new
 * cuMemAlloc each), and the backward hands saved activations back to the cache.
 */
class CheckedCudaLifetimeTest {

    private static final int N = 8;
    /** The largest activation, (N, 16, 28, 28) floats, in the allocator's 512-byte size classes. */
    private static final long A = CachingAllocator.sizeClass(4L * N * 16 * 28 * 28);

    @Test
    @DisplayName("no-grad ResNet forward: allocator peak within the live activations, no new device memory when warm")
    void noGradForwardPeak() {
        CheckingCudaApi api = new CheckingCudaApi();
        CudaBackend backend = CheckedCudaBackends.create(api);
        Device device = CheckedCudaBackends.device(backend);
        try (Sequential net = SmallResNet.build(device, 5); TensorScope scope = TensorScope.open()) {
            net.eval();
            Tensor x = Tensor.randn(device, new Generator(1), N, 1, 28, 28);
            try (GradMode ignored = GradMode.noGrad()) {
                net.forward(x).close(); // cuDNN's workspace and algorithm choice
                long before = backend.allocatedBytes();
                long allocations = api.deviceAllocations();
                backend.resetPeakAllocated();
                net.forward(x).close();
                long peak = backend.peakAllocatedBytes() - before;
                assertTrue(peak <= 4 * A + A / 2, "allocator peak " + peak + " B; live activations at most " + 4 * A + " B");
                assertEquals(before, backend.allocatedBytes(), "the forward's blocks are all back in the cache");
                assertEquals(allocations, api.deviceAllocations(), "a warm forward reuses cached blocks only");
            }
        }
        backend.close();
        api.assertAllReleased();
    }

    @Test
    @DisplayName("backward returns the saved activations to the cache as it goes")
    void backwardReleasesSavedBlocks() {
        CheckingCudaApi api = new CheckingCudaApi();
        CudaBackend backend = CheckedCudaBackends.create(api);
        Device device = CheckedCudaBackends.device(backend);
        try (Sequential net = SmallResNet.build(device, 6); TensorScope scope = TensorScope.open()) {
            Tensor x = Tensor.randn(device, new Generator(2), N, 1, 28, 28);
            Tensor y = Tensor.of(device, new float[N], N);
            long before = backend.allocatedBytes() - backend.workspaceBytes();
            Tensor loss = new CrossEntropyLoss().forward(net.forward(x), y);
            long afterForward = backend.allocatedBytes() - backend.workspaceBytes() - before;
            loss.backward();
            long afterBackward = backend.allocatedBytes() - backend.workspaceBytes() - before;
            assertTrue(afterForward > 12 * A, "saved activations after the forward: " + afterForward + " B");
            // gradients (one block each, at least 512 B), logits, loss, probabilities, batch statistics
            long small = 512L * (net.parameters().size() + 3 + 2 * 15);
            long gradients = 0;
            for (Tensor p : net.parameters()) {
                gradients += CachingAllocator.sizeClass(4 * p.numel());
            }
            assertTrue(afterBackward <= gradients + small, afterBackward + " B in use after backward; gradients "
                    + gradients + " B");
            net.zeroGrad();
        }
        backend.close();
        api.assertAllReleased();
    }
}
