package dev.kiln.cuda;

import dev.kiln.core.CapturedGraph;
import dev.kiln.core.Device;
import dev.kiln.core.Generator;
import dev.kiln.core.Tensor;
import dev.kiln.core.TensorScope;
import dev.kiln.nn.AdaptiveAvgPool2d;
import dev.kiln.nn.AdaptiveMaxPool2d;
import dev.kiln.nn.BatchNorm2d;
import dev.kiln.nn.Conv2d;
import dev.kiln.nn.Flatten;
import dev.kiln.nn.MaxPool2d;
import dev.kiln.nn.ReLU;
import dev.kiln.nn.Sequential;
import dev.kiln.nn.Upsample;
import dev.kiln.optim.SGD;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A two-level U-Net (max pool, nearest upsample, cat with the skip) and a depthwise-separable block with global
 * pooling, trained through the CUDA backend's host code on the checking stand-in (no GPU): eager steps, then a captured
 * step replayed. Every cuDNN descriptor (the grouped convolution's group count and per-group filter among them) and
 * every launch of the slice, pooling and upsampling kernels is checked as it is made; after close() nothing may be
 * left.
 */
class CheckedCudaShapeNetsTest {

    @Test
    @DisplayName("U-Net with cat and a separable block: eager steps and a captured step replayed, all released")
    void trainsEagerAndCaptured() {
        CheckingCudaApi api = new CheckingCudaApi();
        CudaBackend backend = CheckedCudaBackends.create(api);
        Device device = CheckedCudaBackends.device(backend);
        Generator gen = new Generator(5);
        try (Conv2d enc = Conv2d.builder(1, 4).kernel(3).padding(1).build(device, gen);
             MaxPool2d pool = new MaxPool2d(2);
             Conv2d mid = Conv2d.builder(4, 8).kernel(3).padding(1).build(device, gen);
             Upsample up = new Upsample(2);
             Conv2d dec = Conv2d.builder(12, 4).kernel(3, 1).padding(1, 0).build(device, gen);
             Sequential block = new Sequential(
                     Conv2d.builder(4, 4).kernel(3).stride(2).padding(1).groups(4).bias(false).build(device, gen),
                     new BatchNorm2d(device, 4), new ReLU(),
                     Conv2d.builder(4, 8).kernel(1).bias(false).build(device, gen),
                     new BatchNorm2d(device, 8), new ReLU(), AdaptiveAvgPool2d.global(), new Flatten());
             AdaptiveMaxPool2d side = new AdaptiveMaxPool2d(3, 2);
             Tensor x = Tensor.unscoped(device, new float[2 * 8 * 8], 2, 1, 8, 8)) {
            List<Tensor> params = new ArrayList<>();
            for (var m : List.of(enc, mid, dec, block)) {
                params.addAll(m.parameters());
            }
            try (SGD sgd = new SGD(params, 0.01f, 0.9f, 0f, false, 0f)) {
                Runnable step = () -> {
                    try (TensorScope scope = TensorScope.open()) {
                        sgd.zeroGrad();
                        Tensor skip = enc.forward(x).relu();
                        Tensor m = mid.forward(pool.forward(skip)).relu();
                        Tensor y = dec.forward(Tensor.cat(List.of(up.forward(m), skip), 1));
                        Tensor features = block.forward(y);
                        Tensor extra = side.forward(y.narrow(1, 1, 2));
                        Tensor stacked = Tensor.stack(List.of(features, features.slice(1, 0, 8)), 0);
                        Tensor loss = stacked.square().mean().add(extra.square().mean());
                        loss.backward();
                        sgd.step();
                    }
                };
                step.run();
                step.run();
                assertTrue(api.calls("cudnnSetConvolutionGroupCount") >= 1, "grouped plan: " + api.callCounts());
                for (String kernel : List.of("kiln_copy_slice", "kiln_upsample_nearest_forward",
                        "kiln_upsample_nearest_backward", "kiln_adaptive_avg_forward", "kiln_adaptive_avg_backward",
                        "kiln_adaptive_max_forward", "kiln_adaptive_max_backward")) {
                    assertTrue(api.calls("launch " + kernel) >= 2, kernel + " launches: " + api.callCounts());
                }
                try (CapturedGraph graph = CapturedGraph.capture(device, step)) {
                    assertTrue(graph.operations() > 30, "captured operations: " + graph.operations());
                    graph.replay();
                    graph.replay();
                }
                assertEquals(2, api.calls("cuGraphLaunch"));
            }
        }
        backend.close();
        api.assertAllReleased();
        assertEquals(api.deviceAllocations(), api.deviceFrees(), "cuMemAlloc and cuMemFree calls");
    }
}
