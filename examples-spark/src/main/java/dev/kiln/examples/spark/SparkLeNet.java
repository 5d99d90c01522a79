package dev.kiln.examples.spark;

import dev.kiln.data.ImageDataset;
import dev.kiln.data.ImageSplit;
import dev.kiln.datasets.MnistLocator;
import dev.kiln.distributed.DataParallel;
import dev.kiln.inference.Predictor;
import dev.kiln.spark.DistributedTrainer;
import dev.kiln.spark.KilnScorer;
import dev.kiln.spark.TrainingReport;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static org.apache.spark.sql.functions.col;

/**
 * {@code ./kiln spark-lenet}: trains LeNet-5 with SyncBatchNorm on MNIST with N barrier tasks, then scores the
 * test set as a DataFrame with {@link KilnScorer}, and compares the scoring throughput with one {@link Predictor}
 * in this JVM on the same cores. Runs in local mode by default; with {@code spark-submit} the master comes from
 * the submission (see docs/spark.md).
 */
public final class SparkLeNet {

    private SparkLeNet() {
    }

    private static final String USAGE = """
            usage: ./kiln spark-lenet [options]
              --data DIR            MNIST directory (else KILN_MNIST_DIR, the cache, a download)
              --master URL          Spark master when not set by spark-submit (default local[TASKS])
              --tasks N             barrier tasks = model replicas (default 2)
              --epochs N            (default 1)
              --batch-size N        per task; the global batch is N * tasks (default 32)
              --lr X                SGD learning rate, cosine-decayed (default 0.1; momentum 0.9)
              --plain-bn            each task's own batch norm instead of SyncBatchNorm
              --average-every K     parameter averaging every K steps instead of gradient all-reduce
              --transport T         sockets (default) or barrier (every exchange through the driver)
              --device D            device of tasks without a Spark GPU: auto (default), cpu, cuda
              --save FILE           the trained model (self-contained safetensors)
              --model FILE          skip training: score this model (e.g. one saved with --save)
              --score-rounds N      timed scoring rounds after a warm-up (default 3)
            """;

    public static void main(String[] args) throws Exception {
        Map<String, String> opts = parse(args);
        int tasks = positive(opts, "tasks", "2");
        int epochs = positive(opts, "epochs", "1");
        int batch = positive(opts, "batch-size", "32");
        int rounds = positive(opts, "score-rounds", "3");
        if (opts.containsKey("average-every")) {
            positive(opts, "average-every", "1");
        }
        float lr;
        try {
            lr = Float.parseFloat(opts.getOrDefault("lr", "0.1"));
        } catch (NumberFormatException e) {
            lr = Float.NaN;
        }
        if (!(lr > 0)) {
            usageError("--lr expects a positive number, got " + opts.get("lr"));
        }
        String device = opts.getOrDefault("device", "auto");

        ImageDataset mnist = MnistLocator.fromEnvironment(opts.containsKey("data") ? Path.of(opts.get("data")) : null).load();
        System.out.printf(Locale.ROOT, "MNIST: %d training and %d test images (%s)%n", mnist.train().size(),
                mnist.test().size(), mnist.source());

        SparkSession.Builder builder = SparkSession.builder().appName("kiln-spark-lenet");
        if (opts.containsKey("master") || System.getProperty("spark.master") == null) {
            builder.master(opts.getOrDefault("master", "local[" + tasks + "]"))
                    .config("spark.driver.host", "127.0.0.1")
                    .config("spark.driver.bindAddress", "127.0.0.1")
                    .config("spark.ui.enabled", "false");
        }
        SparkSession spark = builder.getOrCreate();
        try {
            JavaSparkContext jsc = JavaSparkContext.fromSparkContext(spark.sparkContext());
            Dataset<Row> train = frame(spark, jsc, mnist.train(), tasks);
            Dataset<Row> test = frame(spark, jsc, mnist.test(), tasks).cache();
            test.count();

            byte[] model;
            if (opts.containsKey("model")) {
                model = Files.readAllBytes(Path.of(opts.get("model")));
            } else {
                model = train(train, opts, tasks, epochs, batch, lr, device);
            }

            // scoring as a DataFrame: warm-up (broadcast, predictor per executor), then timed rounds
            KilnScorer scorer = KilnScorer.of(model).inputCol("image").device(device);
            Dataset<Row> right = scorer.transform(test).filter(col("prediction").equalTo(col("label")));
            long c0 = System.nanoTime();
            long correct = right.count();
            double coldSeconds = (System.nanoTime() - c0) / 1e9;
            double sparkSeconds = Double.MAX_VALUE;
            for (int r = 0; r < rounds; r++) {
                long s0 = System.nanoTime();
                right.count();
                sparkSeconds = Math.min(sparkSeconds, (System.nanoTime() - s0) / 1e9);
            }
            double floorSeconds = Double.MAX_VALUE;
            for (int r = 0; r < rounds; r++) {
                long s0 = System.nanoTime();
                test.count();
                floorSeconds = Math.min(floorSeconds, (System.nanoTime() - s0) / 1e9);
            }
            int n = mnist.test().size();
            System.out.printf(Locale.ROOT, "test accuracy (scored as a DataFrame): %.2f%% (%d / %d)%n",
                    100.0 * correct / n, correct, n);

            double[] single = singleJvm(model, mnist.test(), tasks, rounds);
            System.out.printf(Locale.ROOT, "%nscoring %d test images, best of %d rounds after a warm-up (the first"
                    + " Spark run, with the broadcast and the predictor load: %.2f s):%n", n, rounds, coldSeconds);
            System.out.printf(Locale.ROOT, "| path | images/s | ratio to Spark |%n|---|---:|---:|%n");
            System.out.printf(Locale.ROOT, "| KilnScorer, local[%d], %d partitions | %.0f | 1.00 |%n", tasks, tasks,
                    n / sparkSeconds);
            System.out.printf(Locale.ROOT, "| (Spark alone: count of the cached frame, %.3f s) | | |%n", floorSeconds);
            System.out.printf(Locale.ROOT, "| one Predictor, 1 caller thread | %.0f | %.2f |%n", n / single[0],
                    sparkSeconds / single[0]);
            System.out.printf(Locale.ROOT, "| one Predictor, %d caller threads | %.0f | %.2f |%n", tasks, n / single[1],
                    sparkSeconds / single[1]);
        } finally {
            spark.stop();
        }
    }

    private static byte[] train(Dataset<Row> train, Map<String, String> opts, int tasks, int epochs, int batch,
                                float lr, String device) throws java.io.IOException {
        DistributedTrainer.Config config = new DistributedTrainer.Config().tasks(tasks).epochs(epochs)
                .batchSizePerTask(batch).sgd(lr, 0.9f, true).device(device)
                .syncBatchNorm(!opts.containsKey("plain-bn"))
                .transport("barrier".equals(opts.get("transport")) ? DistributedTrainer.Transport.BARRIER_ALL_GATHER
                        : DistributedTrainer.Transport.SOCKETS, java.time.Duration.ofMinutes(10));
        if (opts.containsKey("average-every")) {
            config.sync(DataParallel.Sync.PARAMETER_AVERAGING, Integer.parseInt(opts.get("average-every")));
        }
        long t0 = System.nanoTime();
        DistributedTrainer.Result result = DistributedTrainer.fit(train, "image", "label", config);
        double jobSeconds = (System.nanoTime() - t0) / 1e9;
        TrainingReport r0 = result.rank0();
        double trainSeconds = r0.trainNanos() / 1e9;
        long images = r0.images() * r0.worldSize();
        System.out.printf(Locale.ROOT, "training: %d tasks x batch %d (%s, %s), %d epochs, %d steps: %.1f s in the"
                        + " tasks (%.1f s job), %.0f images/s%n", tasks, batch,
                opts.containsKey("plain-bn") ? "plain batch norm" : "SyncBatchNorm",
                opts.containsKey("average-every") ? "parameter averaging" : "gradient all-reduce", epochs,
                r0.steps(), trainSeconds, jobSeconds, images / trainSeconds);
        System.out.printf(Locale.ROOT, "exchanges per step on rank 0: all-reduce %.2f ms, SyncBatchNorm %.2f ms"
                        + " (%.0f%% of the step); epoch losses %s%n",
                r0.collectiveNanos() / 1e6 / r0.steps(), r0.syncBatchNormNanos() / 1e6 / r0.steps(),
                100.0 * (r0.collectiveNanos() + r0.syncBatchNormNanos()) / r0.trainNanos(),
                Arrays.toString(Arrays.stream(r0.epochLosses()).mapToObj(v -> String.format(Locale.ROOT, "%.4f", v))
                        .toArray()));
        if (opts.containsKey("save")) {
            Files.write(Path.of(opts.get("save")), result.model());
            System.out.println("model: " + opts.get("save"));
        }
        return result.model();
    }

    /** Seconds to score the test set with one predictor: one caller, then {@code threads} callers. */
    private static double[] singleJvm(byte[] model, ImageSplit test, int threads, int rounds) throws Exception {
        int n = test.size();
        int px = test.rows() * test.cols();
        byte[][] images = new byte[n][];
        for (int i = 0; i < n; i++) {
            images[i] = Arrays.copyOfRange(test.images(), i * px, (i + 1) * px);
        }
        double[] best = {Double.MAX_VALUE, Double.MAX_VALUE};
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        try (Predictor p = Predictor.load(model)) {
            p.classes(Arrays.copyOf(images, 256));
            for (int r = 0; r < rounds; r++) {
                long s0 = System.nanoTime();
                for (int start = 0; start < n; start += 256) {
                    p.classes(Arrays.copyOfRange(images, start, Math.min(n, start + 256)));
                }
                best[0] = Math.min(best[0], (System.nanoTime() - s0) / 1e9);
                s0 = System.nanoTime();
                List<Future<?>> parts = new ArrayList<>();
                for (int t = 0; t < threads; t++) {
                    int from = (int) ((long) n * t / threads);
                    int to = (int) ((long) n * (t + 1) / threads);
                    parts.add(pool.submit(() -> {
                        for (int start = from; start < to; start += 256) {
                            p.classes(Arrays.copyOfRange(images, start, Math.min(to, start + 256)));
                        }
                    }));
                }
                for (Future<?> f : parts) {
                    f.get();
                }
                best[1] = Math.min(best[1], (System.nanoTime() - s0) / 1e9);
            }
        } finally {
            pool.shutdownNow();
        }
        return best;
    }

    private static final StructType SCHEMA = new StructType()
            .add("image", DataTypes.BinaryType, false)
            .add("label", DataTypes.IntegerType, false);

    private static Dataset<Row> frame(SparkSession spark, JavaSparkContext jsc, ImageSplit split, int partitions) {
        int px = split.rows() * split.cols();
        List<Row> rows = new ArrayList<>(split.size());
        for (int i = 0; i < split.size(); i++) {
            rows.add(RowFactory.create(Arrays.copyOfRange(split.images(), i * px, (i + 1) * px),
                    (int) split.labels()[i]));
        }
        return spark.createDataFrame(jsc.parallelize(rows, partitions), SCHEMA);
    }

    private static int positive(Map<String, String> opts, String key, String fallback) {
        String v = opts.getOrDefault(key, fallback);
        try {
            int n = Integer.parseInt(v);
            if (n >= 1) {
                return n;
            }
        } catch (NumberFormatException ignored) {
            // reported below
        }
        usageError("--" + key + " expects a positive integer, got " + v);
        return -1;
    }

    private static void usageError(String message) {
        System.err.println("spark-lenet: " + message);
        System.err.print(USAGE);
        System.exit(2);
    }

    private static Map<String, String> parse(String[] args) {
        Map<String, String> out = new LinkedHashMap<>();
        List<String> flags = List.of("plain-bn");
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.equals("--help") || a.equals("-h")) {
                System.out.print(USAGE);
                System.exit(0);
            }
            if (!a.startsWith("--") || !USAGE.contains(a + " ") && !USAGE.contains(a + "\n")) {
                System.err.println("spark-lenet: unknown option " + a);
                System.err.print(USAGE);
                System.exit(2);
            }
            String key = a.substring(2);
            if (flags.contains(key)) {
                out.put(key, "true");
            } else if (i + 1 >= args.length) {
                System.err.println("spark-lenet: " + a + " needs a value");
                System.exit(2);
            } else {
                out.put(key, args[++i]);
            }
        }
        return out;
    }
}
