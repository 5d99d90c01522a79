package dev.kiln.spark;

import dev.kiln.core.Device;
import dev.kiln.core.Generator;
import dev.kiln.core.Tensor;
import dev.kiln.core.TensorScope;
import dev.kiln.data.Normalization;
import dev.kiln.distributed.DataParallel;
import dev.kiln.nn.CrossEntropyLoss;
import dev.kiln.nn.Module;
import dev.kiln.optim.SGD;
import dev.kiln.train.LearningRateSchedule;
import dev.kiln.train.ModelFiles;
import org.apache.spark.BarrierTaskContext;
import org.apache.spark.sql.Row;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import scala.collection.Iterator;
import scala.jdk.javaapi.CollectionConverters;
import scala.runtime.AbstractFunction1;

import java.io.Serializable;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

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
            return CollectionConverters.asScala(List.of(train(barrier, shard, config, device)).iterator());
        }
        String host = hostOf(ctx.getTaskInfos()[barrier.rank()].address());
        try (SocketCollective sockets = SocketCollective.connect(barrier, host, config.timeout)) {
            return CollectionConverters.asScala(List.of(train(sockets, shard, config, device)).iterator());
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
     * Trains this member's replica on its shard in lock step with the other members of {@code collective}; the
     * same loop whether the members are Spark barrier tasks or threads.
     */
    static TrainingReport train(dev.kiln.distributed.Collective group, Shard shard, DistributedTrainer.Config config,
                                Device device) {
        TimedCollective collective = new TimedCollective(group);
        TimedCollective batchNormGroup = new TimedCollective(group);
        int rank = collective.rank();
        Normalization norm = config.normalizationRecord();
        long t0 = System.nanoTime();
        try (Module model = config.factory.create(device, new Generator(config.seed),
                config.syncBatchNorm ? batchNormGroup : null);
             SGD sgd = new SGD(model.parameters(), config.lr, config.momentum, 0f, false, 0f)) {
            DataParallel dp = new DataParallel(model, collective, config.sync, config.averageEvery,
                    config.broadcastBuffers);
            double[][] sizes = collective.allGatherDoubles(new double[]{shard.count, shard.sampleSize});
            long smallest = Long.MAX_VALUE;
            for (double[] s : sizes) {
                smallest = Math.min(smallest, (long) s[0]);
                if ((int) s[1] != shard.sampleSize && shard.count > 0 && s[0] > 0) {
                    throw new IllegalArgumentException("task " + rank + ": images of " + shard.sampleSize
                            + " values, another task has " + (int) s[1]);
                }
            }
            int stepsPerEpoch = (int) (smallest / config.batchSizePerTask);
            if (stepsPerEpoch == 0) {
                throw new IllegalArgumentException("distributed training: the smallest of " + sizes.length
                        + " shards has " + smallest + " rows, fewer than one batch of " + config.batchSizePerTask);
            }
            int[] sampleShape = inputShape(config, shard.sampleSize);
            int b = config.batchSizePerTask;
            int[] batchShape = new int[sampleShape.length + 1];
            batchShape[0] = b;
            System.arraycopy(sampleShape, 0, batchShape, 1, sampleShape.length);
            float[] images = new float[b * shard.sampleSize];
            float[] labels = new float[b];
            CrossEntropyLoss loss = new CrossEntropyLoss();
            LearningRateSchedule schedule = config.cosine ? LearningRateSchedule.cosine() : LearningRateSchedule.constant();
            long totalSteps = (long) stepsPerEpoch * config.epochs;
            double[] epochLosses = new double[config.epochs];
            long step = 0;
            for (int epoch = 0; epoch < config.epochs; epoch++) {
                int[] order = shard.permutation(new SplittableRandom(config.seed * 1_000_003L + epoch * 7919L + rank));
                double lossSum = 0;
                int counted = 0;
                for (int s = 0; s < stepsPerEpoch; s++) {
                    for (int i = 0; i < b; i++) {
                        int row = order[s * b + i];
                        System.arraycopy(shard.images, row * shard.sampleSize, images, i * shard.sampleSize,
                                shard.sampleSize);
                        labels[i] = shard.labels[row];
                    }
                    sgd.setLr(schedule.lr(config.lr, (double) step / totalSteps));
                    float l;
                    try (TensorScope scope = TensorScope.open()) {
                        l = dp.trainStep(loss, sgd, Tensor.of(device, images, batchShape), Tensor.of(device, labels, b));
                    }
                    if (Float.isFinite(l)) {
                        lossSum += l;
                        counted++;
                    }
                    step++;
                    if (rank == 0 && s % 200 == 199) {
                        LOG.info("epoch {} step {}/{}: loss {}", epoch + 1, s + 1, stepsPerEpoch,
                                String.format("%.4f", l));
                    }
                }
                epochLosses[epoch] = counted == 0 ? Double.NaN : lossSum / counted;
                if (rank == 0) {
                    LOG.info("epoch {}: mean loss {} over {} steps of {} x {} images", epoch + 1,
                            String.format("%.4f", epochLosses[epoch]), stepsPerEpoch, sizes.length, b);
                }
            }
            long trainNanos = System.nanoTime() - t0;
            byte[] bytes = rank == 0 ? ModelFiles.toBytes(model, norm) : null;
            TrainingReport report = new TrainingReport(rank, collective.worldSize(), step, step * b,
                    collective.nanos(), batchNormGroup.nanos(), trainNanos, epochLosses, device.name(), bytes);
            return report;
        }
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

        int[] permutation(SplittableRandom rnd) {
            int[] p = new int[count];
            for (int i = 0; i < count; i++) {
                p[i] = i;
            }
            for (int i = count - 1; i > 0; i--) {
                int j = rnd.nextInt(i + 1);
                int t = p[i];
                p[i] = p[j];
                p[j] = t;
            }
            return p;
        }
    }
}
