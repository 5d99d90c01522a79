package dev.kiln.distributed;

import dev.kiln.core.GradMode;
import dev.kiln.core.Tensor;
import dev.kiln.core.TensorScope;
import dev.kiln.nn.Loss;
import dev.kiln.nn.Module;
import dev.kiln.nn.StateDict;
import dev.kiln.optim.Optimizer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * Data-parallel training of one model replica per member of a {@link Collective}, after PyTorch's
 * {@code DistributedDataParallel}: construction copies rank 0's parameters and buffers to every member, and each
 * {@link #trainStep} averages the gradients over all members before the optimizer runs, so every replica takes the
 * same step (the gradient of the mean loss over the global batch) and the replicas stay bitwise identical.
 *
 * <p>{@link Sync#PARAMETER_AVERAGING} instead lets each replica step on its own gradients and averages the
 * parameters every {@code k} steps (local SGD); replicas differ between averagings.
 *
 * <p>Buffers (batch-norm running statistics) follow DDP's default {@code broadcast_buffers=True}: before every
 * training forward, rank 0's buffers are copied to all members, so the running statistics that survive are rank
 * 0's, computed from rank 0's shard of each batch. With plain batch norm each replica normalises with its own
 * shard's statistics, so N members with batch b do <em>not</em> train like one member with batch N*b; with
 * {@link dev.kiln.nn.SyncBatchNorm} they do (and its running statistics are already identical on every member).
 *
 * <p>A non-finite loss on any member skips the step on every member (the losses are exchanged before the backward
 * pass), leaving parameters, optimizer state, running statistics and {@code num_batches_tracked} unchanged
 * everywhere. Not thread-safe: one instance per member.
 */
public final class DataParallel {

    private static final Logger LOG = LoggerFactory.getLogger(DataParallel.class);

    /** How replicas are kept in step. */
    public enum Sync {
        /** average the gradients after every backward pass (DDP) */
        GRADIENTS,
        /** average the parameters every {@code averageEvery} steps (local SGD / model averaging) */
        PARAMETER_AVERAGING
    }

    private final Module model;
    private final Collective collective;
    private final Sync sync;
    private final int averageEvery;
    private final boolean broadcastBuffers;
    private long steps;
    private long skippedSteps;
    private long collectiveNanos;
    private long collectiveCalls;

    /** DDP's defaults: gradient averaging every step, rank 0's buffers broadcast before every forward. */
    public DataParallel(Module model, Collective collective) {
        this(model, collective, Sync.GRADIENTS, 1, true);
    }

    /**
     * @param averageEvery     steps between parameter averagings (only for {@link Sync#PARAMETER_AVERAGING})
     * @param broadcastBuffers copy rank 0's buffers to every member before each training forward (DDP's default)
     */
    public DataParallel(Module model, Collective collective, Sync sync, int averageEvery, boolean broadcastBuffers) {
        this.model = Objects.requireNonNull(model, "model");
        this.collective = Objects.requireNonNull(collective, "collective");
        this.sync = Objects.requireNonNull(sync, "sync");
        if (averageEvery < 1) {
            throw new IllegalArgumentException("DataParallel: averageEvery must be at least 1, got " + averageEvery);
        }
        this.averageEvery = averageEvery;
        this.broadcastBuffers = broadcastBuffers;
        broadcastState();
    }

    public Collective collective() {
        return collective;
    }

    public Module model() {
        return model;
    }

    /** Copies rank 0's whole state (parameters, buffers, {@code num_batches_tracked}) to every member. */
    public void broadcastState() {
        long t0 = System.nanoTime();
        StateDict mine = model.stateDict();
        byte[] payload = collective.rank() == 0 ? encode(mine) : new byte[0];
        byte[][] all = collective.allGather(payload);
        if (collective.rank() != 0) {
            model.loadStateDict(decode(all[0], mine), true);
        }
        account(t0);
    }

    /** Copies rank 0's buffers to every member (what DDP does before each forward with broadcast_buffers). */
    public void broadcastBuffers() {
        List<Tensor> buffers = new ArrayList<>(model.namedBuffers().values());
        if (buffers.isEmpty() || collective.worldSize() == 1) {
            return;
        }
        long t0 = System.nanoTime();
        float[] flat = flatten(buffers, false);
        collective.broadcast(flat, 0);
        unflatten(flat, buffers, false);
        account(t0);
    }

    /** Replaces every parameter's gradient by the mean over all members (a missing gradient counts as zeros). */
    public void averageGradients() {
        if (collective.worldSize() == 1) {
            return;
        }
        long t0 = System.nanoTime();
        List<Tensor> params = model.parameters();
        float[] flat = flatten(params, true);
        collective.allReduceMean(flat);
        unflatten(flat, params, true);
        account(t0);
    }

    /** Replaces every parameter by the mean over all members. */
    public void averageParameters() {
        if (collective.worldSize() == 1) {
            return;
        }
        long t0 = System.nanoTime();
        List<Tensor> params = model.parameters();
        float[] flat = flatten(params, false);
        collective.allReduceMean(flat);
        unflatten(flat, params, false);
        account(t0);
    }

    /**
     * One synchronous training step on this member's shard of the global batch: (rank 0's buffers copied in),
     * forward, loss, exchange of the losses, backward, gradient average, optimizer step. Returns the mean of all
     * members' losses (NaN when the step was skipped because some member's loss was not finite).
     */
    public float trainStep(Loss loss, Optimizer optimizer, Tensor inputs, Tensor targets) {
        model.train();
        if (broadcastBuffers) {
            broadcastBuffers();
        }
        StateDict buffersBefore = bufferState();
        float meanLoss;
        try (TensorScope scope = TensorScope.open()) {
            optimizer.zeroGrad();
            Tensor l = loss.forward(model.forward(inputs), targets);
            float local;
            try (GradMode ignored = GradMode.noGrad()) {
                local = l.item();
            }
            long t0 = System.nanoTime();
            float[][] losses = collective.allGatherFloats(new float[]{local});
            account(t0);
            double sum = 0;
            for (float[] f : losses) {
                sum += f[0];
            }
            meanLoss = (float) (sum / losses.length);
            if (!Float.isFinite(meanLoss)) {
                // the forward pass already moved the running statistics; a skipped step changes nothing
                model.loadStateDict(buffersBefore, false);
                skippedSteps++;
                LOG.warn("data-parallel step {} skipped on rank {}: a member's loss is not finite", steps, collective.rank());
                steps++;
                return Float.NaN;
            }
            l.backward();
            if (sync == Sync.GRADIENTS) {
                averageGradients();
            }
            optimizer.step();
        }
        steps++;
        if (sync == Sync.PARAMETER_AVERAGING && steps % averageEvery == 0) {
            averageParameters();
        }
        return meanLoss;
    }

    /** The buffers and {@code num_batches_tracked} counters: what a forward pass in training mode changes. */
    private StateDict bufferState() {
        StateDict all = model.stateDict();
        StateDict out = new StateDict();
        java.util.Set<String> buffers = model.namedBuffers().keySet();
        for (Map.Entry<String, StateDict.Entry> e : all.entries().entrySet()) {
            if (buffers.contains(e.getKey()) || e.getValue().dtype() == StateDict.DType.I64) {
                out.put(e.getKey(), e.getValue());
            }
        }
        return out;
    }

    /** Steps run by {@link #trainStep}, skipped ones included. */
    public long steps() {
        return steps;
    }

    public long skippedSteps() {
        return skippedSteps;
    }

    /** Wall time spent in this object's collective calls (waiting for peers included), in nanoseconds. */
    public long collectiveNanos() {
        return collectiveNanos;
    }

    public long collectiveCalls() {
        return collectiveCalls;
    }

    private void account(long t0) {
        collectiveNanos += System.nanoTime() - t0;
        collectiveCalls++;
    }

    private static float[] flatten(List<Tensor> tensors, boolean grads) {
        long total = 0;
        for (Tensor t : tensors) {
            total += t.numel();
        }
        if (total > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("DataParallel: " + total + " values do not fit one exchange");
        }
        float[] flat = new float[(int) total];
        int offset = 0;
        for (Tensor t : tensors) {
            int n = (int) t.numel();
            Tensor src = grads ? t.grad() : t;
            if (src != null) {
                System.arraycopy(src.toArray(), 0, flat, offset, n);
            }
            offset += n;
        }
        return flat;
    }

    private static void unflatten(float[] flat, List<Tensor> tensors, boolean grads) {
        int offset = 0;
        for (Tensor t : tensors) {
            int n = (int) t.numel();
            float[] part = java.util.Arrays.copyOfRange(flat, offset, offset + n);
            if (grads) {
                if (t.grad() == null) {
                    t.setGrad(Tensor.unscoped(t.device(), part, t.shape()));
                } else {
                    t.grad().copyFrom(part);
                }
            } else {
                t.copyFrom(part);
            }
            offset += n;
        }
    }

    /** State as (count, then per entry: F32 values or one I64 value), all as float64, in the model's key order. */
    private static byte[] encode(StateDict sd) {
        int doubles = 0;
        for (StateDict.Entry e : sd.entries().values()) {
            doubles += e.dtype() == StateDict.DType.I64 ? 1 : e.data().length;
        }
        ByteBuffer b = ByteBuffer.allocate(doubles * Double.BYTES).order(ByteOrder.LITTLE_ENDIAN);
        for (StateDict.Entry e : sd.entries().values()) {
            if (e.dtype() == StateDict.DType.I64) {
                b.putDouble(e.longValue());
            } else {
                for (float v : e.data()) {
                    b.putDouble(v);
                }
            }
        }
        return b.array();
    }

    private static StateDict decode(byte[] bytes, StateDict like) {
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        StateDict out = new StateDict();
        for (Map.Entry<String, StateDict.Entry> e : like.entries().entrySet()) {
            StateDict.Entry shape = e.getValue();
            if (shape.dtype() == StateDict.DType.I64) {
                out.put(e.getKey(), StateDict.Entry.ofLong((long) b.getDouble()));
            } else {
                float[] data = new float[shape.data().length];
                for (int i = 0; i < data.length; i++) {
                    data[i] = (float) b.getDouble();
                }
                out.put(e.getKey(), StateDict.Entry.of(data, shape.shape()));
            }
        }
        if (b.hasRemaining()) {
            throw new CollectiveException("DataParallel: rank 0's state has " + b.remaining()
                    + " bytes more than this replica's model (different architectures?)");
        }
        return out;
    }
}
