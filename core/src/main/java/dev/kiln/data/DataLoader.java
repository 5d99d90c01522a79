package dev.kiln.data;

import java.util.Iterator;
import java.util.NoSuchElementException;
import java.util.Objects;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Batches a {@link Dataset}: seeded shuffling per epoch (the order of epoch {@code e} depends only on
 * {@code (seed, e)}, see {@link EpochOrder}), a kept or dropped partial last batch, {@link Normalization},
 * and a background prefetch thread decoding up to {@code prefetch} batches ahead.
 *
 * <pre>{@code
 * try (DataLoader loader = DataLoader.builder(mnist.train()).batchSize(64).seed(42)
 *         .normalization(Normalization.MNIST).build()) {
 *     for (int e = 0; e < epochs; e++) {
 *         for (Batch b : loader.epoch(e)) {
 *             train(b.features(), b.labels(), b.shape()); // use b before taking the next batch
 *         }
 *     }
 * }
 * }</pre>
 *
 * <p>Batches are recycled from a pool of {@code prefetch + 1} (see {@link Batch} for the contract):
 * after warm-up, no arrays are allocated per batch. One epoch is active at a time: starting an epoch
 * closes the previous one. A failure while decoding surfaces in the consumer as a
 * {@link DataLoaderException} from {@code next()}. Not thread-safe: consume from one thread.
 */
public final class DataLoader implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(DataLoader.class);
    private static final long JOIN_MILLIS = 5_000;

    private final Dataset dataset;
    private final int batchSize;
    private final boolean shuffle;
    private final long seed;
    private final boolean pytorchOrder;
    private final boolean dropLast;
    private final Normalization normalization;
    private final int prefetch;
    private final int featureLength;
    private Batch[] pool;
    private Epoch active;
    private boolean closed;

    private DataLoader(Builder b) {
        this.dataset = b.dataset;
        this.batchSize = b.batchSize;
        this.shuffle = b.shuffle;
        this.seed = b.seed;
        this.pytorchOrder = b.pytorchOrder;
        this.dropLast = b.dropLast;
        this.normalization = b.normalization;
        this.prefetch = b.prefetch;
        this.featureLength = dataset.featureLength();
        this.pool = newPool();
    }

    public static Builder builder(Dataset dataset) {
        return new Builder(dataset);
    }

    public Dataset dataset() {
        return dataset;
    }

    public int batchSize() {
        return batchSize;
    }

    public int prefetch() {
        return prefetch;
    }

    public Normalization normalization() {
        return normalization;
    }

    /** Batches per epoch: {@code ceil(n / batchSize)}, or {@code floor} with dropLast. */
    public int batchesPerEpoch() {
        int n = dataset.size();
        return dropLast ? n / batchSize : (n + batchSize - 1) / batchSize;
    }

    /** Samples per epoch (all of them unless dropLast cuts a partial batch). */
    public int samplesPerEpoch() {
        return dropLast ? batchesPerEpoch() * batchSize : dataset.size();
    }

    /** The sample order of epoch {@code e} (identity when not shuffling). */
    public int[] order(int epoch) {
        int n = dataset.size();
        if (shuffle) {
            return pytorchOrder ? EpochOrder.pytorchPermutation(seed, epoch, n) : EpochOrder.permutation(seed, epoch, n);
        }
        int[] p = new int[n];
        for (int i = 0; i < n; i++) {
            p[i] = i;
        }
        return p;
    }

    /**
     * Starts epoch {@code e} (closing the previous one) and returns its batches; with prefetch, the
     * background thread starts decoding now. Iterate it once; close it to stop early.
     */
    public Epoch epoch(int e) {
        if (closed) {
            throw new IllegalStateException("DataLoader is closed");
        }
        if (e < 0) {
            throw new IllegalArgumentException("epoch " + e);
        }
        if (active != null) {
            active.close();
        }
        active = new Epoch(e);
        return active;
    }

    /** Stops the background thread, if any. Idempotent. */
    @Override
    public void close() {
        if (active != null) {
            active.close();
            active = null;
        }
        closed = true;
    }

    private Batch[] newPool() {
        Batch[] p = new Batch[prefetch + 1];
        for (int i = 0; i < p.length; i++) {
            p[i] = new Batch(batchSize, dataset.featureShape(), featureLength);
        }
        return p;
    }

    /** Decodes batch {@code k} of an epoch into {@code b}. */
    private void decode(int epoch, int[] order, int k, Batch b) {
        int start = k * batchSize;
        int size = Math.min(batchSize, order.length - start);
        float[] f = b.features();
        float[] l = b.labels();
        int[] idx = b.indices();
        for (int i = 0; i < size; i++) {
            int s = order[start + i];
            dataset.fill(s, f, i * featureLength);
            l[i] = dataset.label(s);
            idx[i] = s;
        }
        normalization.applyInPlace(f, 0, size * featureLength);
        b.size = size;
        b.epoch = epoch;
        b.index = k;
    }

    /**
     * The batches of one epoch: an {@link Iterator} (and, once, an {@link Iterable} of itself) that
     * must be consumed from one thread. Closing it stops its background thread.
     */
    public final class Epoch implements Iterator<Batch>, Iterable<Batch>, AutoCloseable {
        private final int epoch;
        private final int total;
        private final int[] order;
        private final BlockingQueue<Batch> free;
        private final BlockingQueue<Batch> ready;
        private final Thread producer;
        private final Batch poison;
        private volatile Throwable failure;
        private volatile int failedBatch = -1;
        private Batch current;
        private int delivered;
        private boolean iterated;
        private boolean done;

        private Epoch(int epoch) {
            this.epoch = epoch;
            this.total = batchesPerEpoch();
            this.order = order(epoch);
            if (prefetch == 0) {
                this.free = null;
                this.ready = null;
                this.producer = null;
                this.poison = null;
            } else {
                this.free = new ArrayBlockingQueue<>(pool.length);
                this.ready = new ArrayBlockingQueue<>(pool.length + 1);
                for (Batch b : pool) {
                    free.add(b);
                }
                this.poison = new Batch(0, new int[0], 0);
                this.producer = new Thread(this::produce, "kiln-dataloader-epoch-" + epoch);
                producer.setDaemon(true);
                producer.start();
            }
        }

        public int epoch() {
            return epoch;
        }

        /** Number of batches in this epoch. */
        public int batches() {
            return total;
        }

        /** The background thread, or null without prefetch (for tests and diagnostics). */
        Thread producerThread() {
            return producer;
        }

        private void produce() {
            int k = 0;
            try {
                for (; k < total; k++) {
                    Batch b = free.take();
                    decode(epoch, order, k, b);
                    ready.put(b);
                }
            } catch (InterruptedException e) {
                // closed by the consumer
            } catch (Throwable t) {
                failedBatch = k;
                failure = t;
                ready.offer(poison); // always fits: capacity is pool size + 1
            }
        }

        @Override
        public Iterator<Batch> iterator() {
            if (iterated) {
                throw new IllegalStateException("epoch " + epoch + " can be iterated only once; call epoch(e) again");
            }
            iterated = true;
            return this;
        }

        @Override
        public boolean hasNext() {
            return !done && delivered < total;
        }

        /**
         * The next batch. The previous batch returned by this epoch is recycled now and must no longer
         * be used.
         *
         * @throws DataLoaderException if decoding this batch failed
         */
        @Override
        public Batch next() {
            if (!hasNext()) {
                throw new NoSuchElementException("epoch " + epoch + ": " + (done ? "closed" : "all " + total + " batches taken"));
            }
            Batch b;
            if (producer == null) {
                b = pool[0];
                current = null;
                try {
                    decode(epoch, order, delivered, b);
                } catch (RuntimeException | Error e) {
                    close();
                    throw new DataLoaderException("epoch " + epoch + ": decoding batch " + delivered + " failed: " + e, e);
                }
            } else {
                if (current != null) {
                    free.add(current);
                    current = null;
                }
                try {
                    b = ready.take();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    close();
                    throw new DataLoaderException("epoch " + epoch + ": interrupted while waiting for a batch", e);
                }
                if (b == poison) {
                    Throwable t = failure;
                    close();
                    throw new DataLoaderException("epoch " + epoch + ": decoding batch " + failedBatch
                            + " failed in the prefetch thread: " + t, t);
                }
            }
            current = b;
            delivered++;
            return b;
        }

        /** Stops the background thread and returns the batches to the loader's pool. Idempotent. */
        @Override
        public void close() {
            if (done) {
                return;
            }
            done = true;
            current = null;
            if (producer == null) {
                return;
            }
            producer.interrupt();
            // An interrupted consumer still waits for the producer it just interrupted (which stops at once);
            // otherwise join would return at once and a working loader would be reported as stuck.
            boolean interrupted = Thread.interrupted();
            boolean stopped;
            try {
                producer.join(JOIN_MILLIS);
                stopped = !producer.isAlive();
            } catch (InterruptedException e) {
                interrupted = true;
                stopped = !producer.isAlive();
            } finally {
                if (interrupted) {
                    Thread.currentThread().interrupt();
                }
            }
            if (!stopped) {
                // The data set is stuck in fill(); never share its batches with the next epoch.
                log.warn("DataLoader thread {} did not stop within {} ms; abandoning its batch pool",
                        producer.getName(), JOIN_MILLIS);
                pool = newPool();
            }
            free.clear();
            ready.clear();
        }
    }

    /** Configures a {@link DataLoader}. Defaults: batch 64, shuffle with seed 0, keep the last partial batch,
     *  no normalisation, prefetch 2. */
    public static final class Builder {
        private final Dataset dataset;
        private int batchSize = 64;
        private boolean shuffle = true;
        private long seed;
        private boolean pytorchOrder;
        private boolean dropLast;
        private Normalization normalization = Normalization.NONE;
        private int prefetch = 2;

        private Builder(Dataset dataset) {
            this.dataset = Objects.requireNonNull(dataset, "dataset");
        }

        public Builder batchSize(int n) {
            if (n <= 0) {
                throw new IllegalArgumentException("batchSize " + n);
            }
            this.batchSize = n;
            return this;
        }

        public Builder shuffle(boolean shuffle) {
            this.shuffle = shuffle;
            return this;
        }

        public Builder seed(long seed) {
            this.seed = seed;
            return this;
        }

        /**
         * Shuffle in the order PyTorch's {@code DataLoader(shuffle=True, generator=torch.Generator().manual_seed(seed))}
         * uses ({@link EpochOrder#pytorchPermutation}) instead of Kiln's own ({@link EpochOrder#permutation}).
         */
        public Builder pytorchOrder(boolean pytorchOrder) {
            this.pytorchOrder = pytorchOrder;
            return this;
        }

        /** Drop the last batch of an epoch if it is smaller than the batch size. */
        public Builder dropLast(boolean dropLast) {
            this.dropLast = dropLast;
            return this;
        }

        public Builder normalization(Normalization n) {
            this.normalization = Objects.requireNonNull(n);
            return this;
        }

        /** Batches decoded ahead by a background thread; 0 decodes synchronously in {@code next()}. */
        public Builder prefetch(int k) {
            if (k < 0) {
                throw new IllegalArgumentException("prefetch " + k);
            }
            this.prefetch = k;
            return this;
        }

        public DataLoader build() {
            return new DataLoader(this);
        }
    }
}
