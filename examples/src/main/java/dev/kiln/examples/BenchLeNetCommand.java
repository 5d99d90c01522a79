package dev.kiln.examples;

import dev.kiln.backend.Backend;
import dev.kiln.backend.BackendProfile;
import dev.kiln.core.Device;
import dev.kiln.core.Kiln;
import dev.kiln.core.Generator;
import dev.kiln.core.GradMode;
import dev.kiln.core.Tensor;
import dev.kiln.core.TensorScope;
import dev.kiln.models.LeNet5;
import dev.kiln.nn.CrossEntropyLoss;
import dev.kiln.nn.Module;
import dev.kiln.optim.SGD;
import dev.kiln.train.TrainingStep;
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
 * Training and inference images/s of LeNet-5-BN on random data already on the device (no data loading; each step
 * gathers its batch there, inference batches too, as bench/pytorch_lenet.py does), warm-up excluded, median of several timed rounds; plus the
 * bytes allocated on the Java heap per training step (all threads). Training goes through {@link TrainingStep}, the
 * step {@code ./kiln lenet} runs, optionally captured as a graph ({@code --graphs}).
 * Device-agnostic: it goes through the public Tensor / Module API only, so {@code --device cuda} measures the GPU.
 */
@Command(name = "lenet", mixinStandardHelpOptions = true, sortOptions = false,
        description = "LeNet-5-BN training and inference images/s on in-memory random data.")
class BenchLeNetCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Option(names = "--device", defaultValue = "auto", description = "auto, cpu or cuda (default: ${DEFAULT-VALUE}).")
    String device;

    @Option(names = "--batch-sizes", defaultValue = "64,256,1024", split = ",",
            description = "Comma-separated batch sizes (default: ${DEFAULT-VALUE}).")
    List<Integer> batchSizes;

    @Option(names = "--warmup", defaultValue = "150", description = "Untimed steps before measuring, at least; more follow"
            + " until the JIT compilers have been idle for 0.3 s (see --warmup-cap) (default: ${DEFAULT-VALUE}).")
    int warmup;

    @Option(names = "--warmup-cap", paramLabel = "SECONDS", defaultValue = "30", description = "How long each warm-up"
            + " (training, inference) may last in all while the JIT compilers are busy; 0 stops at --warmup steps"
            + " (default: ${DEFAULT-VALUE}).")
    double warmupCap;

    @Option(names = "--steps", defaultValue = "100", description = "Steps per timed round (default: ${DEFAULT-VALUE}).")
    int steps;

    @Option(names = "--rounds", defaultValue = "5", description = "Timed rounds; the median is reported (default: ${DEFAULT-VALUE}).")
    int rounds;

    @Option(names = "--graphs", description = "Capture the training step as a graph after the warm-up and replay it.")
    boolean graphs;

    @Option(names = "--pool", defaultValue = "4096",
            description = "Random images kept on the device; each step gathers its batch from them there (default: ${DEFAULT-VALUE}).")
    int pool;

    @Option(names = "--json", paramLabel = "FILE", description = "Also write the results as JSON.")
    java.nio.file.Path json;

    @Option(names = "--profile", description = "Also print, per backend op, calls and host time per training step and per inference batch"
            + " (time the host spends inside the call: checks, JNI, launch) over the timed rounds.")
    boolean profile;

    private BackendProfile backendProfile;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        if (!(warmupCap >= 0)) {
            throw new picocli.CommandLine.ParameterException(spec.commandLine(),
                    "need --warmup-cap >= 0 (seconds), got " + warmupCap);
        }
        if (warmup < 0 || steps < 1 || rounds < 1 || pool < 2 || batchSizes.isEmpty() || batchSizes.stream().anyMatch(b -> b < 2)) {
            throw new picocli.CommandLine.ParameterException(spec.commandLine(),
                    "need --warmup >= 0, --steps >= 1, --rounds >= 1, --pool >= 2 and batch sizes >= 2");
        }
        Device dev = Device.of(device);
        if (profile) {
            backendProfile = new BackendProfile();
            dev = Device.of(dev.name(), BackendProfile.wrap(dev.backend(), backendProfile));
        }
        out.println("device: " + dev.name() + " (" + dev.backend().description() + "), Java "
                + System.getProperty("java.version") + ", " + Runtime.getRuntime().availableProcessors() + " cores, "
                + "warm-up " + warmup + " steps or more (until the JIT is idle, within " + warmupCap + " s), median of "
                + rounds + " rounds x " + steps + " steps, SGD lr 0.1 momentum 0.9,"
                + " batches gathered on the device from " + pool + " images" + (graphs ? ", graphs requested" : ""));
        out.printf("%6s %16s %16s %14s %18s %s%n", "batch", "train img/s", "infer img/s", "train ms/step", "alloc B/train step", "step");
        out.flush();
        List<java.util.Map<String, Object>> rows = new java.util.ArrayList<>();
        for (int batch : batchSizes) {
            Result r = run(dev, batch);
            out.printf("%6d %16.0f %16.0f %14.3f %18.0f %s%n", batch, r.trainImagesPerSecond, r.inferImagesPerSecond,
                    1e3 * batch / r.trainImagesPerSecond, r.allocatedBytesPerStep, r.stepMode);
            out.flush();
            java.util.Map<String, Object> row = new java.util.LinkedHashMap<>();
            row.put("batch", batch);
            row.put("train_images_per_second", r.trainImagesPerSecond);
            row.put("inference_images_per_second", r.inferImagesPerSecond);
            row.put("train_ms_per_step", 1e3 * batch / r.trainImagesPerSecond);
            row.put("alloc_bytes_per_train_step", r.allocatedBytesPerStep);
            row.put("step", r.stepMode);
            row.put("warmup_train_steps", r.trainWarmupSteps);
            row.put("warmup_inference_steps", r.inferWarmupSteps);
            rows.add(row);
            if (r.profile != null) {
                out.println("  training step:");
                printProfile(out, r.profile, (long) rounds * steps, 1e3 * batch / r.trainImagesPerSecond);
                out.println("  inference batch:");
                printProfile(out, r.inferProfile, (long) rounds * steps, 1e3 * batch / r.inferImagesPerSecond);
            }
        }
        if (json != null) {
            java.util.Map<String, Object> doc = new java.util.LinkedHashMap<>();
            doc.put("kiln_version", Kiln.version());
            doc.put("device", dev.name());
            doc.put("backend", dev.backend().description());
            doc.put("java", System.getProperty("java.version"));
            doc.put("graphs_requested", graphs);
            doc.put("warmup", warmup);
            doc.put("steps", steps);
            doc.put("rounds", rounds);
            doc.put("throughput", rows);
            JsonFiles.write(json, doc);
        }
        return 0;
    }

    private long capNanos() {
        return (long) (warmupCap * 1e9);
    }

    record Result(double trainImagesPerSecond, double inferImagesPerSecond, double allocatedBytesPerStep, String stepMode,
                  List<BackendProfile.OpStats> profile, List<BackendProfile.OpStats> inferProfile, int trainWarmupSteps,
                  int inferWarmupSteps) {
    }

    private static void printProfile(PrintWriter out, List<BackendProfile.OpStats> ops, long steps, double msPerStep) {
        long calls = 0;
        long nanos = 0;
        for (BackendProfile.OpStats o : ops) {
            calls += o.calls();
            nanos += o.nanos();
        }
        out.printf("  host time in backend calls: %.1f calls/step, %.1f us/step of %.1f us/step (%.0f%%)%n",
                (double) calls / steps, nanos / 1e3 / steps, msPerStep * 1e3, 100 * nanos / 1e6 / steps / msPerStep);
        out.printf("  %-32s %10s %10s %10s%n", "op", "calls/step", "us/call", "us/step");
        for (BackendProfile.OpStats o : ops) {
            out.printf("  %-32s %10.1f %10.2f %10.1f%n", o.op(), (double) o.calls() / steps, o.microsPerCall(),
                    o.nanos() / 1e3 / steps);
        }
        out.flush();
    }

    Result run(Device dev, int batch) {
        Generator gen = new Generator(42);
        int poolSize = Math.max(pool, batch);
        float[] images = new float[poolSize * 28 * 28];
        gen.fillUniform(images, 0f, 1f);
        float[] labels = new float[poolSize];
        for (int i = 0; i < poolSize; i++) {
            labels[i] = gen.nextInt(10);
        }
        // a fixed cycle of random batches (indices drawn once, so drawing costs nothing inside the timed loop)
        int[][] order = new int[64][batch];
        for (int[] o : order) {
            for (int i = 0; i < batch; i++) {
                o[i] = gen.nextInt(poolSize);
            }
        }
        Backend be = dev.backend();
        try (Module model = newModel(dev);
             SGD sgd = new SGD(model.parameters(), 0.1f, 0.9f, 0f, false, 0f);
             TrainingStep step = new TrainingStep(model, new CrossEntropyLoss(), sgd, dev, batch, new int[]{1, 28, 28},
                     graphs, 3);
             Tensor poolImages = Tensor.unscoped(dev, images, poolSize, 1, 28, 28);
             Tensor poolLabels = Tensor.unscoped(dev, labels, poolSize)) {
            int[] next = {0};
            Runnable trainStep = () -> {
                int[] rows = order[next[0]++ % order.length];
                be.gatherRows(poolImages.buffer(), 28 * 28, rows, step.inputs().buffer());
                be.gatherRows(poolLabels.buffer(), 1, rows, step.targets().buffer());
                step.run();
            };
            int trainWarmup = JitWarmup.run(trainStep, warmup, 0L, capNanos());
            step.drain(); // waits for the warm-up; also checks that the loss is finite
            double[] train = new double[rounds];
            long allocated = 0;
            if (backendProfile != null) {
                backendProfile.reset();
            }
            for (int r = 0; r < rounds; r++) {
                long a0 = allocatedBytes();
                long t0 = System.nanoTime();
                for (int i = 0; i < steps; i++) {
                    trainStep.run();
                }
                TrainingStep.Totals totals = step.drain(); // the one host wait per round, as a training loop reporting its loss
                train[r] = (double) steps * batch / ((System.nanoTime() - t0) / 1e9);
                allocated += allocatedBytes() - a0;
                if (!Double.isFinite(totals.lossSum())) {
                    throw new IllegalStateException("bench lenet: the training loss became " + totals.lossSum());
                }
            }
            List<BackendProfile.OpStats> trainProfile = backendProfile == null ? null : backendProfile.snapshot();
            String mode = step.graphed() ? "graphed" : graphs ? "eager (" + step.eagerReason() + ")" : "eager";
            model.eval();
            Tensor x = step.inputs();
            // each inference batch is gathered like a training batch (as bench/pytorch_lenet.py does)
            Runnable inferStep = () -> {
                be.gatherRows(poolImages.buffer(), 28 * 28, order[next[0]++ % order.length], x.buffer());
                try (GradMode g = GradMode.noGrad(); TensorScope s = TensorScope.open()) {
                    model.forward(x);
                }
            };
            int inferWarmup = JitWarmup.run(inferStep, warmup, 0L, capNanos());
            be.synchronize();
            if (backendProfile != null) {
                backendProfile.reset();
            }
            double[] infer = new double[rounds];
            for (int r = 0; r < rounds; r++) {
                long t0 = System.nanoTime();
                for (int i = 0; i < steps; i++) {
                    inferStep.run();
                }
                be.synchronize();
                infer[r] = (double) steps * batch / ((System.nanoTime() - t0) / 1e9);
            }
            return new Result(median(train), median(infer), (double) allocated / ((long) rounds * steps), mode,
                    trainProfile, backendProfile == null ? null : backendProfile.snapshot(), trainWarmup, inferWarmup);
        }
    }

    /** The network timed, built with seed 42 (a subclass times another one on the same 1x28x28 images). */
    Module newModel(Device dev) {
        return new LeNet5(dev, new Generator(42));
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
