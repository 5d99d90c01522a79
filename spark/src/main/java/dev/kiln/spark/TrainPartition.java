package dev.kiln.spark;

import dev.kiln.core.Device;
import dev.kiln.core.Generator;
import dev.kiln.data.DataLoader;
import dev.kiln.data.Dataset;
import dev.kiln.data.Normalization;
import dev.kiln.distributed.DataParallel;
import dev.kiln.nn.Module;
import dev.kiln.optim.Optimizer;
import dev.kiln.train.EpochMetrics;
import dev.kiln.train.ModelFiles;
import dev.kiln.train.Trainer;
import dev.kiln.train.TrainingListener;
import org.apache.spark.BarrierTaskContext;
import org.apache.spark.sql.Row;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import scala.collection.Iterator;
import scala.jdk.javaapi.CollectionConverters;
import scala.runtime.AbstractFunction1;

import java.io.Serializable;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;

/** The body of one barrier task: load the shard, build the replica, train in lock step, report. */
final class TrainPartition extends AbstractFunction1<Iterator<Row>, Iterator<TrainingReport>> implements Serializable {

    private static final long serialVersionUID = 1L;
    private static final Logger LOG = LoggerFactory.getLogger(TrainPartition.class);

    private final DistributedTrainer.Config config;
    private final boolean binary;

    TrainPartition(DistributedTrainer.Config config, boolean binary) {
        this.config = config;
        this.binary = binary;
    }

    @Override
    public Iterator<TrainingReport> apply(Iterator<Row> rows) {
        BarrierTaskContext ctx = BarrierTaskContext.get();
        BarrierCollective barrier = new BarrierCollective(ctx);
        Shard shard = Shard.read(CollectionConverters.asJava(rows), binary, config.normalizationRecord(),
                barrier.rank());
        Device device = TaskDevices.device(config.device);
        if (config.transport == DistributedTrainer.Transport.BARRIER_ALL_GATHER) {
            try (Watchdog ignored = Watchdog.start(ctx, () -> { })) {
                return CollectionConverters.asScala(List.of(train(barrier, shard, config, device)).iterator());
            }
        }
        String host = hostOf(ctx.getTaskInfos()[barrier.rank()].address());
        try (SocketCollective sockets = SocketCollective.connect(barrier, host, config.timeout);
             Watchdog ignored = Watchdog.start(ctx, sockets)) {
            return CollectionConverters.asScala(List.of(train(sockets, shard, config, device)).iterator());
        }
    }

    /**
     * Watches the barrier task while it trains: when Spark kills it (another task of the barrier stage failed, the
     * job was cancelled), closes its sockets, which ends at once any exchange it is blocked in (its peers see the
     * connection close and fail too, instead of waiting for a read timeout), and interrupts the training thread,
     * which the trainer honours between steps.
     */
    static final class Watchdog implements AutoCloseable {
        private static final long PERIOD_MS = 250;
        private final ScheduledExecutorService timer;

        private Watchdog(ScheduledExecutorService timer) {
            this.timer = timer;
        }

        static Watchdog start(org.apache.spark.TaskContext ctx, AutoCloseable connections) {
            return start("task " + ctx.partitionId(), ctx::isInterrupted,
                    () -> ctx.getKillReason().getOrElse(() -> "no reason given"), connections);
        }

        /** Watches {@code killed} every 250 ms from a daemon thread; the calling thread is the one to interrupt. */
        static Watchdog start(String task, BooleanSupplier killed, Supplier<String> reason, AutoCloseable connections) {
            Thread training = Thread.currentThread();
            ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor(r -> {
                Thread t = new Thread(r, "kiln-watchdog-" + task.replace(' ', '-'));
                t.setDaemon(true);
                return t;
            });
            boolean[] fired = new boolean[1];
            timer.scheduleWithFixedDelay(() -> {
                if (!fired[0] && killed.getAsBoolean()) {
                    fired[0] = true;
                    LOG.warn("{} was killed ({}): closing its connections and stopping its training", task,
                            reason.get());
                    try {
                        connections.close();
                    } catch (Exception e) {
                        LOG.debug("closing the connections of a killed task", e);
                    }
                    training.interrupt();
                }
            }, PERIOD_MS, PERIOD_MS, TimeUnit.MILLISECONDS);
            return new Watchdog(timer);
        }

        @Override
        public void close() {
            timer.shutdownNow();
        }
    }

    /** The host of a barrier task's address ("host:port" of its executor, or a bare host). */
    static String hostOf(String address) {
        if (address.startsWith("[")) {
            return address.substring(1, address.indexOf(']'));
        }
        int colon = address.lastIndexOf(':');
        return colon > 0 && address.indexOf(':') == colon ? address.substring(0, colon) : address;
    }

    /**
     * Trains this member's replica on its shard in lock step with the other members of {@code collective}: the
     * user's model, loss, optimizer and schedule from {@code config}, run by a {@link Trainer} whose every step
     * reduces its gradients through a {@link DataParallel}. The same code whether the members are Spark barrier
     * tasks or threads.
     */
    static TrainingReport train(dev.kiln.distributed.Collective group, Shard shard, DistributedTrainer.Config config,
                                Device device) {
        TimedCollective collective = new TimedCollective(group);
        TimedCollective batchNormGroup = new TimedCollective(group);
        int rank = collective.rank();
        Normalization norm = config.normalizationRecord();
        long t0 = System.nanoTime();
        int rows = balancedShardSize(collective, shard, config.batchSizePerTask);
        int[] sampleShape = inputShape(config, shard.sampleSize);
        try (Module model = config.factory.create(device, new Generator(config.seed),
                config.syncBatchNorm ? batchNormGroup : null);
             Optimizer optimizer = config.optimizer.create(model.parameters());
             DataParallel dp = new DataParallel(model, collective, config.sync, config.averageEvery,
                     config.broadcastBuffers).bucketBytes(config.bucketBytes)) {
            Trainer trainer = Trainer.builder().model(model).loss(config.loss.create()).optimizer(optimizer)
                    .device(device).epochs(config.epochs).batchSize(config.batchSizePerTask)
                    .seed(config.seed).schedule(config.schedule).sync(dp)
                    .listener(new TrainingListener() {
                        @Override
                        public void onEpochEnd(EpochMetrics m) {
                            if (rank == 0) {
                                LOG.info("epoch {}: mean loss {} over {} images per task, {} tasks", m.epoch() + 1,
                                        String.format("%.4f", m.trainLoss()), m.trainImages(), collective.worldSize());
                            }
                        }
                    })
                    .checkpoint(rank == 0 && config.checkpoint != null ? Path.of(config.checkpoint) : null)
                    .build();
            if (config.resumeFrom != null) {
                if (config.sync != DataParallel.Sync.GRADIENTS) {
                    throw new IllegalArgumentException("distributed training: resuming needs gradient averaging, where"
                            + " every replica equals rank 0's checkpoint; with " + config.sync + " the replicas differ");
                }
                try {
                    trainer.resumeFrom(Path.of(config.resumeFrom));
                } catch (java.io.IOException e) {
                    throw new UncheckedIOException("task " + rank + ": cannot resume from " + config.resumeFrom, e);
                }
            }
            List<EpochMetrics> history;
            try (DataLoader loader = DataLoader.builder(shard.padded(rows, sampleShape))
                    .batchSize(config.batchSizePerTask).seed(shardSeed(config.seed, rank)).build()) {
                history = trainer.fit(loader, null);
            }
            double[] epochLosses = history.stream().mapToDouble(EpochMetrics::trainLoss).toArray();
            long images = history.stream().mapToLong(EpochMetrics::trainImages).sum();
            long trainNanos = System.nanoTime() - t0;
            byte[] bytes = rank == 0 ? ModelFiles.toBytes(model, norm) : null;
            return new TrainingReport(rank, collective.worldSize(), dp.steps(), images, collective.nanos(),
                    batchNormGroup.nanos(), trainNanos, epochLosses, device.name(), bytes);
        }
    }

    /** The seed of rank {@code rank}'s shuffle: each shard is shuffled in its own order every epoch. */
    static long shardSeed(long seed, int rank) {
        return seed * 1_000_003L + rank;
    }

    /**
     * The rows every task trains on per epoch: the largest shard's, as PyTorch's {@code DistributedSampler} pads
     * (shorter shards repeat their own rows), so no row is ever left out and every task runs the same steps.
     */
    static int balancedShardSize(dev.kiln.distributed.Collective collective, Shard shard, int batchSize) {
        int rank = collective.rank();
        double[][] sizes = collective.allGatherDoubles(new double[]{shard.count, shard.sampleSize});
        long largest = 0;
        long smallest = Long.MAX_VALUE;
        StringBuilder all = new StringBuilder();
        for (int r = 0; r < sizes.length; r++) {
            long count = (long) sizes[r][0];
            largest = Math.max(largest, count);
            smallest = Math.min(smallest, count);
            all.append(r == 0 ? "" : ", ").append(count);
            if (count == 0) {
                throw new IllegalArgumentException("distributed training: task " + r + "'s shard is empty (shards of "
                        + java.util.Arrays.stream(sizes).map(x -> Long.toString((long) x[0])).toList()
                        + " rows); give every task rows, e.g. by repartitioning");
            }
            if ((int) sizes[r][1] != shard.sampleSize) {
                throw new IllegalArgumentException("task " + rank + ": images of " + shard.sampleSize
                        + " values, task " + r + " has " + (int) sizes[r][1]);
            }
        }
        if (largest < batchSize) {
            throw new IllegalArgumentException("distributed training: the largest of " + sizes.length
                    + " shards has " + largest + " rows, fewer than one batch of " + batchSize);
        }
        if (largest != smallest && rank == 0) {
            LOG.warn("distributed training: shards of unequal size ({} rows); every task trains on {} rows per epoch,"
                    + " the shorter shards repeating their own rows", all, largest);
        }
        return (int) largest;
    }

    private static int[] inputShape(DistributedTrainer.Config config, int sampleSize) {
        int[] shape = config.inputShape;
        int n = 1;
        for (int d : shape) {
            n *= d;
        }
        if (n != sampleSize) {
            throw new IllegalArgumentException("distributed training: images have " + sampleSize
                    + " values, the model's input shape " + Arrays.toString(shape) + " needs " + n);
        }
        return shape;
    }

    /** One task's rows, normalised, in memory. */
    static final class Shard {
        final int count;
        final int sampleSize;
        final float[] images;
        final float[] labels;

        private Shard(int count, int sampleSize, float[] images, float[] labels) {
            this.count = count;
            this.sampleSize = sampleSize;
            this.images = images;
            this.labels = labels;
        }

        static Shard read(java.util.Iterator<Row> rows, boolean binary, Normalization norm, int rank) {
            float[] images = new float[0];
            float[] labels = new float[0];
            int count = 0;
            int size = -1;
            while (rows.hasNext()) {
                Row row = rows.next();
                if (row.isNullAt(0) || row.isNullAt(1)) {
                    throw new IllegalArgumentException("task " + rank + ": row " + count + " has a null image or label");
                }
                int len = binary ? ((byte[]) row.get(0)).length : row.getList(0).size();
                if (size < 0) {
                    size = len;
                } else if (len != size) {
                    throw new IllegalArgumentException("task " + rank + ": row " + count + " has " + len
                            + " pixel values, the first row had " + size);
                }
                if ((long) (count + 1) * size > images.length) {
                    images = Arrays.copyOf(images, Math.max(size * 1024, images.length * 2));
                    labels = Arrays.copyOf(labels, Math.max(1024, labels.length * 2));
                }
                int base = count * size;
                if (binary) {
                    byte[] px = (byte[]) row.get(0);
                    for (int j = 0; j < size; j++) {
                        images[base + j] = norm.apply(px[j] & 0xFF);
                    }
                } else {
                    List<Object> px = row.getList(0);
                    for (int j = 0; j < size; j++) {
                        images[base + j] = norm.apply(((Number) px.get(j)).floatValue());
                    }
                }
                long label = ((Number) row.get(1)).longValue();
                if (label < 0 || label > Integer.MAX_VALUE) {
                    throw new IllegalArgumentException("task " + rank + ": row " + count + " has label " + label);
                }
                labels[count] = label;
                count++;
            }
            return new Shard(count, Math.max(size, 0), images, labels);
        }

        /** This shard as a data set of {@code rows} samples: row i is row {@code i % count} (padding by wrapping). */
        Dataset padded(int rows, int[] sampleShape) {
            int[] shape = sampleShape.clone();
            return new Dataset() {
                @Override
                public int size() {
                    return rows;
                }

                @Override
                public int[] featureShape() {
                    return shape;
                }

                @Override
                public void fill(int index, float[] dst, int offset) {
                    System.arraycopy(images, (index % count) * sampleSize, dst, offset, sampleSize);
                }

                @Override
                public int label(int index) {
                    return (int) labels[index % count];
                }
            };
        }
    }
}
