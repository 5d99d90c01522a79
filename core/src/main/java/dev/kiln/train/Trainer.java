package dev.kiln.train;

import com.google.gson.Gson;
import dev.kiln.core.Device;
import dev.kiln.core.GradMode;
import dev.kiln.core.NonFiniteLossException;
import dev.kiln.core.Tensor;
import dev.kiln.core.TensorScope;
import dev.kiln.data.ArrayBatch;
import dev.kiln.data.DataLoader;
import dev.kiln.data.DataLoaderException;
import dev.kiln.data.Dataset;
import dev.kiln.data.Normalization;
import dev.kiln.nn.Loss;
import dev.kiln.nn.Module;
import dev.kiln.nn.StepTransaction;
import dev.kiln.optim.Optimizer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * Trains a classifier: epochs of (forward, loss, backward, step) over a {@link DataLoader}, the user's own
 * {@link Dataset} or an {@code Iterable} of {@link ArrayBatch}es, evaluation after each epoch, progress to listeners,
 * and an atomic checkpoint after each epoch when a path is set (written before the listeners hear of the epoch).
 * Every step is all-or-nothing ({@link StepTransaction}); a run stops cleanly between steps through its
 * {@link #cancellation()} or an interrupt. Not specific to any model: anything mapping a batch tensor to logits works.
 */
public final class Trainer {

    private static final Logger LOG = LoggerFactory.getLogger(Trainer.class);
    /** Without a test set an epoch's test metrics are NaN, which plain JSON cannot hold. */
    private static final Gson HISTORY_JSON = new com.google.gson.GsonBuilder().serializeSpecialFloatingPointValues().create();

    private final Module model;
    private final Loss loss;
    private final Optimizer optimizer;
    private final Device device;
    private final int epochs;
    private final long seed;
    private final Path checkpoint;
    private final List<TrainingListener> listeners;
    private final LearningRateSchedule schedule;
    private final float baseLr;
    private final List<EpochMetrics> history = new ArrayList<>();
    private final boolean graphs;
    private final int reportEvery;
    private final int batchSize;
    private final Normalization normalization;
    private final Cancellation cancellation;
    private int trainBatchSize;
    private TrainingStep step;
    /** The eager step of the one other batch size an epoch may end with (the short last batch). */
    private TrainingStep partialStep;
    private final ReplicaSync sync;
    private int startEpoch;
    private final Map<String, String> settings;
    private final boolean allowSettingsChange;
    private static final int GRAPH_WARMUP_STEPS = 3;

    private Trainer(Builder b) {
        this.model = Objects.requireNonNull(b.model, "model");
        this.loss = Objects.requireNonNull(b.loss, "loss");
        this.optimizer = Objects.requireNonNull(b.optimizer, "optimizer");
        this.device = Objects.requireNonNull(b.device, "device");
        this.epochs = b.epochs;
        this.seed = b.seed;
        this.checkpoint = b.checkpoint;
        this.listeners = List.copyOf(b.listeners);
        this.schedule = b.schedule;
        this.baseLr = optimizer.lr();
        this.graphs = b.graphs;
        this.reportEvery = b.reportEvery;
        this.settings = Map.copyOf(b.settings);
        this.allowSettingsChange = b.allowSettingsChange;
        this.batchSize = b.batchSize;
        this.normalization = b.normalization;
        this.cancellation = b.cancellation;
        this.sync = b.sync;
    }

    public static Builder builder() {
        return new Builder();
    }

    /** Restores model, optimizer, completed epochs and history from a checkpoint written by this trainer. */
    public void resumeFrom(Path file) throws IOException {
        Checkpoint c = Checkpoint.load(file);
        List<String> differences = c.differencesFrom(settings);
        if (!differences.isEmpty()) {
            if (!allowSettingsChange) {
                throw new CheckpointMismatchException(file, differences);
            }
            LOG.warn("resuming {} with different settings: {}", file, String.join("; ", differences));
        }
        if (c.seed() != seed) {
            LOG.warn("checkpoint {} was written with seed {}, this run uses seed {}", file, c.seed(), seed);
        }
        List<EpochMetrics> restoredHistory = c.history();
        try {
            c.restore(model, optimizer);
        } catch (IllegalArgumentException e) {
            // the checkpoint's tensors do not fit this model or optimizer (names or shapes); nothing was changed
            throw new dev.kiln.io.KilnFormatException(file.toString(), e.getMessage(), e);
        }
        startEpoch = c.completedEpochs();
        history.clear();
        history.addAll(restoredHistory);
        LOG.info("resumed from {} after {} completed epoch(s)", file, startEpoch);
    }

    /** Epochs completed so far: from a resumed checkpoint before {@link #fit}, then as epochs finish. */
    public int completedEpochs() {
        return startEpoch;
    }

    /** Runs the remaining epochs; returns the metrics of every epoch (including resumed ones). */
    public List<EpochMetrics> fit(DataLoader train, DataLoader test) {
        return fit(BatchSource.of(train), test == null ? null : BatchSource.of(test));
    }

    /**
     * Trains on the user's own {@link Dataset}s (e.g. {@link dev.kiln.data.ArrayDataset}), batched with the builder's
     * {@link Builder#batchSize batch size}, {@link Builder#normalization normalisation} and the run's seed for the
     * order of each epoch; {@code test} (nullable) is evaluated after every epoch.
     */
    public List<EpochMetrics> fit(Dataset train, Dataset test) {
        try (DataLoader tl = DataLoader.builder(train).batchSize(batchSize).seed(seed).normalization(normalization).build();
             DataLoader vl = test == null ? null : DataLoader.builder(test).batchSize(batchSize).shuffle(false)
                     .normalization(normalization).build()) {
            return fit(tl, vl);
        }
    }

    /**
     * Trains on batches the caller produces: {@code train.iterator()} is called once per epoch, so an
     * {@code Iterable} over a collection, a file or a query works, and so does {@code () -> stream().iterator()} for
     * a stream made anew each epoch. Batches may differ in size; {@code test} (nullable) is evaluated after every
     * epoch. Listeners see {@code batches = -1} in an epoch whose length is not known in advance.
     */
    public List<EpochMetrics> fit(Iterable<ArrayBatch> train, Iterable<ArrayBatch> test) {
        return fit(BatchSource.of(train), test == null ? null : BatchSource.of(test));
    }

    private List<EpochMetrics> fit(BatchSource train, BatchSource test) {
        trainBatchSize = train.batchSize();
        try {
            return fitEpochs(train, test);
        } finally {
            if (step != null) {
                step.close();
                step = null;
            }
            if (partialStep != null) {
                partialStep.close();
                partialStep = null;
            }
        }
    }

    /** The handle that stops a {@link #fit} run from another thread. */
    public Cancellation cancellation() {
        return cancellation;
    }

    /** Whether the last {@link #fit} replayed captured graphs, or why not (null before any step). */
    public String graphStatus() {
        return lastGraphStatus;
    }

    private String lastGraphStatus;

    private List<EpochMetrics> fitEpochs(BatchSource train, BatchSource test) {
        for (int epoch = startEpoch; epoch < epochs; epoch++) {
            checkCancelled(epoch);
            EpochMetrics m = trainEpoch(train, test, epoch);
            lastGraphStatus = step == null ? null : step.graphed() ? "graphed" : "eager: " + step.eagerReason();
            history.add(m);
            startEpoch = epoch + 1;
            // the checkpoint first: a listener that throws must not cost the epoch it was told about
            if (checkpoint != null) {
                try {
                    Map<String, String> recorded = new java.util.LinkedHashMap<>();
                    settings.forEach((k, v) -> recorded.put(Checkpoint.SETTING_PREFIX + k, v));
                    Checkpoint.save(checkpoint, model, optimizer, epoch + 1, seed, HISTORY_JSON.toJson(history), recorded);
                } catch (IOException e) {
                    throw new UncheckedIOException("could not write checkpoint " + checkpoint, e);
                }
            }
            for (TrainingListener l : listeners) {
                l.onEpochEnd(m);
            }
        }
        return List.copyOf(history);
    }

    private void checkCancelled(int epoch) {
        boolean interrupted = Thread.currentThread().isInterrupted();
        if (cancellation.isCancelled() || interrupted) {
            // epochs counted from 1 in messages, as the progress output counts them
            LOG.info("training {} in epoch {}; {} epoch(s) completed", interrupted ? "interrupted" : "cancelled",
                    epoch + 1, startEpoch);
            throw new TrainingCancelledException("training " + (interrupted ? "interrupted" : "cancelled")
                    + " in epoch " + (epoch + 1) + " after " + startEpoch + " completed epoch(s)", startEpoch);
        }
    }

    public List<EpochMetrics> history() {
        return List.copyOf(history);
    }

    private EpochMetrics trainEpoch(BatchSource train, BatchSource test, int epoch) {
        model.train();
        int batches = train.batchesPerEpoch();
        for (TrainingListener l : listeners) {
            l.onEpochStart(epoch, epochs, batches);
        }
        int expected = batches > 0 ? batches : knownBatchesPerEpoch;
        double lossSum = 0;
        long correct = 0;
        long seen = 0;
        int count = 0;
        long start = System.nanoTime();
        try (BatchSource.Epoch e = train.epoch(epoch)) {
            while (true) {
                checkCancelled(epoch);
                BatchSource.View batch;
                try {
                    if (!e.hasNext()) {
                        break;
                    }
                    batch = e.next();
                } catch (DataLoaderException ex) {
                    if (Thread.currentThread().isInterrupted()) {
                        checkCancelled(epoch);
                    }
                    throw ex;
                }
                count++;
                checkLabels(batch, epoch);
                double within = expected > 0 ? Math.min(1.0, (double) batch.index() / expected) : 0.0;
                optimizer.setLr(schedule.lr(baseLr, (epoch + within) / epochs));
                TrainingStep step = stepFor(batch);
                if (batch.size() == step.batchSize()) {
                    step.inputs().copyFrom(batch.features());
                    step.targets().copyFrom(batch.labels());
                    step.run();
                } else {
                    // a batch of another size (the short last one): an eager step of its own shape, read at once
                    TrainingStep.Totals partial = trainPartialBatch(batch);
                    if (!Double.isFinite(partial.lossSum())) {
                        throw nonFinite(partial.lossSum(), epoch, batch.index(), batch.index());
                    }
                    lossSum += partial.lossSum();
                    correct += partial.correct();
                    seen += partial.samples();
                }
                boolean last = batches > 0 ? batch.index() == batches - 1 : !e.hasNext();
                if (last || (batch.index() + 1) % reportEvery == 0) {
                    TrainingStep.Totals t = step.drain();
                    if (t.samples() > 0 && !Double.isFinite(t.lossSum())) {
                        throw nonFinite(t.lossSum(), epoch, batch.index() + 1 - t.samples() / step.batchSize(),
                                batch.index());
                    }
                    lossSum += t.lossSum();
                    correct += t.correct();
                    seen += t.samples();
                    double elapsed = (System.nanoTime() - start) / 1e9;
                    double lossNow = t.samples() > 0 ? t.meanLoss() : lossSum / Math.max(seen, 1);
                    for (TrainingListener listener : listeners) {
                        listener.onBatch(epoch, batch.index(), batches, lossNow, seen / Math.max(elapsed, 1e-9));
                    }
                }
            }
        }
        knownBatchesPerEpoch = count;
        double trainSeconds = (System.nanoTime() - start) / 1e9;
        Evaluation eval = test == null ? new Evaluation(Double.NaN, Double.NaN, 0) : evaluate(test);
        return new EpochMetrics(epoch, lossSum / Math.max(seen, 1), (double) correct / Math.max(seen, 1),
                eval.loss(), eval.accuracy(), seen, trainSeconds);
    }

    private int knownBatchesPerEpoch;

    /** Labels are class indices: whole, non-negative numbers, one per sample (the loss checks the upper bound). */
    private static void checkLabels(BatchSource.View batch, int epoch) {
        float[] labels = batch.labels();
        for (int i = 0; i < batch.size(); i++) {
            float y = labels[i];
            if (!(y >= 0) || y != Math.rint(y) || y > Integer.MAX_VALUE) {
                throw new IllegalArgumentException("epoch " + epoch + ", batch " + batch.index() + ": label " + y
                        + " of sample " + i + " is not a class index");
            }
        }
    }

    /** The fixed-shape step for full batches, created at the first batch (its shape is the loader's batch size). */
    private TrainingStep stepFor(BatchSource.View batch) {
        if (step == null) {
            int[] shape = batch.shape();
            step = new TrainingStep(model, loss, optimizer, device, Math.max(batch.size(), trainBatchSize),
                    java.util.Arrays.copyOfRange(shape, 1, shape.length), graphs, GRAPH_WARMUP_STEPS, sync);
        }
        return step;
    }

    private TrainingStep.Totals trainPartialBatch(BatchSource.View batch) {
        if (partialStep == null || partialStep.batchSize() != batch.size()) {
            if (partialStep != null) {
                partialStep.close();
            }
            int[] shape = batch.shape();
            partialStep = new TrainingStep(model, loss, optimizer, device, batch.size(),
                    java.util.Arrays.copyOfRange(shape, 1, shape.length), false, 1, sync);
        }
        partialStep.inputs().copyFrom(java.util.Arrays.copyOf(batch.features(), (int) partialStep.inputs().numel()));
        partialStep.targets().copyFrom(java.util.Arrays.copyOf(batch.labels(), batch.size()));
        partialStep.run();
        return partialStep.drain();
    }

    /**
     * A guarded step was skipped: what the model holds is said truthfully, since every skip leaves parameters,
     * optimizer state and running statistics as they were.
     */
    private NonFiniteLossException nonFinite(double lossSum, int epoch, long firstBatch, long lastBatch) {
        return new NonFiniteLossException("training loss sum became " + lossSum + " in epoch " + epoch
                + " between batches " + firstBatch + " and " + lastBatch + ": at least one step there had a NaN or"
                + " infinite loss, gradient or new batch-norm running statistic and was skipped as a whole ("
                + optimizer.skippedSteps() + " step(s) skipped so far); the model and optimizer hold the result of"
                + " the last step that was finite, and every value in them is as that step left it");
    }

    /** Mean loss and accuracy over every batch of {@code loader} (eval mode, no gradients); restores the mode after. */
    public Evaluation evaluate(DataLoader loader) {
        return evaluate(BatchSource.of(loader));
    }

    /** Mean loss and accuracy over the caller's batches (eval mode, no gradients); restores the mode after. */
    public Evaluation evaluate(Iterable<ArrayBatch> batches) {
        return evaluate(BatchSource.of(batches));
    }

    private Evaluation evaluate(BatchSource source) {
        boolean wasTraining = model.isTraining();
        model.eval();
        double lossSum = 0;
        long correct = 0;
        long seen = 0;
        try (GradMode ignored = GradMode.noGrad(); BatchSource.Epoch e = source.epoch(0)) {
            while (e.hasNext()) {
                BatchSource.View batch = e.next();
                try (TensorScope scope = TensorScope.open()) {
                    Tensor x = Tensor.ofPrefix(device, batch.features(), batch.shape());
                    Tensor y = Tensor.ofPrefix(device, batch.labels(), batch.size());
                    Tensor logits = model.forward(x);
                    lossSum += loss.forward(logits, y).item() * batch.size();
                    correct += countCorrect(logits, batch);
                    seen += batch.size();
                }
            }
        } finally {
            model.train(wasTraining);
        }
        return new Evaluation(lossSum / Math.max(seen, 1), (double) correct / Math.max(seen, 1), seen);
    }

    private static long countCorrect(Tensor logits, BatchSource.View batch) {
        float[] predicted;
        try (GradMode ignored = GradMode.noGrad(); Tensor am = logits.argmax(1)) {
            predicted = am.toArray();
        }
        float[] labels = batch.labels();
        long correct = 0;
        for (int i = 0; i < batch.size(); i++) {
            if (predicted[i] == labels[i]) {
                correct++;
            }
        }
        return correct;
    }

    /** Configures a {@link Trainer}. */
    public static final class Builder {
        private Module model;
        private Loss loss;
        private Optimizer optimizer;
        private Device device;
        private int epochs = 1;
        private long seed;
        private Path checkpoint;
        private final List<TrainingListener> listeners = new ArrayList<>();
        private LearningRateSchedule schedule = LearningRateSchedule.constant();
        private boolean graphs;
        private int reportEvery = 20;
        private Map<String, String> settings = Map.of();
        private boolean allowSettingsChange;

        /**
         * Every setting that changes the result of the run (batch size, learning rate and schedule, data identity,
         * model, seed...), as names and values; recorded in each checkpoint and compared on {@link #resumeFrom}.
         */
        public Builder settings(Map<String, String> s) {
            this.settings = Map.copyOf(s);
            return this;
        }

        /** Resume even when the checkpoint's settings differ (logged as a warning). Default off. */
        public Builder allowSettingsChange(boolean allow) {
            this.allowSettingsChange = allow;
            return this;
        }
        private int batchSize = 64;
        private Normalization normalization = Normalization.NONE;
        private Cancellation cancellation = new Cancellation();
        private ReplicaSync sync = ReplicaSync.NONE;

        /**
         * Train one replica among several: every step reduces its gradients through {@code s} (e.g. a
         * {@link dev.kiln.distributed.DataParallel}); every replica must run the same steps. Default: one replica.
         */
        public Builder sync(ReplicaSync s) {
            this.sync = Objects.requireNonNull(s, "sync");
            return this;
        }

        /** Batch size when the trainer batches a {@link Dataset} itself (default 64). */
        public Builder batchSize(int n) {
            if (n < 1) {
                throw new IllegalArgumentException("batchSize must be >= 1, got " + n);
            }
            this.batchSize = n;
            return this;
        }

        /** Normalisation when the trainer batches a {@link Dataset} itself (default none). */
        public Builder normalization(Normalization n) {
            this.normalization = Objects.requireNonNull(n, "normalization");
            return this;
        }

        /** A cancellation handle shared with other code (default: a new one, see {@link Trainer#cancellation()}). */
        public Builder cancellation(Cancellation c) {
            this.cancellation = Objects.requireNonNull(c, "cancellation");
            return this;
        }

        /**
         * Capture the training step as a graph after a short warm-up and replay it (a CUDA graph on the GPU); when the
         * step cannot be captured, the reason is logged and training goes on eagerly. Default off.
         */
        public Builder graphs(boolean on) {
            this.graphs = on;
            return this;
        }

        /**
         * Read the loss back, check it and tell listeners every {@code n} batches (and at the last); reading waits for
         * the device, so a small {@code n} slows a GPU down. Default 20.
         */
        public Builder reportEvery(int n) {
            if (n < 1) {
                throw new IllegalArgumentException("reportEvery must be >= 1, got " + n);
            }
            this.reportEvery = n;
            return this;
        }

        /** How the learning rate changes over the run (default constant). */
        public Builder schedule(LearningRateSchedule s) {
            this.schedule = Objects.requireNonNull(s);
            return this;
        }

        public Builder model(Module m) {
            this.model = m;
            return this;
        }

        public Builder loss(Loss l) {
            this.loss = l;
            return this;
        }

        public Builder optimizer(Optimizer o) {
            this.optimizer = o;
            return this;
        }

        public Builder device(Device d) {
            this.device = d;
            return this;
        }

        public Builder epochs(int n) {
            if (n < 1) {
                throw new IllegalArgumentException("epochs must be >= 1, got " + n);
            }
            this.epochs = n;
            return this;
        }

        /** Recorded in checkpoints; the data order and initialisation take their own seeds. */
        public Builder seed(long s) {
            this.seed = s;
            return this;
        }

        /** Where to write a checkpoint after every epoch (atomically), or null for none. */
        public Builder checkpoint(Path p) {
            this.checkpoint = p;
            return this;
        }

        public Builder listener(TrainingListener l) {
            listeners.add(l);
            return this;
        }

        public Trainer build() {
            return new Trainer(this);
        }
    }
}
