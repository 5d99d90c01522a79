package dev.kiln.spark;

import dev.kiln.core.Tensor;
import dev.kiln.data.Normalization;
import dev.kiln.distributed.DataParallel;
import dev.kiln.nn.CrossEntropyLoss;
import dev.kiln.nn.Loss;
import dev.kiln.optim.Optimizer;
import dev.kiln.optim.SGD;
import dev.kiln.train.LearningRateSchedule;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.rdd.RDD;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.BinaryType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.FloatType;
import org.apache.spark.sql.types.IntegerType;
import org.apache.spark.sql.types.LongType;
import org.apache.spark.sql.types.StructType;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import scala.reflect.ClassTag$;

import java.io.Serializable;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;

/**
 * Data-parallel training on Spark's barrier execution mode: the DataFrame is split into {@code tasks} partitions,
 * one barrier task per partition holds that shard and a model replica, and the replicas train in lock step through
 * the tasks' collective ({@link DataParallel}: rank 0's initial parameters broadcast, gradients averaged
 * after every step, or parameters averaged every k steps). Batch norm is {@code SyncBatchNorm} by default, so
 * {@code tasks} tasks with batch b train like one process with batch {@code tasks * b}; with plain batch norm the
 * running statistics are rank 0's (DDP's {@code broadcast_buffers}).
 *
 * <p>Each task runs the user's model ({@link Config#model}), loss ({@link Config#loss}), optimizer
 * ({@link Config#optimizer}) and learning-rate schedule ({@link Config#schedule}) through the same
 * {@link dev.kiln.train.Trainer} and {@link dev.kiln.train.TrainingStep} as training in one JVM, so the same
 * settings give the same model as {@link DataParallel} over threads on the same shards. Every task trains on as many
 * rows per epoch as the largest shard has, as PyTorch's {@code DistributedSampler} pads: a shorter shard repeats its
 * own rows (a warning names the sizes), so no row is left out; each task shuffles its shard anew every epoch.
 *
 * <p>The tasks meet through the barrier ({@link BarrierCollective}) and then, by default, exchange over direct
 * TCP connections ({@link SocketCollective}, {@link Transport}).
 *
 * <p>The returned model is rank 0's replica as self-contained bytes (the others are bitwise identical with
 * gradient averaging), ready for {@link KilnScorer} or {@code Predictor.load}.
 */
public final class DistributedTrainer {

    private static final Logger LOG = LoggerFactory.getLogger(DistributedTrainer.class);

    /** How the barrier tasks exchange data during training. */
    public enum Transport {
        /** rendezvous through the barrier, then direct TCP between the tasks ({@link SocketCollective}; default) */
        SOCKETS,
        /**
         * every exchange through {@code BarrierTaskContext.allGather} via the driver: no extra ports, but Spark
         * polls for each answer once a second, so each exchange takes about a second
         */
        BARRIER_ALL_GATHER
    }

    /** Everything a barrier task needs to know; serializable. */
    public static final class Config implements Serializable {
        private static final long serialVersionUID = 1L;
        int tasks = 2;
        int epochs = 1;
        int batchSizePerTask = 32;
        OptimizerFactory optimizer = sgdFactory(0.1f, 0.9f);
        LossFactory loss = CrossEntropyLoss::new;
        LearningRateSchedule schedule = serializableCosine();
        long bucketBytes = DataParallel.DEFAULT_BUCKET_BYTES;
        String checkpoint;
        String resumeFrom;
        long seed = 42;
        boolean syncBatchNorm = true;
        DataParallel.Sync sync = DataParallel.Sync.GRADIENTS;
        int averageEvery = 1;
        boolean broadcastBuffers = true;
        String device = "auto";
        float pixelScale = Normalization.MNIST.scale();
        float pixelMean = Normalization.MNIST.mean();
        float pixelStd = Normalization.MNIST.std();
        ReplicaFactory factory = ReplicaFactory.lenet5();
        int[] inputShape = {1, 28, 28};
        Transport transport = Transport.SOCKETS;
        java.time.Duration timeout = java.time.Duration.ofMinutes(10);

        public Config tasks(int n) {
            this.tasks = positive(n, "tasks");
            return this;
        }

        public Config epochs(int n) {
            this.epochs = positive(n, "epochs");
            return this;
        }

        /** Batch size of each task; the global batch is {@code tasks * batchSizePerTask}. */
        public Config batchSizePerTask(int n) {
            this.batchSizePerTask = positive(n, "batchSizePerTask");
            return this;
        }

        /** SGD learning rate and momentum (defaults 0.1, 0.9); {@code cosine} decays the rate to 0 over the run. */
        public Config sgd(float lr, float momentum, boolean cosine) {
            if (!(lr > 0) || !(momentum >= 0 && momentum < 1)) {
                throw new IllegalArgumentException("DistributedTrainer: need lr > 0 and momentum in [0, 1), got "
                        + lr + ", " + momentum);
            }
            this.optimizer = sgdFactory(lr, momentum);
            this.schedule = cosine ? serializableCosine() : serializableConstant();
            return this;
        }

        /**
         * The optimizer each task builds over its replica's parameters (default: SGD with lr 0.1, momentum 0.9),
         * e.g. {@code params -> new AdamW(params, 1e-3f)}; its learning rate is the base of the {@link #schedule}.
         */
        public Config optimizer(OptimizerFactory factory) {
            this.optimizer = Objects.requireNonNull(factory, "optimizer");
            return this;
        }

        /** The loss each task builds (default cross-entropy). */
        public Config loss(LossFactory factory) {
            this.loss = Objects.requireNonNull(factory, "loss");
            return this;
        }

        /**
         * How the learning rate changes over the run (default cosine): any {@link LearningRateSchedule} that is also
         * {@link Serializable}, e.g. {@code (LearningRateSchedule & Serializable) (base, progress) -> base}.
         */
        public <S extends LearningRateSchedule & Serializable> Config schedule(S schedule) {
            this.schedule = Objects.requireNonNull(schedule, "schedule");
            return this;
        }

        /**
         * Rank 0 writes a checkpoint (model, optimizer state, completed epochs, history) to {@code path} after every
         * epoch, atomically; the path must be one the executors can write and, to resume, read (local mode: a local
         * path; a cluster: a shared file system). Null (default): none.
         */
        public Config checkpoint(String path) {
            this.checkpoint = path;
            return this;
        }

        /**
         * Resume from a checkpoint written by {@link #checkpoint}: every task loads it and trains the epochs left of
         * {@link #epochs}. With the same data, partitioning and settings (gradient averaging) the result is the model
         * of an uninterrupted run. Null (default): start afresh.
         */
        public Config resumeFrom(String path) {
            this.resumeFrom = path;
            return this;
        }

        /** The most bytes of gradients one all-reduce carries (default 25 MiB, as PyTorch DDP). */
        public Config bucketBytes(long bytes) {
            if (bytes < Float.BYTES) {
                throw new IllegalArgumentException("DistributedTrainer: bucketBytes must hold at least one float, got "
                        + bytes);
            }
            this.bucketBytes = bytes;
            return this;
        }

        private static OptimizerFactory sgdFactory(float lr, float momentum) {
            return params -> new SGD(params, lr, momentum, 0f, false, 0f);
        }

        private static LearningRateSchedule serializableCosine() {
            return (LearningRateSchedule & Serializable) (base, progress) -> LearningRateSchedule.cosine().lr(base, progress);
        }

        private static LearningRateSchedule serializableConstant() {
            return (LearningRateSchedule & Serializable) (base, progress) -> base;
        }

        public Config seed(long seed) {
            this.seed = seed;
            return this;
        }

        /** SyncBatchNorm over all tasks (default) or each task's own batch norm. */
        public Config syncBatchNorm(boolean on) {
            this.syncBatchNorm = on;
            return this;
        }

        /** Gradient averaging every step (default), or parameter averaging every {@code averageEvery} steps. */
        public Config sync(DataParallel.Sync sync, int averageEvery) {
            this.sync = Objects.requireNonNull(sync);
            this.averageEvery = positive(averageEvery, "averageEvery");
            return this;
        }

        /** Copy rank 0's buffers to all tasks before each forward (DDP's default, on). */
        public Config broadcastBuffers(boolean on) {
            this.broadcastBuffers = on;
            return this;
        }

        /** Device of tasks without a Spark-assigned GPU ("auto", "cpu", ...). */
        public Config device(String spec) {
            this.device = Objects.requireNonNull(spec);
            return this;
        }

        /** How raw pixels become model inputs (default: MNIST's); recorded in the returned model. */
        public Config normalization(Normalization n) {
            this.pixelScale = n.scale();
            this.pixelMean = n.mean();
            this.pixelStd = n.std();
            return this;
        }

        /** The replica (default LeNet-5) and the shape of one of its input samples (default 1x28x28). */
        /** How tasks exchange data, and how long one exchange may wait for the others (default 10 minutes). */
        public Config transport(Transport transport, java.time.Duration timeout) {
            this.transport = Objects.requireNonNull(transport);
            this.timeout = Objects.requireNonNull(timeout);
            return this;
        }

        public Config model(ReplicaFactory factory, int... inputShape) {
            this.factory = Objects.requireNonNull(factory);
            this.inputShape = inputShape.clone();
            return this;
        }

        Normalization normalizationRecord() {
            return new Normalization(pixelScale, pixelMean, pixelStd);
        }

        private static int positive(int n, String what) {
            if (n < 1) {
                throw new IllegalArgumentException("DistributedTrainer: " + what + " must be at least 1, got " + n);
            }
            return n;
        }
    }

    /** Builds each task's optimizer over its replica's parameters; serializable, it travels with the job. */
    @FunctionalInterface
    public interface OptimizerFactory extends Serializable {
        Optimizer create(List<Tensor> parameters);
    }

    /** Builds each task's loss; serializable, it travels with the job. */
    @FunctionalInterface
    public interface LossFactory extends Serializable {
        Loss create();
    }

    /** The outcome of {@link #fit}: rank 0's model bytes and every task's report. */
    public record Result(byte[] model, List<TrainingReport> reports) {
        /** Rank 0's report. */
        public TrainingReport rank0() {
            return reports.stream().filter(r -> r.rank() == 0).findFirst().orElseThrow();
        }
    }

    private DistributedTrainer() {
    }

    /**
     * Trains on {@code data}: {@code imageCol} binary (uint8 pixels) or {@code array<float>} (raw values),
     * {@code labelCol} int or long class indices. Needs {@code config.tasks} free task slots at once (barrier mode).
     */
    public static Result fit(Dataset<Row> data, String imageCol, String labelCol, Config config) {
        StructType schema = data.schema();
        checkColumn(schema, imageCol, true);
        checkColumn(schema, labelCol, false);
        boolean binary = schema.apply(imageCol).dataType() instanceof BinaryType;
        Dataset<Row> selected = data.select(imageCol, labelCol);
        if (selected.rdd().getNumPartitions() != config.tasks) {
            selected = selected.repartition(config.tasks);
        }
        JavaRDD<Row> rows = selected.toJavaRDD();
        RDD<TrainingReport> reports = rows.rdd().barrier()
                .mapPartitions(new TrainPartition(config, binary), false,
                        ClassTag$.MODULE$.apply(TrainingReport.class));
        List<TrainingReport> all = Arrays.asList((TrainingReport[]) reports.collect());
        Result result = new Result(all.stream().filter(r -> r.rank() == 0).findFirst().orElseThrow().model(),
                all.stream().sorted((a, b) -> Integer.compare(a.rank(), b.rank())).toList());
        TrainingReport r0 = result.rank0();
        LOG.info("distributed training: {} tasks, {} steps each; per step on rank 0: {} ms all-reduce, {} ms SyncBatchNorm"
                + " exchanges", config.tasks, r0.steps(),
                String.format("%.2f", r0.steps() == 0 ? 0 : r0.collectiveNanos() / 1e6 / r0.steps()),
                String.format("%.2f", r0.steps() == 0 ? 0 : r0.syncBatchNormNanos() / 1e6 / r0.steps()));
        return result;
    }

    private static void checkColumn(StructType schema, String name, boolean image) {
        if (!Arrays.asList(schema.fieldNames()).contains(name)) {
            throw new IllegalArgumentException("DistributedTrainer: no column '" + name + "' in " + schema.simpleString());
        }
        DataType t = schema.apply(name).dataType();
        boolean ok = image
                ? t instanceof BinaryType || (t instanceof ArrayType a && a.elementType() instanceof FloatType)
                : t instanceof IntegerType || t instanceof LongType;
        if (!ok) {
            throw new IllegalArgumentException("DistributedTrainer: column '" + name + "' has type " + t.simpleString()
                    + "; expected " + (image ? "binary (uint8 pixels) or array<float>" : "int or bigint class indices"));
        }
    }
}
