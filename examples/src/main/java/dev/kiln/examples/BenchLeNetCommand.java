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
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

/**
 * LeNet-BN training and inference throughput on random data already on the device: no data loading, warm-up
 * excluded; the median of several timed rounds.
 */
@Command(name = "lenet", mixinStandardHelpOptions = true,
        description = "LeNet-5-BN training and inference images/s per batch size, and heap bytes allocated per training step.")
final class BenchLeNetCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Option(names = "--device", defaultValue = "auto", description = "auto, cpu or cuda (default: ${DEFAULT-VALUE}).")
    String device;

    @Option(names = "--batch-sizes", defaultValue = "64,256", split = ",", description = "Batch sizes (default: ${DEFAULT-VALUE}).")
    List<Integer> batchSizes;

    @Option(names = "--warmup", defaultValue = "30", description = "Untimed steps first (default: ${DEFAULT-VALUE}).")
    int warmup;

    @Option(names = "--steps", defaultValue = "60", description = "Timed steps per round (default: ${DEFAULT-VALUE}).")
    int steps;

    @Option(names = "--rounds", defaultValue = "5", description = "Timed rounds; the median is reported (default: ${DEFAULT-VALUE}).")
    int rounds;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        Device dev = Device.of(device);
        AllocationMeter meter = new AllocationMeter();
        out.printf(Locale.ROOT, "LeNet-5-BN on %s, %d cores, Java %s; median of %d rounds of %d steps after %d warm-up steps%n",
                dev.backend().description(), Runtime.getRuntime().availableProcessors(), System.getProperty("java.version"),
                rounds, steps, warmup);
        out.printf(Locale.ROOT, "%6s %18s %20s %24s%n", "batch", "train images/s", "inference images/s", "allocated bytes/step");
        out.flush();
        for (int batch : batchSizes) {
            Generator gen = new Generator(7);
            float[] images = new float[batch * 784];
            gen.fillNormal(images, 0f, 1f);
            float[] labels = new float[batch];
            for (int i = 0; i < batch; i++) {
                labels[i] = gen.nextInt(10);
            }
            try (LeNet5 net = new LeNet5(dev, gen); SGD sgd = new SGD(net.parameters(), 0.01f, 0.9f, 0f, false, 0f);
                 Tensor x = Tensor.of(dev, images, batch, 1, 28, 28); Tensor y = Tensor.of(dev, labels, batch)) {
                CrossEntropyLoss ce = new CrossEntropyLoss();
                Runnable trainStep = () -> {
                    try (TensorScope s = TensorScope.open()) {
                        sgd.zeroGrad();
                        ce.forward(net.forward(x), y).backward();
                        sgd.step();
                    }
                };
                for (int i = 0; i < warmup; i++) {
                    trainStep.run();
                }
                double[] trainRates = new double[rounds];
                long allocated = Long.MAX_VALUE;
                for (int r = 0; r < rounds; r++) {
                    long bytes0 = meter.allocatedBytes();
                    long t0 = System.nanoTime();
                    for (int i = 0; i < steps; i++) {
                        trainStep.run();
                    }
                    dev.backend().synchronize();
                    trainRates[r] = (double) batch * steps / ((System.nanoTime() - t0) / 1e9);
                    allocated = Math.min(allocated, (meter.allocatedBytes() - bytes0) / steps);
                }
                net.eval();
                Runnable inferStep = () -> {
                    try (GradMode g = GradMode.noGrad(); TensorScope s = TensorScope.open()) {
                        net.forward(x);
                    }
                };
                for (int i = 0; i < warmup; i++) {
                    inferStep.run();
                }
                double[] inferRates = new double[rounds];
                for (int r = 0; r < rounds; r++) {
                    long t0 = System.nanoTime();
                    for (int i = 0; i < steps; i++) {
                        inferStep.run();
                    }
                    dev.backend().synchronize();
                    inferRates[r] = (double) batch * steps / ((System.nanoTime() - t0) / 1e9);
                }
                out.printf(Locale.ROOT, "%6d %,18.0f %,20.0f %,24d%n", batch, median(trainRates), median(inferRates),
                        meter.supported() ? allocated : -1);
                out.flush();
            }
        }
        return 0;
    }

    static double median(double[] v) {
        double[] s = v.clone();
        java.util.Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }
}
