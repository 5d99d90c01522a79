package dev.kiln.examples;

import dev.kiln.core.Device;
import dev.kiln.core.Generator;
import dev.kiln.core.GradMode;
import dev.kiln.core.Tensor;
import dev.kiln.core.TensorScope;
import dev.kiln.data.Normalization;
import dev.kiln.inference.Predictor;
import dev.kiln.models.LeNet5;
import dev.kiln.train.ModelFiles;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.IntFunction;

/**
 * Scoring LeNet-5 from many caller threads: {@link Predictor#classes(byte[][])} (model from bytes, batch norm
 * folded, normalisation and scoping inside) beside the hand-assembled path a user writes without it (a shared eval
 * model, normalisation by hand, no-grad, a scope, forward, argmax on the host). Both score the same uint8 images;
 * images/s is the median of rounds, the two paths alternating within each round. Beside it, the process CPU time
 * per image (all of this JVM's threads), which other load on the machine disturbs far less than wall-clock rates.
 */
@Command(name = "predictor", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Predictor images/s at 1, 2 and 8 caller threads beside the hand-assembled scoring path.")
final class BenchPredictorCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Option(names = "--device", defaultValue = "cpu", description = "auto, cpu or cuda (default: ${DEFAULT-VALUE}).")
    String device;

    @Option(names = "--threads", defaultValue = "1,2,8", split = ",", description = "Caller threads (default: ${DEFAULT-VALUE}).")
    List<Integer> threads;

    @Option(names = "--batch-size", defaultValue = "64", description = "Images per call (default: ${DEFAULT-VALUE}).")
    int batchSize;

    @Option(names = "--seconds", defaultValue = "2", description = "Time per path per round (default: ${DEFAULT-VALUE}).")
    double seconds;

    @Option(names = "--rounds", defaultValue = "3", description = "Rounds; the median is reported (default: ${DEFAULT-VALUE}).")
    int rounds;

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut();
        if (threads.isEmpty() || threads.stream().anyMatch(t -> t < 1) || batchSize < 1 || !(seconds > 0) || rounds < 1) {
            throw new picocli.CommandLine.ParameterException(spec.commandLine(),
                    "need --threads >= 1, --batch-size >= 1, --seconds > 0 and --rounds >= 1");
        }
        Device dev = Device.of(device);
        byte[][] images = new byte[batchSize][784];
        SplittableRandom r = new SplittableRandom(7);
        for (byte[] img : images) {
            for (int i = 0; i < img.length; i++) {
                img[i] = (byte) r.nextInt(256);
            }
        }
        try (LeNet5 model = new LeNet5(dev, new Generator(42))) {
            try (TensorScope s = TensorScope.open()) {
                for (int i = 0; i < 3; i++) {   // running statistics worth folding
                    model.forward(Tensor.randn(dev, new Generator(i), 32, 1, 28, 28));
                }
            }
            model.eval();
            try (Predictor predictor = Predictor.load(ModelFiles.toBytes(model, Normalization.MNIST),
                    Predictor.Options.defaults().device(dev))) {
                int[] a = predictor.classes(images);
                int[] b = handAssembled(model, dev, images);
                int agree = 0;
                for (int i = 0; i < a.length; i++) {
                    agree += a[i] == b[i] ? 1 : 0;
                }
                out.println("device: " + dev.name() + " (" + dev.backend().description() + "), LeNet-5-BN, batches of "
                        + batchSize + " uint8 images, " + seconds + " s per path per round, median of " + rounds
                        + " rounds; classes agree on " + agree + "/" + a.length + " images");
                out.printf("%8s %22s %16s %8s %16s %16s%n", "threads", "hand-assembled img/s", "Predictor img/s",
                        "ratio", "hand CPU us/img", "Pred. CPU us/img");
                for (int t : threads) {
                    double[][] hand = new double[2][rounds];
                    double[][] pred = new double[2][rounds];
                    for (int round = 0; round < rounds; round++) {
                        boolean predictorFirst = round % 2 == 1;
                        if (predictorFirst) {
                            store(pred, round, rate(t, i -> predictor.classes(images).length));
                        }
                        store(hand, round, rate(t, i -> handAssembled(model, dev, images).length));
                        if (!predictorFirst) {
                            store(pred, round, rate(t, i -> predictor.classes(images).length));
                        }
                    }
                    double h = median(hand[0]);
                    double p = median(pred[0]);
                    out.printf("%8d %22.0f %16.0f %8.2f %16.1f %16.1f%n", t, h, p, p / h, median(hand[1]), median(pred[1]));
                    out.flush();
                }
            }
        }
        return 0;
    }

    /** What a user writes without a Predictor: the README's inference loop. */
    static int[] handAssembled(LeNet5 model, Device dev, byte[][] images) {
        float[] x = new float[images.length * 784];
        for (int i = 0; i < images.length; i++) {
            for (int j = 0; j < 784; j++) {
                x[i * 784 + j] = Normalization.MNIST.apply(images[i][j] & 0xFF);
            }
        }
        float[] logits;
        try (GradMode g = GradMode.noGrad(); TensorScope s = TensorScope.open()) {
            logits = model.forward(Tensor.of(dev, x, images.length, 1, 28, 28)).toArray();
        }
        int[] classes = new int[images.length];
        for (int i = 0; i < images.length; i++) {
            int best = 0;
            for (int c = 1; c < 10; c++) {
                best = logits[i * 10 + c] > logits[i * 10 + best] ? c : best;
            }
            classes[i] = best;
        }
        return classes;
    }

    private static void store(double[][] into, int round, double[] rateAndCpu) {
        into[0][round] = rateAndCpu[0];
        into[1][round] = rateAndCpu[1];
    }

    /**
     * Images per second with {@code threads} callers each calling {@code score} for {@code seconds}, and the process
     * CPU microseconds per image.
     */
    private double[] rate(int threads, IntFunction<Integer> score) throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        try {
            score.apply(0);   // warm
            AtomicBoolean stop = new AtomicBoolean();
            CyclicBarrier start = new CyclicBarrier(threads + 1);
            List<Future<Long>> callers = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                callers.add(pool.submit(() -> {
                    start.await();
                    long images = 0;
                    while (!stop.get()) {
                        images += score.apply(0);
                    }
                    return images;
                }));
            }
            java.lang.management.OperatingSystemMXBean os = java.lang.management.ManagementFactory.getOperatingSystemMXBean();
            long cpu0 = os instanceof com.sun.management.OperatingSystemMXBean sun ? sun.getProcessCpuTime() : -1;
            start.await();
            long t0 = System.nanoTime();
            Thread.sleep((long) (seconds * 1000));
            stop.set(true);
            long total = 0;
            for (Future<Long> f : callers) {
                total += f.get();
            }
            double wall = (System.nanoTime() - t0) / 1e9;
            long cpu1 = os instanceof com.sun.management.OperatingSystemMXBean sun ? sun.getProcessCpuTime() : -1;
            double cpuPerImage = cpu0 < 0 || total == 0 ? Double.NaN : (cpu1 - cpu0) / 1e3 / total;
            return new double[]{total / wall, cpuPerImage};
        } finally {
            pool.shutdownNow();
        }
    }

    private static double median(double[] values) {
        double[] v = values.clone();
        Arrays.sort(v);
        return v[v.length / 2];
    }
}
