package dev.kiln.train;

import dev.kiln.backend.GraphCaptureException;
import dev.kiln.core.CapturedGraph;
import dev.kiln.core.Device;
import dev.kiln.core.GradMode;
import dev.kiln.core.Tensor;
import dev.kiln.core.TensorScope;
import dev.kiln.nn.Loss;
import dev.kiln.nn.Module;
import dev.kiln.nn.StepTransaction;
import dev.kiln.optim.Optimizer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.Arrays;
import java.util.List;
import java.util.Objects;

/**
 * One classifier training step (zero grads, forward, loss, backward, gradient reduction, optimizer update) on
 * fixed-shape input tensors, without a host wait: the loss and the number of correct predictions are summed on the
 * device with tensor ops and read only by {@link #drain()}. The one place where Kiln trains: {@link Trainer}, and
 * data-parallel training in one JVM ({@link dev.kiln.distributed.DataParallel}) and on Spark, run it, the latter
 * through a {@link ReplicaSync} that reduces the gradients between backward pass and optimizer.
 *
 * <p>The step is all-or-nothing. It is one {@link StepTransaction}: batch norm's running statistics and
 * {@code num_batches_tracked} change with the parameters or not at all. Before anything commits, a guard is computed
 * on the device from what the step would write: the loss, every gradient and every new running statistic
 * ({@link StepTransaction#guard}), which is the loss when they are all finite and NaN otherwise. The optimizer
 * ({@link Optimizer#step(Tensor)}) and the commit skip the update on the device when the guard is not finite, so
 * such a step leaves parameters, optimizer state and running statistics bitwise unchanged; the guard, not the bare
 * loss, is what {@link #drain()} sums, so a skipped step shows as a non-finite loss sum there.
 *
 * <p>With graphs on, the first {@code warmupSteps} steps run eagerly (they choose convolution algorithms, create the
 * optimizer state and fill the allocator's cache), the next one is captured as a {@link CapturedGraph}, and every
 * step from then on is one replay. When the step cannot be captured the reason is logged once and steps stay eager.
 *
 * <p>Usage: put a batch into {@link #inputs()} and {@link #targets()} (copyFrom, or a device gather), call
 * {@link #run()}; repeat. Not thread-safe.
 */
public final class TrainingStep implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(TrainingStep.class);

    private final Module model;
    private final List<Tensor> parameters;
    private final ReplicaSync sync;
    private final Loss loss;
    private final Optimizer optimizer;
    private final Device device;
    private final int batchSize;
    private final Tensor inputs;
    private final Tensor targets;
    private final Tensor lossSum;
    private final Tensor correct;
    private final int warmupSteps;
    private boolean graphs;
    private CapturedGraph graph;
    private String eagerReason;
    private long steps;
    private long samplesSinceDrain;

    /**
     * @param sampleShape  shape of one sample (e.g. 1, 28, 28)
     * @param graphs       capture the step as a graph after the warm-up (a request: see {@link #eagerReason()})
     * @param warmupSteps  eager steps before the capture (at least 1: SGD's first momentum step differs)
     */
    public TrainingStep(Module model, Loss loss, Optimizer optimizer, Device device, int batchSize, int[] sampleShape,
                        boolean graphs, int warmupSteps) {
        this(model, loss, optimizer, device, batchSize, sampleShape, graphs, warmupSteps, ReplicaSync.NONE);
    }

    /**
     * A step of one replica among several: {@code sync} reduces the gradients (and the guard) with the other
     * replicas' between the backward pass and the optimizer (see {@link ReplicaSync}).
     */
    public TrainingStep(Module model, Loss loss, Optimizer optimizer, Device device, int batchSize, int[] sampleShape,
                        boolean graphs, int warmupSteps, ReplicaSync sync) {
        this.model = Objects.requireNonNull(model, "model");
        this.sync = Objects.requireNonNull(sync, "sync");
        this.parameters = model.parameters().stream().filter(Tensor::requiresGrad).toList();
        this.loss = Objects.requireNonNull(loss, "loss");
        this.optimizer = Objects.requireNonNull(optimizer, "optimizer");
        this.device = Objects.requireNonNull(device, "device");
        if (batchSize < 1 || warmupSteps < 1) {
            throw new IllegalArgumentException("training step: need batchSize >= 1 and warmupSteps >= 1, got "
                    + batchSize + " and " + warmupSteps);
        }
        this.batchSize = batchSize;
        this.graphs = graphs;
        this.warmupSteps = warmupSteps;
        int[] shape = new int[sampleShape.length + 1];
        shape[0] = batchSize;
        System.arraycopy(sampleShape, 0, shape, 1, sampleShape.length);
        this.inputs = unscopedZeros(device, shape);
        this.targets = unscopedZeros(device, batchSize);
        this.lossSum = unscopedZeros(device, 1);
        this.correct = unscopedZeros(device, 1);
        this.eagerReason = graphs ? null : "graphs not requested";
    }

    private static Tensor unscopedZeros(Device d, int... shape) {
        long n = 1;
        for (int s : shape) {
            n *= s;
        }
        return Tensor.unscoped(d, new float[Math.toIntExact(n)], shape);
    }

    /** The input batch the next {@link #run()} trains on; fill it in place. */
    public Tensor inputs() {
        return inputs;
    }

    /** The class indices (as floats) of the next batch; fill them in place. */
    public Tensor targets() {
        return targets;
    }

    public int batchSize() {
        return batchSize;
    }

    /** Whether steps are replays of a captured graph. */
    public boolean graphed() {
        return graph != null;
    }

    /** Why steps run eagerly (null while graphs are still expected after the warm-up). */
    public String eagerReason() {
        return eagerReason;
    }

    /** Trains on the current {@link #inputs()} / {@link #targets()}. */
    public void run() {
        model.train();
        sync.beforeStep();
        if (graph == null && graphs && steps >= warmupSteps) {
            capture();
        }
        if (graph != null) {
            try {
                graph.replay();
            } catch (GraphCaptureException e) {
                // refused before anything was queued: drop the graph and train this step eagerly
                graph.close();
                graph = null;
                graphs = false;
                eagerReason = e.getMessage();
                LOG.warn("captured training step can no longer be replayed, running eagerly: {}", e.getMessage());
                body();
            }
        } else {
            body();
        }
        steps++;
        samplesSinceDrain += batchSize;
        sync.afterStep();
    }

    private void capture() {
        try {
            graph = CapturedGraph.capture(device, this::body);
            LOG.info("training step captured as a graph on {} ({} operations); replaying it from now on", device,
                    graph.operations());
        } catch (GraphCaptureException | UnsupportedOperationException e) {
            graphs = false;
            eagerReason = e.getMessage();
            LOG.warn("training step not captured, running eagerly: {}", e.getMessage());
        } catch (RuntimeException e) {
            // a driver or library error inside a capture: the step itself works eagerly, so keep training
            graphs = false;
            eagerReason = e.toString();
            LOG.warn("graph capture failed, running eagerly: {}", e.toString());
        }
    }

    private void body() {
        try (TensorScope scope = TensorScope.open(); StepTransaction tx = StepTransaction.open()) {
            optimizer.zeroGrad();
            Tensor logits = model.forward(inputs);
            Tensor l = loss.forward(logits, targets);
            l.backwardWithoutHostCheck();
            try (GradMode ignored = GradMode.noGrad()) {
                Tensor guard = tx.guard(l, parameters);
                sync.reduce(parameters, guard);
                optimizer.step(guard);
                tx.commit(guard);
                lossSum.copyFrom(lossSum.add(guard.mul((float) batchSize)));
                // correct = sum(1 - min(|argmax - target|, 1)): equality from ops every backend has
                Tensor hits = logits.argmax(1).sub(targets).abs().clampMax(1f).rsub(1f).sum();
                correct.copyFrom(correct.add(hits));
            }
        }
    }

    /** Loss and accuracy totals since the last drain. */
    public record Totals(double lossSum, long correct, long samples) {
        public double meanLoss() {
            return samples == 0 ? Double.NaN : lossSum / samples;
        }
    }

    /** Reads (one host wait) and resets the device totals. */
    public Totals drain() {
        float[] l = lossSum.toArray();
        float[] c = correct.toArray();
        Totals t = new Totals(l[0], Math.round(c[0]), samplesSinceDrain);
        lossSum.fill(0f);
        correct.fill(0f);
        samplesSinceDrain = 0;
        return t;
    }

    @Override
    public void close() {
        if (graph != null) {
            graph.close();
            graph = null;
        }
        for (Tensor t : Arrays.asList(inputs, targets, lossSum, correct)) {
            t.close();
        }
    }
}
