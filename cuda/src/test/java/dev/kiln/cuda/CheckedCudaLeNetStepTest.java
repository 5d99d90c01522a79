package dev.kiln.cuda;

import dev.kiln.core.CapturedGraph;
import dev.kiln.core.Device;
import dev.kiln.core.Generator;
import dev.kiln.core.GradMode;
import dev.kiln.core.Tensor;
import dev.kiln.core.TensorScope;
import dev.kiln.models.LeNet5;
import dev.kiln.nn.CrossEntropyLoss;
import dev.kiln.optim.SGD;
import dev.kiln.train.TrainingStep;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * LeNet-5-BN training steps through the CUDA backend's host code on the checking stand-in (no GPU): eager steps, a
 * captured step replayed with eager inference in between, and the command line's {@link TrainingStep} with graphs.
 * Every driver, cuBLAS and cuDNN call is checked as it is made; replays re-check every address the graph captured;
 * after close() nothing may be left.
 */
class CheckedCudaLeNetStepTest {

    private static final int BATCH = 16;

    @Test
    @DisplayName("LeNet-BN: two eager steps, a captured step replayed three times with eager inference between, all released")
    void eagerAndCapturedSteps() {
        CheckingCudaApi api = new CheckingCudaApi();
        CudaBackend backend = CheckedCudaBackends.create(api);
        Device device = CheckedCudaBackends.device(backend);
        try (LeNet5 net = new LeNet5(device, new Generator(7));
             SGD sgd = new SGD(net.parameters(), 0.05f, 0.9f, 0f, false, 1e-4f);
             Tensor x = Tensor.unscoped(device, new float[BATCH * 28 * 28], BATCH, 1, 28, 28);
             Tensor y = Tensor.unscoped(device, new float[BATCH], BATCH)) {
            CrossEntropyLoss ce = new CrossEntropyLoss();
            Runnable step = () -> {
                try (TensorScope scope = TensorScope.open()) {
                    sgd.zeroGrad();
                    Tensor loss = ce.forward(net.forward(x), y);
                    loss.backward();
                    sgd.step();
                }
            };
            step.run();
            step.run();
            long eagerLaunches = api.calls("cuLaunchKernel");
            assertTrue(eagerLaunches > 20, "kernel launches of two eager steps: " + eagerLaunches);
            assertTrue(api.calls("cudnnConvolutionForward") >= 4 && api.calls("cudnnConvolutionBackwardFilter") >= 4
                    && api.calls("cudnnBatchNormalizationBackward") >= 8 && api.calls("cublasSgemm") >= 12,
                    "cuDNN and cuBLAS calls of two steps: " + api.callCounts());
            try (CapturedGraph graph = CapturedGraph.capture(device, step)) {
                assertTrue(graph.operations() > 20, "captured operations: " + graph.operations());
                for (int r = 0; r < 3; r++) {
                    x.copyFrom(new float[BATCH * 28 * 28]);
                    graph.replay();
                    try (TensorScope scratch = TensorScope.open(); GradMode ignored = GradMode.noGrad()) {
                        net.eval();
                        net.forward(x).toArray(); // eager work of the graph's sizes between replays
                        net.train();
                    }
                }
            }
            assertEquals(3, api.calls("cuGraphLaunch"));
        }
        backend.close();
        api.assertAllReleased();
        assertEquals(api.deviceAllocations(), api.deviceFrees(), "cuMemAlloc and cuMemFree calls");
    }

    @Test
    @DisplayName("TrainingStep with graphs (what ./kiln lenet --graphs runs): warm-up, capture, replays, drain")
    void trainingStepWithGraphs() {
        CheckingCudaApi api = new CheckingCudaApi();
        CudaBackend backend = CheckedCudaBackends.create(api);
        Device device = CheckedCudaBackends.device(backend);
        try (LeNet5 net = new LeNet5(device, new Generator(3));
             SGD sgd = new SGD(net.parameters(), 0.1f, 0.9f, 0f, false, 0f);
             TrainingStep step = new TrainingStep(net, new CrossEntropyLoss(), sgd, device, BATCH, new int[]{1, 28, 28}, true, 2)) {
            for (int s = 0; s < 5; s++) {
                step.inputs().copyFrom(new float[BATCH * 28 * 28]);
                step.targets().copyFrom(new float[BATCH]);
                step.run();
            }
            assertTrue(step.graphed(), "graphed; eager because: " + step.eagerReason());
            step.drain();
        }
        assertEquals(3, api.calls("cuGraphLaunch"), "steps 3 to 5 are replays (the third is captured, then replayed)");
        backend.close();
        api.assertAllReleased();
    }
}
