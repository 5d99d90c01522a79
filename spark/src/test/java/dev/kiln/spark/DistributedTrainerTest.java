package dev.kiln.spark;

import dev.kiln.core.Device;
import dev.kiln.core.Generator;
import dev.kiln.core.Tensor;
import dev.kiln.nn.Loss;
import org.apache.spark.TaskContext;
import org.junit.jupiter.api.io.TempDir;
import dev.kiln.data.ArrayDataset;
import dev.kiln.distributed.Collective;
import dev.kiln.models.LeNet5;
import dev.kiln.nn.CrossEntropyLoss;
import dev.kiln.optim.Adam;
import dev.kiln.optim.Optimizer;
import dev.kiln.train.LearningRateSchedule;
import dev.kiln.train.ModelFiles;
import dev.kiln.train.Trainer;
import dev.kiln.data.Normalization;
import dev.kiln.distributed.DataParallel;
import dev.kiln.distributed.LocalCollectiveGroup;
import dev.kiln.inference.Predictor;
import dev.kiln.io.SafeTensors;
import dev.kiln.nn.StateDict;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.Serializable;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicLong;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Barrier-mode training in local[2]. The exactness of data parallelism itself (2 x 32 == 1 x 64, with and without
 * SyncBatchNorm) is proven in core's DataParallelSuite over threads; here the same loop over Spark's barrier
 * collective must give bitwise the model the thread collective gives on the same shards.
 */
class DistributedTrainerTest {

    private static final int COUNT = 256;
    private static SparkSession spark;
    private static List<Row> rows;

    private static final StructType SCHEMA = new StructType()
            .add("image", DataTypes.BinaryType, false)
            .add("label", DataTypes.IntegerType, false);

    @BeforeAll
    static void start() {
        spark = LocalSpark.start("DistributedTrainerTest");
        byte[][] images = TestModels.images(COUNT, 21);
        rows = new ArrayList<>();
        for (int i = 0; i < COUNT; i++) {
            rows.add(RowFactory.create(images[i], TestModels.label(i)));
        }
    }

    @AfterAll
    static void stop() {
        if (spark != null) {
            spark.stop();
        }
    }

    /** Two partitions: the first and the second half of the rows, in order. */
    private static Dataset<Row> frame() {
        JavaSparkContext jsc = JavaSparkContext.fromSparkContext(spark.sparkContext());
        return spark.createDataFrame(jsc.parallelize(rows, 2), SCHEMA);
    }

    private static byte[] onThreads(DistributedTrainer.Config config) throws Exception {
        LocalCollectiveGroup group = new LocalCollectiveGroup(2);
        ExecutorService pool = Executors.newFixedThreadPool(2);
        try {
            List<Future<TrainingReport>> futures = new ArrayList<>();
            for (int r = 0; r < 2; r++) {
                int rank = r;
                List<Row> half = rows.subList(rank * COUNT / 2, (rank + 1) * COUNT / 2);
                futures.add(pool.submit(() -> TrainPartition.train(group.member(rank),
                        TrainPartition.Shard.read(half.iterator(), true, Normalization.MNIST, rank), config,
                        Device.cpu())));
            }
            futures.get(1).get();
            return futures.get(0).get().model();
        } finally {
            pool.shutdownNow();
        }
    }

    private static StateDict state(byte[] model) throws Exception {
        return SafeTensors.read(model, "model").tensors();
    }

    @Test
    void barrierTasksWithSyncBatchNormTrainBitwiseLikeTheThreadCollective() throws Exception {
        DistributedTrainer.Config config = new DistributedTrainer.Config().tasks(2).batchSizePerTask(16).epochs(2)
                .device("cpu").seed(7);
        DistributedTrainer.Result result = DistributedTrainer.fit(frame(), "image", "label", config);
        assertEquals(2, result.reports().size());
        for (TrainingReport r : result.reports()) {
            assertEquals(16, r.steps(), "8 steps of 16 per shard of 128, 2 epochs");
            assertTrue(r.collectiveNanos() > 0 && r.syncBatchNormNanos() > 0, "exchanges were timed");
        }
        StateDict spark = state(result.model());
        StateDict threads = state(onThreads(config));
        assertEquals(threads.entries().keySet(), spark.entries().keySet());
        for (Map.Entry<String, StateDict.Entry> e : threads.entries().entrySet()) {
            if (e.getValue().dtype() == StateDict.DType.I64) {
                assertEquals(e.getValue().longValue(), spark.get(e.getKey()).longValue(), e.getKey());
            } else {
                assertArrayEquals(e.getValue().data(), spark.get(e.getKey()).data(), e.getKey());
            }
        }
        assertEquals(16, spark.get("bn1.num_batches_tracked").longValue());
        try (Predictor p = Predictor.load(result.model())) {
            assertEquals(10, p.numClasses());
        }
        double[] losses = result.rank0().epochLosses();
        assertTrue(losses[1] < losses[0], "the loss falls: " + losses[0] + " -> " + losses[1]);
    }

    /** Adam with weight decay and a linear decay: what a user would pass; the optimizer Spark used to ignore. */
    private static final DistributedTrainer.OptimizerFactory ADAM_WD =
            params -> new Adam(params, 2e-3f, 0.9f, 0.999f, 1e-8f, 1e-2f);

    private static <S extends LearningRateSchedule & Serializable> S linearDecay() {
        @SuppressWarnings("unchecked")
        S s = (S) (LearningRateSchedule & Serializable) (base, progress) -> (float) (base * (1 - 0.5 * progress));
        return s;
    }

    /**
     * The same training written by hand in one JVM, as a user would: one thread per replica, each with its own
     * LeNet-5 (SyncBatchNorm over the group), Adam, and a Trainer whose steps reduce through a DataParallel; rank r
     * trains on the r-th half of the rows, shuffled with the shard seed. Returns rank 0's model.
     */
    private static byte[] userWrittenOneJvm(long seed, int epochs, int batch) throws Exception {
        LocalCollectiveGroup group = new LocalCollectiveGroup(2);
        ExecutorService pool = Executors.newFixedThreadPool(2);
        try {
            List<Future<byte[]>> futures = new ArrayList<>();
            for (int r = 0; r < 2; r++) {
                int rank = r;
                List<Row> half = rows.subList(rank * COUNT / 2, (rank + 1) * COUNT / 2);
                float[][] samples = new float[half.size()][784];
                int[] labels = new int[half.size()];
                for (int i = 0; i < half.size(); i++) {
                    byte[] px = (byte[]) half.get(i).get(0);
                    for (int j = 0; j < 784; j++) {
                        samples[i][j] = Normalization.MNIST.apply(px[j] & 0xFF);
                    }
                    labels[i] = half.get(i).getInt(1);
                }
                futures.add(pool.submit(() -> {
                    Collective member = group.member(rank);
                    try (LeNet5 model = new LeNet5(Device.cpu(), new Generator(seed), member);
                         Optimizer adam = ADAM_WD.create(model.parameters());
                         DataParallel dp = new DataParallel(model, member)) {
                        Trainer trainer = Trainer.builder().model(model).loss(new CrossEntropyLoss()).optimizer(adam)
                                .device(Device.cpu()).epochs(epochs).batchSize(batch)
                                .seed(TrainPartition.shardSeed(seed, rank)).schedule(linearDecay()).sync(dp).build();
                        trainer.fit(new ArrayDataset(samples, labels, 1, 28, 28), null);
                        return ModelFiles.toBytes(model, Normalization.MNIST);
                    } catch (RuntimeException | Error e) {
                        group.abort();
                        throw e;
                    }
                }));
            }
            futures.get(1).get();
            return futures.get(0).get();
        } finally {
            pool.shutdownNow();
        }
    }

    private static void assertSameState(StateDict want, StateDict got) {
        assertEquals(want.entries().keySet(), got.entries().keySet());
        for (Map.Entry<String, StateDict.Entry> e : want.entries().entrySet()) {
            if (e.getValue().dtype() == StateDict.DType.I64) {
                assertEquals(e.getValue().longValue(), got.get(e.getKey()).longValue(), e.getKey());
            } else {
                assertArrayEquals(e.getValue().data(), got.get(e.getKey()).data(), e.getKey());
            }
        }
    }

    @Test
    void aUsersAdamWithWeightDecayAndScheduleGiveOnSparkTheModelOfOneJvmTraining() throws Exception {
        DistributedTrainer.Config config = new DistributedTrainer.Config().tasks(2).batchSizePerTask(16).epochs(2)
                .device("cpu").seed(7).optimizer(ADAM_WD).schedule(linearDecay()).bucketBytes(64 * 1024);
        DistributedTrainer.Result result = DistributedTrainer.fit(frame(), "image", "label", config);
        assertSameState(state(userWrittenOneJvm(7, 2, 16)), state(result.model()));
        double[] losses = result.rank0().epochLosses();
        assertTrue(losses[1] < losses[0], "the loss falls: " + losses[0] + " -> " + losses[1]);
    }

    /** When task 1's loss threw (ms since the epoch), or 0. */
    private static final AtomicLong FAILED_AT = new AtomicLong();

    /** Cross-entropy that throws in task 1 at its {@code failAt}-th call: a task dying mid-epoch. */
    private static DistributedTrainer.LossFactory failingInTask1(int failAt) {
        return () -> new Loss() {
            private final CrossEntropyLoss inner = new CrossEntropyLoss();
            private int calls;

            @Override
            public Tensor forward(Tensor input, Tensor target) {
                if (++calls == failAt && TaskContext.get() != null && TaskContext.getPartitionId() == 1) {
                    FAILED_AT.set(System.currentTimeMillis());
                    throw new IllegalStateException("task 1 dies in its step " + failAt);
                }
                return inner.forward(input, target);
            }
        };
    }

    @Test
    void aTaskDyingMidEpochFailsTheJobQuicklyAndResumingFromTheCheckpointGivesTheUninterruptedModel(@TempDir Path dir)
            throws Exception {
        Path checkpoint = dir.resolve("run.ckpt");
        DistributedTrainer.Config config = new DistributedTrainer.Config().tasks(2).batchSizePerTask(16).epochs(2)
                .device("cpu").seed(11).optimizer(ADAM_WD).checkpoint(checkpoint.toString());
        byte[] uninterrupted = DistributedTrainer.fit(frame(), "image", "label", config.checkpoint(null)).model();

        // 8 steps per epoch: task 1 dies in the third step of the second epoch, after the first epoch's checkpoint
        FAILED_AT.set(0);
        Exception failed = assertThrows(Exception.class, () -> DistributedTrainer.fit(frame(), "image", "label",
                config.checkpoint(checkpoint.toString()).loss(failingInTask1(8 + 3))));
        long seconds = (System.currentTimeMillis() - FAILED_AT.get()) / 1000;
        assertTrue(FAILED_AT.get() > 0, "task 1 failed as planned: " + failed);
        assertTrue(seconds < 30, "the job failed " + seconds + " s after task 1 died");
        // whichever failure Spark hears of first, the message names the task that died
        String message = String.valueOf(failed.getMessage());
        assertTrue(message.contains("task 1 dies") || message.contains("rank 1 closed its connection"), message);
        assertTrue(Files.exists(checkpoint), "the first epoch's checkpoint was written");

        DistributedTrainer.Result resumed = DistributedTrainer.fit(frame(), "image", "label",
                config.loss(CrossEntropyLoss::new).checkpoint(null).resumeFrom(checkpoint.toString()));
        assertSameState(state(uninterrupted), state(resumed.model()));
        assertEquals(8, resumed.rank0().steps(), "only the second epoch ran");
        assertEquals(2, resumed.rank0().epochLosses().length, "the history holds both epochs");
    }

    @Test
    void unequalPartitionsArePaddedNotTruncated() throws Exception {
        JavaSparkContext jsc = JavaSparkContext.fromSparkContext(spark.sparkContext());
        // 128 and 40 rows: every task trains on 128 rows per epoch (8 steps of 16), the short shard repeating rows
        Dataset<Row> skewed = spark.createDataFrame(jsc.parallelize(rows, 2).mapPartitionsWithIndex((index, it) -> {
            List<Row> kept = new ArrayList<>();
            while (it.hasNext() && (index == 0 || kept.size() < 40)) {
                kept.add(it.next());
            }
            return kept.iterator();
        }, true), SCHEMA);
        DistributedTrainer.Config config = new DistributedTrainer.Config().tasks(2).batchSizePerTask(16).epochs(1)
                .device("cpu");
        DistributedTrainer.Result result = DistributedTrainer.fit(skewed, "image", "label", config);
        for (TrainingReport r : result.reports()) {
            assertEquals(8, r.steps(), "rank " + r.rank());
            assertEquals(128, r.images(), "rank " + r.rank());
        }
    }

    @Test
    void parameterAveragingWithPlainBatchNormAlsoRunsOverRepartitionedData() throws Exception {
        JavaSparkContext jsc = JavaSparkContext.fromSparkContext(spark.sparkContext());
        Dataset<Row> five = spark.createDataFrame(jsc.parallelize(rows, 5), SCHEMA);   // repartitioned to 2
        DistributedTrainer.Config config = new DistributedTrainer.Config().tasks(2).batchSizePerTask(16)
                .syncBatchNorm(false).sync(DataParallel.Sync.PARAMETER_AVERAGING, 4).device("cpu");
        DistributedTrainer.Result result = DistributedTrainer.fit(five, "image", "label", config);
        assertEquals(result.reports().get(0).steps(), result.reports().get(1).steps());
        assertTrue(result.rank0().steps() >= 4);
        assertEquals(0, result.reports().get(1).syncBatchNormNanos(), "no SyncBatchNorm exchanges");
        try (Predictor p = Predictor.load(result.model())) {
            assertEquals(10, p.numClasses());
        }
    }

    @Test
    void theBarrierAllGatherTransportGivesTheSameModel() throws Exception {
        // 2 shards of 32 rows in 2 partitions, one step: every exchange through the driver (about 1 s each)
        JavaSparkContext jsc = JavaSparkContext.fromSparkContext(spark.sparkContext());
        List<Row> few = new ArrayList<>(rows.subList(0, 32));
        few.addAll(rows.subList(COUNT / 2, COUNT / 2 + 32));
        Dataset<Row> small = spark.createDataFrame(jsc.parallelize(few, 2), SCHEMA);
        DistributedTrainer.Config base = new DistributedTrainer.Config().tasks(2).batchSizePerTask(32)
                .syncBatchNorm(false).broadcastBuffers(false).device("cpu");
        byte[] viaDriver = DistributedTrainer.fit(small, "image", "label",
                base.transport(DistributedTrainer.Transport.BARRIER_ALL_GATHER, java.time.Duration.ofMinutes(2))).model();
        byte[] viaSockets = DistributedTrainer.fit(small, "image", "label",
                base.transport(DistributedTrainer.Transport.SOCKETS, java.time.Duration.ofMinutes(2))).model();
        assertArrayEquals(viaSockets, viaDriver);
    }

    @Test
    void badInputIsNamed() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> DistributedTrainer.fit(frame(), "label", "label", new DistributedTrainer.Config()));
        assertTrue(e.getMessage().contains("'label'") && e.getMessage().contains("binary"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new DistributedTrainer.Config().tasks(0));
        // a shard smaller than one batch stops every task with the reason
        Exception failed = assertThrows(Exception.class, () -> DistributedTrainer.fit(frame(), "image", "label",
                new DistributedTrainer.Config().tasks(2).batchSizePerTask(1000).device("cpu")));
        assertTrue(String.valueOf(rootCause(failed).getMessage()).contains("fewer than one batch of 1000"),
                String.valueOf(rootCause(failed)));
    }

    private static Throwable rootCause(Throwable t) {
        while (t.getCause() != null && t.getCause() != t) {
            t = t.getCause();
        }
        return t;
    }
}
