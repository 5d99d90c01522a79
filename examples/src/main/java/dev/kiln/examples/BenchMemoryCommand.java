package dev.kiln.examples;

import dev.kiln.core.Device;
import dev.kiln.core.Generator;
import dev.kiln.core.GradMode;
import dev.kiln.core.Kiln;
import dev.kiln.core.Tensor;
import dev.kiln.core.TensorMemory;
import dev.kiln.core.TensorScope;
import dev.kiln.cpu.CpuBackend;
import dev.kiln.cuda.CudaBackend;
import dev.kiln.models.LeNet5;
import dev.kiln.models.ResNet;
import dev.kiln.nn.CrossEntropyLoss;
import dev.kiln.nn.Module;
import dev.kiln.optim.SGD;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

import java.io.IOException;
import java.io.PrintWriter;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryPoolMXBean;
import java.lang.management.MemoryType;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.Callable;

/**
 * Memory of one pass, the first in this JVM: a LeNet-5-BN or ResNet training step (forward, backward, SGD) or a
 * no-grad eval forward, on random data already on the device. Reports the peak of live tensor storage (what Kiln keeps
 * alive), the backend's peak (CPU: arrays held by open buffers; CUDA: the caching allocator's in-use bytes), the JVM
 * heap's peak above its use before the pass (each heap pool's peak summed: an upper bound that includes garbage not
 * yet collected) and the process's peak resident set above it. One case per run so each starts fresh;
 * bench/pytorch_memory.py runs every case for Kiln (with and without eager release) and PyTorch and prints the table.
 */
@Command(name = "memory", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Peak memory of one training step or no-grad eval pass (LeNet or the small ResNet); one case per run.")
final class BenchMemoryCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Option(names = "--device", defaultValue = "cpu", description = "auto, cpu or cuda (default: ${DEFAULT-VALUE}).")
    String device;

    @Option(names = "--model", defaultValue = "resnet", description = "lenet or resnet (default: ${DEFAULT-VALUE}).")
    String model;

    @Option(names = "--pass", defaultValue = "eval", description = "train (forward, backward, SGD step) or eval (no-grad forward) (default: ${DEFAULT-VALUE}).")
    String pass;

    @Option(names = "--batch", description = "Batch size (default: 128 for train, 1000 for eval).")
    Integer batch;

    @Option(names = "--json", paramLabel = "FILE", description = "Also write the results as JSON.")
    Path json;

    @Override
    public Integer call() throws IOException {
        PrintWriter out = spec.commandLine().getOut();
        boolean train = switch (pass) {
            case "train" -> true;
            case "eval" -> false;
            default -> throw new picocli.CommandLine.ParameterException(spec.commandLine(),
                    "--pass must be train or eval, got '" + pass + "'");
        };
        if (!model.equals("lenet") && !model.equals("resnet")) {
            throw new picocli.CommandLine.ParameterException(spec.commandLine(), "--model must be lenet or resnet, got '" + model + "'");
        }
        int n = batch != null ? batch : train ? 128 : 1000;
        if (n < 1) {
            throw new picocli.CommandLine.ParameterException(spec.commandLine(), "--batch must be positive, got " + n);
        }
        Device dev = Device.of(device);
        Map<String, Object> result = new LinkedHashMap<>();
        result.put("kiln_version", Kiln.version());
        result.put("device", dev.name());
        result.put("backend", dev.backend().description());
        result.put("model", model);
        result.put("pass", pass);
        result.put("batch", n);
        result.put("eager_release", TensorScope.eagerRelease());
        result.put("max_heap_bytes", Runtime.getRuntime().maxMemory());
        try (Module net = model.equals("lenet") ? new LeNet5(dev, new Generator(0)) : new ResNet(dev, new Generator(0));
             Tensor x = Tensor.unscoped(dev, gaussian(n * 28 * 28, 1), n, 1, 28, 28);
             Tensor y = Tensor.unscoped(dev, labels(n, 2), n);
             SGD sgd = new SGD(net.parameters(), 0.01f, 0.9f, 0f, false, 0f)) {
            result.put("parameters", net.parameterCount());
            net.train(train);
            TensorMemory tensors = dev.tensorMemory();
            long tensorsBefore = tensors.liveBytes();
            long backendBefore = resetBackendPeak(dev);
            System.gc();
            long heapBefore = heapUsed();
            result.put("heap_before_bytes", heapBefore);
            for (MemoryPoolMXBean p : ManagementFactory.getMemoryPoolMXBeans()) {
                p.resetPeakUsage();
            }
            long rssBefore = rssBytes("VmRSS:");
            boolean hwmReset = resetPeakRss();
            tensors.resetPeak();
            long start = System.nanoTime();
            try {
                if (train) {
                    try (TensorScope step = TensorScope.open()) {
                        sgd.zeroGrad();
                        Tensor loss = new CrossEntropyLoss().forward(net.forward(x), y);
                        loss.backward();
                        sgd.step();
                        result.put("loss", loss.item());
                    }
                } else {
                    try (TensorScope step = TensorScope.open(); GradMode ignored = GradMode.noGrad()) {
                        result.put("checksum", net.forward(x).sum().item());
                    }
                }
                dev.synchronize();
            } catch (OutOfMemoryError e) {
                result.put("error", "OutOfMemoryError: " + e.getMessage());
            }
            result.put("seconds", (System.nanoTime() - start) / 1e9);
            long heapPeak = 0;
            for (MemoryPoolMXBean p : ManagementFactory.getMemoryPoolMXBeans()) {
                if (p.getType() == MemoryType.HEAP) {
                    heapPeak += p.getPeakUsage().getUsed();
                }
            }
            result.put("tensor_peak_bytes", tensors.peakBytes() - tensorsBefore);
            result.put("backend_peak_bytes", backendPeak(dev) - backendBefore);
            result.put("heap_peak_bytes", heapPeak - heapBefore);
            result.put("rss_peak_bytes", hwmReset ? rssBytes("VmHWM:") - rssBefore : -1L);
        }
        out.printf("%-7s %-6s batch %5d  eager release %-5s  tensors %8.1f MB  backend %8.1f MB  heap %8.1f MB  rss %8.1f MB%s%n",
                model, pass, n, result.get("eager_release"), mb(result.get("tensor_peak_bytes")),
                mb(result.get("backend_peak_bytes")), mb(result.get("heap_peak_bytes")), mb(result.get("rss_peak_bytes")),
                result.containsKey("error") ? "  " + result.get("error") : "");
        out.flush();
        if (json != null) {
            JsonFiles.write(json, result);
        }
        return result.containsKey("error") ? 3 : 0;
    }

    private static double mb(Object bytes) {
        return ((Number) bytes).longValue() / 1e6;
    }

    /** Starts a new peak on the backend's own counter and returns the bytes in use now. */
    private static long resetBackendPeak(Device dev) {
        if (dev.backend() instanceof CpuBackend cpu) {
            cpu.resetPeakOutstanding();
            return cpu.outstandingBytes();
        }
        if (dev.backend() instanceof CudaBackend cuda) {
            cuda.resetPeakAllocated();
            return cuda.allocatedBytes();
        }
        return 0;
    }

    private static long backendPeak(Device dev) {
        if (dev.backend() instanceof CpuBackend cpu) {
            return cpu.peakOutstandingBytes();
        }
        if (dev.backend() instanceof CudaBackend cuda) {
            return cuda.peakAllocatedBytes();
        }
        return 0;
    }

    private static long heapUsed() {
        long used = 0;
        for (MemoryPoolMXBean p : ManagementFactory.getMemoryPoolMXBeans()) {
            if (p.getType() == MemoryType.HEAP) {
                used += p.getUsage().getUsed();
            }
        }
        return used;
    }

    /** A line of /proc/self/status in bytes (Linux), or -1. */
    private static long rssBytes(String field) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith(field)) {
                    return Long.parseLong(line.substring(field.length()).trim().split("\\s+")[0]) * 1024;
                }
            }
        } catch (IOException | RuntimeException e) {
            return -1;
        }
        return -1;
    }

    /** Resets the peak resident set (VmHWM) to the current one: "5" to /proc/self/clear_refs (Linux). */
    private static boolean resetPeakRss() {
        try {
            Files.writeString(Path.of("/proc/self/clear_refs"), "5");
            return true;
        } catch (IOException | RuntimeException e) {
            return false;
        }
    }

    private static float[] gaussian(int count, long seed) {
        Random r = new Random(seed);
        float[] a = new float[count];
        for (int i = 0; i < count; i++) {
            a[i] = (float) r.nextGaussian();
        }
        return a;
    }

    private static float[] labels(int count, long seed) {
        Random r = new Random(seed);
        float[] a = new float[count];
        for (int i = 0; i < count; i++) {
            a[i] = r.nextInt(10);
        }
        return a;
    }
}
