package dev.kiln.train;

import com.google.gson.Gson;
import com.google.gson.reflect.TypeToken;
import dev.kiln.core.Device;
import dev.kiln.core.GradMode;
import dev.kiln.core.NonFiniteLossException;
import dev.kiln.core.Tensor;
import dev.kiln.core.TensorScope;
import dev.kiln.data.Batch;
import dev.kiln.data.DataLoader;
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
 * Trains a classifier: epochs of (forward, loss, backward, step) over a {@link DataLoader}, evaluation on a test
 * loader after each epoch, progress to listeners, and an atomic checkpoint after each epoch when a path is set.
 * Not specific to any model: anything mapping a batch tensor to logits works.
 */
public final class Trainer {

    private static final Logger LOG = LoggerFactory.getLogger(Trainer.class);

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
    private int trainBatchSize;
    private TrainingStep step;
    private int startEpoch;
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
    }

    public static Builder builder() {
        return new Builder();
    }

    /** Restores model, optimizer, completed epochs and history from a checkpoint written by this trainer. */
    public void resumeFrom(Path file) throws IOException {
        Checkpoint c = Checkpoint.load(file);
        if (c.seed() != seed) {
            LOG.warn("checkpoint {} was written with seed {}, this run uses seed {}", file, c.seed(), seed);
        }
        c.restore(model, optimizer);
        startEpoch = c.completedEpochs();
        history.clear();
        history.addAll(new Gson().fromJson(c.historyJson(), new TypeToken<List<EpochMetrics>>() {
        }.getType()));
        LOG.info("resumed from {} after {} completed epoch(s)", file, startEpoch);
    }

    /** Runs the remaining epochs; returns the metrics of every epoch (including resumed ones). */
    public List<EpochMetrics> fit(DataLoader train, DataLoader test) {
        trainBatchSize = train.batchSize();
        try {
            return fitEpochs(train, test);
        } finally {
            if (step != null) {
                step.close();
                step = null;
            }
        }
    }

    /** Whether the last {@link #fit} replayed captured graphs, or why not (null before any step). */
    public String graphStatus() {
        return lastGraphStatus;
    }

    private String lastGraphStatus;

    private List<EpochMetrics> fitEpochs(DataLoader train, DataLoader test) {
        for (int epoch = startEpoch; epoch < epochs; epoch++) {
            EpochMetrics m = trainEpoch(train, test, epoch);
            lastGraphStatus = step == null ? null : step.graphed() ? "graphed" : "eager: " + step.eagerReason();
            history.add(m);
            for (TrainingListener l : listeners) {
                l.onEpochEnd(m);
            }
            if (checkpoint != null) {
                try {
                    Checkpoint.save(checkpoint, model, optimizer, epoch + 1, seed, new Gson().toJson(history), Map.of());
                } catch (IOException e) {
                    throw new UncheckedIOException("could not write checkpoint " + checkpoint, e);
                }
            }
        }
        return List.copyOf(history);
    }

    public List<EpochMetrics> history() {
        return List.copyOf(history);
    }

    private EpochMetrics trainEpoch(DataLoader train, DataLoader test, int epoch) {
        model.train();
        int batches = train.batchesPerEpoch();
        for (TrainingListener l : listeners) {
            l.onEpochStart(epoch, epochs, batches);
        }
        double lossSum = 0;
        long correct = 0;
        long seen = 0;
        long start = System.nanoTime();
        try (DataLoader.Epoch e = train.epoch(epoch)) {
            for (Batch batch : e) {
                double progress = ((double) epoch * batches + batch.index()) / ((double) epochs * batches);
                optimizer.setLr(schedule.lr(baseLr, progress));
                TrainingStep step = stepFor(batch);
                if (batch.size() == step.batchSize()) {
                    step.inputs().copyFrom(batch.features());
                    step.targets().copyFrom(batch.labels());
                    step.run();
                } else {
                    // the short last batch: an eager step of its own shape, read at once (once per epoch)
                    Evaluation partial = trainPartialBatch(batch);
                    lossSum += partial.loss() * batch.size();
                    correct += Math.round(partial.accuracy() * batch.size());
                    seen += batch.size();
                }
                boolean last = batch.index() == batches - 1;
                if (last || (batch.index() + 1) % reportEvery == 0) {
                    TrainingStep.Totals t = step.drain();
                    if (t.samples() > 0 && !Double.isFinite(t.lossSum())) {
                        // Optimizer.step(loss) skipped the update of every step whose loss was not finite, on the
                        // device: the parameters are those of the last finite step.
                        throw new NonFiniteLossException("training loss became " + t.lossSum() + " in epoch " + epoch
                                + " between batches " + (batch.index() + 1 - t.samples() / step.batchSize()) + " and "
                                + batch.index() + "; the optimizer skipped those updates (" + optimizer.skippedSteps()
                                + " skipped so far), so the parameters are still finite");
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
        double trainSeconds = (System.nanoTime() - start) / 1e9;
        Evaluation eval = test == null ? new Evaluation(Double.NaN, Double.NaN, 0) : evaluate(test);
        return new EpochMetrics(epoch, lossSum / Math.max(seen, 1), (double) correct / Math.max(seen, 1),
                eval.loss(), eval.accuracy(), seen, trainSeconds);
    }

    /** The fixed-shape step for full batches, created at the first batch (its shape is the loader's batch size). */
    private TrainingStep stepFor(Batch batch) {
        if (step == null) {
            int[] shape = batch.shape();
            step = new TrainingStep(model, loss, optimizer, device, Math.max(batch.size(), trainBatchSize),
                    java.util.Arrays.copyOfRange(shape, 1, shape.length), graphs, GRAPH_WARMUP_STEPS);
        }
        return step;
    }

    private Evaluation trainPartialBatch(Batch batch) {
        try (TensorScope scope = TensorScope.open(); StepTransaction tx = StepTransaction.open()) {
            Tensor x = Tensor.ofPrefix(device, batch.features(), batch.shape());
            Tensor y = Tensor.ofPrefix(device, batch.labels(), batch.size());
            optimizer.zeroGrad();
            Tensor logits = model.forward(x);
            Tensor l = loss.forward(logits, y);
            l.backward();
            optimizer.step();
            tx.commit(l);
            return new Evaluation(l.item(), (double) countCorrect(logits, batch) / batch.size(), batch.size());
        }
    }

    /** Mean loss and accuracy over every batch of {@code loader} (eval mode, no gradients); restores the mode after. */
    public Evaluation evaluate(DataLoader loader) {
        boolean wasTraining = model.isTraining();
        model.eval();
        double lossSum = 0;
        long correct = 0;
        long seen = 0;
        try (GradMode ignored = GradMode.noGrad(); DataLoader.Epoch e = loader.epoch(0)) {
            for (Batch batch : e) {
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

    private static long countCorrect(Tensor logits, Batch batch) {
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
