package dev.kiln.examples;

import dev.kiln.core.Device;
import dev.kiln.core.Generator;
import dev.kiln.core.GradMode;
import dev.kiln.core.Tensor;
import dev.kiln.core.TensorScope;
import dev.kiln.models.LeNet5;
import dev.kiln.nn.CrossEntropyLoss;
import dev.kiln.optim.SGD;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

import java.io.PrintWriter;
import java.lang.management.ManagementFactory;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Callable;

/**
 * Training and inference images/s of LeNet-5-BN on random data already on the device (no data loading), warm-up
 * excluded, median of several timed rounds; plus the bytes allocated on the Java heap per training step (all threads).
 * Device-agnostic: it goes through the public Tensor / Module API only, so {@code --device cuda} measures the GPU.
 */
@Command(name = "lenet", mixinStandardHelpOptions = true, sortOptions = false,
        description = "LeNet-5-BN training and inference images/s on in-memory random data.")
final class BenchLeNetCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Option(names = "--device", defaultValue = "auto", description = "auto, cpu or cuda (default: ${DEFAULT-VALUE}).")
    String device;

    @Option(names = "--batch-sizes", defaultValue = "64,256", split = ",",
            description = "Comma-separated batch sizes (default: ${DEFAULT-VALUE}).")
    List<Integer> batchSizes;

    @Option(names = "--warmup", defaultValue = "150", description = "Untimed steps before measuring (default: ${DEFAULT-VALUE}).")
    int warmup;

    @Option(names = "--steps", defaultValue = "100", description = "Steps per timed round (default: ${DEFAULT-VALUE}).")
    int steps;

    @Option(names = "--rounds", defaultValue = "5", description = "Timed rounds; the median is reported (default: ${DEFAULT-VALUE}).")
    int rounds;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        if (warmup < 0 || steps < 1 || rounds < 1 || batchSizes.isEmpty() || batchSizes.stream().anyMatch(b -> b < 2)) {
            throw new picocli.CommandLine.ParameterException(spec.commandLine(),
                    "need --warmup >= 0, --steps >= 1, --rounds >= 1 and batch sizes >= 2");
        }
        Device dev = Device.of(device);
        out.println("device: " + dev.name() + " (" + dev.backend().description() + "), Java "
                + System.getProperty("java.version") + ", " + Runtime.getRuntime().availableProcessors() + " cores, "
                + "warm-up " + warmup + " steps, median of " + rounds + " rounds x " + steps + " steps");
        out.printf("%6s %16s %16s %14s %18s%n", "batch", "train img/s", "infer img/s", "train ms/step", "alloc B/train step");
        out.flush();
        for (int batch : batchSizes) {
            Result r = run(dev, batch);
            out.printf("%6d %16.0f %16.0f %14.3f %18.0f%n", batch, r.trainImagesPerSecond, r.inferImagesPerSecond,
                    1e3 * batch / r.trainImagesPerSecond, r.allocatedBytesPerStep);
            out.flush();
        }
        return 0;
    }

    record Result(double trainImagesPerSecond, double inferImagesPerSecond, double allocatedBytesPerStep) {
    }

    Result run(Device dev, int batch) {
        Generator gen = new Generator(42);
        float[] images = new float[batch * 28 * 28];
        gen.fillUniform(images, 0f, 1f);
        float[] labels = new float[batch];
        for (int i = 0; i < batch; i++) {
            labels[i] = gen.nextInt(10);
        }
        try (LeNet5 model = new LeNet5(dev, new Generator(42));
             SGD sgd = new SGD(model.parameters(), 0.01f, 0.9f, 0f, false, 0f);
             Tensor x = Tensor.unscoped(dev, images, batch, 1, 28, 28);
             Tensor y = Tensor.unscoped(dev, labels, batch)) {
            CrossEntropyLoss loss = new CrossEntropyLoss();
            model.train();
            Runnable trainStep = () -> {
                try (TensorScope s = TensorScope.open()) {
                    sgd.zeroGrad();
                    Tensor l = loss.forward(model.forward(x), y);
                    l.backward();
                    sgd.step();
                    l.item(); // what a training loop does once per step (and a host sync on asynchronous devices)
                }
            };
            for (int i = 0; i < warmup; i++) {
                trainStep.run();
            }
            double[] train = new double[rounds];
            long allocated = 0;
            for (int r = 0; r < rounds; r++) {
                long a0 = allocatedBytes();
                long t0 = System.nanoTime();
                for (int i = 0; i < steps; i++) {
                    trainStep.run();
                }
                dev.backend().synchronize();
                train[r] = (double) steps * batch / ((System.nanoTime() - t0) / 1e9);
                allocated += allocatedBytes() - a0;
            }
            model.eval();
            Runnable inferStep = () -> {
                try (GradMode g = GradMode.noGrad(); TensorScope s = TensorScope.open()) {
                    model.forward(x);
                }
            };
            for (int i = 0; i < warmup; i++) {
                inferStep.run();
            }
            dev.backend().synchronize();
            double[] infer = new double[rounds];
            for (int r = 0; r < rounds; r++) {
                long t0 = System.nanoTime();
                for (int i = 0; i < steps; i++) {
                    inferStep.run();
                }
                dev.backend().synchronize();
                infer[r] = (double) steps * batch / ((System.nanoTime() - t0) / 1e9);
            }
            return new Result(median(train), median(infer), (double) allocated / ((long) rounds * steps));
        }
    }

    static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        int n = s.length;
        return n % 2 == 1 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
    }

    /** Bytes allocated so far on the Java heap by every live thread (-1 entries, threads gone, are skipped). */
    static long allocatedBytes() {
        java.lang.management.ThreadMXBean mx = ManagementFactory.getThreadMXBean();
        if (mx instanceof com.sun.management.ThreadMXBean sun && sun.isThreadAllocatedMemorySupported()) {
            long[] ids = mx.getAllThreadIds();
            long total = 0;
            for (long a : sun.getThreadAllocatedBytes(ids)) {
                if (a > 0) {
                    total += a;
                }
            }
            return total;
        }
        return 0;
    }
}
