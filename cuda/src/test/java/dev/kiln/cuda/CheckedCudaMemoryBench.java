package dev.kiln.cuda;

import dev.kiln.core.Device;
import dev.kiln.core.Generator;
import dev.kiln.core.GradMode;
import dev.kiln.core.Tensor;
import dev.kiln.core.TensorScope;
import dev.kiln.models.LeNet5;
import dev.kiln.nn.CrossEntropyLoss;
import dev.kiln.nn.Module;
import dev.kiln.optim.SGD;
import dev.kiln.suites.SmallResNet;

/**
 * The CUDA caching allocator's peak for one pass on the checking stand-in (no GPU: every call is checked, device
 * memory is address bookkeeping): a training step (forward, backward, SGD) or a no-grad eval forward of LeNet-5-BN
 * or the small ResNet. Not a test: bench/pytorch_memory.py runs it (with and without
 * {@code -Dkiln.tensors.eagerRelease=false}) beside the CPU figures; by hand,
 * {@code java -cp <cuda test class path> dev.kiln.cuda.CheckedCudaMemoryBench resnet eval 1000}. Prints one JSON line.
 */
public final class CheckedCudaMemoryBench {

    private CheckedCudaMemoryBench() {
    }

    public static void main(String[] args) {
        if (args.length != 3 || !(args[0].equals("lenet") || args[0].equals("resnet"))
                || !(args[1].equals("train") || args[1].equals("eval"))) {
            System.err.println("usage: CheckedCudaMemoryBench lenet|resnet train|eval BATCH");
            System.exit(2);
        }
        boolean train = args[1].equals("train");
        int n = Integer.parseInt(args[2]);
        CheckingCudaApi api = new CheckingCudaApi();
        CudaBackend backend = CheckedCudaBackends.create(api);
        Device device = CheckedCudaBackends.device(backend);
        long allocatorPeak;
        long tensorPeak;
        try (Module net = args[0].equals("lenet") ? new LeNet5(device, new Generator(0)) : SmallResNet.build(device, 0);
             Tensor x = Tensor.unscoped(device, new float[n * 28 * 28], n, 1, 28, 28);
             Tensor y = Tensor.unscoped(device, new float[n], n);
             SGD sgd = new SGD(net.parameters(), 0.01f, 0.9f, 0f, false, 0f)) {
            net.train(train);
            long allocatedBefore = backend.allocatedBytes();
            long tensorsBefore = device.tensorMemory().liveBytes();
            backend.resetPeakAllocated();
            device.tensorMemory().resetPeak();
            try (TensorScope step = TensorScope.open()) {
                if (train) {
                    sgd.zeroGrad();
                    Tensor loss = new CrossEntropyLoss().forward(net.forward(x), y);
                    loss.backwardWithoutHostCheck();
                    sgd.step(loss);
                } else {
                    try (GradMode ignored = GradMode.noGrad()) {
                        net.forward(x);
                    }
                }
            }
            device.synchronize();
            allocatorPeak = backend.peakAllocatedBytes() - allocatedBefore;
            tensorPeak = device.tensorMemory().peakBytes() - tensorsBefore;
        }
        backend.close();
        System.out.println("{\"model\": \"" + args[0] + "\", \"pass\": \"" + args[1] + "\", \"batch\": " + n
                + ", \"eager_release\": " + TensorScope.eagerRelease() + ", \"allocator_peak_bytes\": " + allocatorPeak
                + ", \"tensor_peak_bytes\": " + tensorPeak + "}");
    }
}
