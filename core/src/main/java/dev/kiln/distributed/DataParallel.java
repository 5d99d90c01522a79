package dev.kiln.distributed;

import dev.kiln.core.CaptureContext;
import dev.kiln.core.Tensor;
import dev.kiln.nn.Loss;
import dev.kiln.nn.Module;
import dev.kiln.nn.StateDict;
import dev.kiln.nn.SyncBatchNorm;
import dev.kiln.optim.Optimizer;
import dev.kiln.train.ReplicaSync;
import dev.kiln.train.Trainer;
import dev.kiln.train.TrainingStep;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;
import java.util.Map;
import java.util.Objects;

/**
 * Data-parallel training of one model replica per member of a {@link Collective}, after PyTorch's
 * {@code DistributedDataParallel}: construction copies rank 0's parameters and buffers to every member, and every
 * step averages the gradients over all members before the optimizer runs, so every replica takes the same step (the
 * gradient of the mean loss over the global batch) and the replicas stay bitwise identical.
 *
 * <p>The step itself is a {@link TrainingStep}: this class is the {@link ReplicaSync} it calls between the backward
 * pass and the optimizer. Use it with {@link Trainer.Builder#sync} (the user's model, loss, optimizer and schedule,
 * unchanged), with {@link TrainingStep}'s constructor, or through {@link #trainStep}. Gradients are averaged in
 * buckets of at most {@link #bucketBytes()} (25 MiB by default, PyTorch DDP's {@code bucket_cap_mb}), last
 * parameters first as the backward pass produces them, each bucket one {@link Collective#allReduceMean} (summed in
 * rank order in double precision, the same bits on every member).
 *
 * <p>The step's guard (its loss, made NaN when a gradient or a new running statistic is not finite) travels in the
 * first bucket and is averaged with the gradients, so a step that is not finite on one member is skipped on every
 * member: parameters, optimizer state, running statistics and {@code num_batches_tracked} stay unchanged
 * everywhere.
 *
 * <p>{@link Sync#PARAMETER_AVERAGING} instead lets each replica step on its own gradients and averages the
 * parameters every {@code k} steps (local SGD); replicas differ between averagings (the guard is still reduced).
 *
 * <p>Buffers (batch-norm running statistics) follow DDP's default {@code broadcast_buffers=True}: before every
 * training forward, rank 0's buffers are copied to all members, so the running statistics that survive are rank
 * 0's, computed from rank 0's shard of each batch. {@link dev.kiln.nn.SyncBatchNorm}'s buffers are left out of that
 * broadcast, since its statistics are global and already identical on every member; a model whose only buffers are
 * SyncBatchNorm's has no broadcast at all. With plain batch norm each replica normalises with its own shard's
 * statistics, so N members with batch b do <em>not</em> train like one member with batch N*b; with SyncBatchNorm
 * they do. Not thread-safe: one instance per member.
 */
public final class DataParallel implements ReplicaSync, AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(DataParallel.class);
    /** PyTorch DDP's default {@code bucket_cap_mb=25}. */
    public static final long DEFAULT_BUCKET_BYTES = 25L * 1024 * 1024;

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
    /** The buffers copied from rank 0 before each forward: those outside SyncBatchNorm layers (empty: no copy). */
    private final List<Tensor> broadcastBuffers;
    private long bucketBytes = DEFAULT_BUCKET_BYTES;
    private long steps;
    private long skippedSteps;
    private long collectiveNanos;
    private long collectiveCalls;
    private TrainingStep step;
    private Loss stepLoss;
    private Optimizer stepOptimizer;

    /** DDP's defaults: gradient averaging every step, rank 0's buffers broadcast before every forward. */
    public DataParallel(Module model, Collective collective) {
        this(model, collective, Sync.GRADIENTS, 1, true);
    }

    /**
     * @param averageEvery     steps between parameter averagings (only for {@link Sync#PARAMETER_AVERAGING})
     * @param broadcastBuffers copy rank 0's buffers to every member before each training forward (DDP's default;
     *                         SyncBatchNorm's buffers are global and never copied)
     */
    public DataParallel(Module model, Collective collective, Sync sync, int averageEvery, boolean broadcastBuffers) {
        this.model = Objects.requireNonNull(model, "model");
        this.collective = Objects.requireNonNull(collective, "collective");
        this.sync = Objects.requireNonNull(sync, "sync");
        if (averageEvery < 1) {
            throw new IllegalArgumentException("DataParallel: averageEvery must be at least 1, got " + averageEvery);
        }
        this.averageEvery = averageEvery;
        this.broadcastBuffers = broadcastBuffers && collective.worldSize() > 1 ? buffersOutsideSyncBatchNorm(model)
                : List.of();
        broadcastState();
    }

    private static List<Tensor> buffersOutsideSyncBatchNorm(Module model) {
        Set<Tensor> global = Collections.newSetFromMap(new IdentityHashMap<>());
        collectSyncBatchNormBuffers(model, global);
        List<Tensor> out = new ArrayList<>();
        for (Tensor b : model.namedBuffers().values()) {
            if (!global.contains(b)) {
                out.add(b);
            }
        }
        return out;
    }

    private static void collectSyncBatchNormBuffers(Module m, Set<Tensor> out) {
        if (m instanceof SyncBatchNorm s && s.collective().worldSize() > 1) {
            out.addAll(s.namedBuffers().values());
        }
        for (Module child : m.namedChildren().values()) {
            collectSyncBatchNormBuffers(child, out);
        }
    }

    /**
     * The most bytes of gradients one all-reduce carries (default {@link #DEFAULT_BUCKET_BYTES}); a parameter
     * larger than that goes alone. Every member must use the same value.
     */
    public DataParallel bucketBytes(long bytes) {
        if (bytes < Float.BYTES) {
            throw new IllegalArgumentException("DataParallel: bucketBytes must hold at least one float, got " + bytes);
        }
        this.bucketBytes = bytes;
        return this;
    }

    public long bucketBytes() {
        return bucketBytes;
    }

    public Collective collective() {
        return collective;
    }

    public Module model() {
        return model;
    }

    /** Whether rank 0's buffers are copied to every member before each forward (false with only SyncBatchNorm). */
    public boolean broadcastsBuffers() {
        return !broadcastBuffers.isEmpty();
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

    /** Copies rank 0's buffers outside SyncBatchNorm layers to every member (DDP's broadcast_buffers). */
    public void broadcastBuffers() {
        if (broadcastBuffers.isEmpty()) {
            return;
        }
        long t0 = System.nanoTime();
        float[] flat = flatten(broadcastBuffers);
        collective.broadcast(flat, 0);
        unflatten(flat, broadcastBuffers);
        account(t0);
    }

    @Override
    public void beforeStep() {
        // counted here, not in reduce: a replayed graph (one member, graphs on) does not run reduce again
        steps++;
        broadcastBuffers();
    }

    /**
     * Averages the gradients over all members in buckets (a missing gradient counts as zeros) and the guard with
     * them; with {@link Sync#PARAMETER_AVERAGING} only the guard.
     */
    @Override
    public void reduce(List<Tensor> parameters, Tensor guard) {
        if (collective.worldSize() == 1) {
            return;
        }
        CaptureContext.refuse("data-parallel training exchanges gradients through the host every step");
        long t0 = System.nanoTime();
        float[] guardValue = guard.toArray();
        if (guardValue.length != 1) {
            throw new IllegalArgumentException("DataParallel: the guard must hold one value, got " + guardValue.length);
        }
        float reduced;
        if (sync == Sync.GRADIENTS) {
            reduced = averageGradients(parameters, guardValue[0]);
        } else {
            collective.allReduceMean(guardValue);
            reduced = guardValue[0];
        }
        guard.copyFrom(new float[]{reduced});
        if (!Float.isFinite(reduced)) {
            skippedSteps++;
            LOG.warn("data-parallel step {} skipped on rank {}: a member's loss, gradients or running statistics are"
                    + " not finite", steps - 1, collective.rank());
        }
        account(t0);
    }

    @Override
    public void afterStep() {
        if (sync == Sync.PARAMETER_AVERAGING && steps % averageEvery == 0) {
            averageParameters();
        }
    }

    /**
     * How {@link #reduce} groups {@code parameters} into all-reduces: last first, each bucket at most
     * {@link #bucketBytes} of values (or one larger parameter alone).
     */
    public List<List<Tensor>> buckets(List<Tensor> parameters) {
        long cap = Math.max(1, bucketBytes / Float.BYTES);
        List<List<Tensor>> out = new ArrayList<>();
        List<Tensor> current = new ArrayList<>();
        long values = 0;
        for (int i = parameters.size() - 1; i >= 0; i--) {
            Tensor p = parameters.get(i);
            if (!current.isEmpty() && values + p.numel() > cap) {
                out.add(current);
                current = new ArrayList<>();
                values = 0;
            }
            current.add(p);
            values += p.numel();
        }
        out.add(current);
        return out;
    }

    /** The all-reduce of every gradient, bucket by bucket; the guard rides at the end of the first bucket. */
    private float averageGradients(List<Tensor> parameters, float guard) {
        float reducedGuard = guard;
        boolean first = true;
        for (List<Tensor> bucket : buckets(parameters)) {
            long total = first ? 1 : 0;
            for (Tensor p : bucket) {
                total += p.numel();
            }
            if (total > Integer.MAX_VALUE - 8) {
                throw new IllegalArgumentException("DataParallel: a parameter of " + total
                        + " values does not fit one exchange");
            }
            float[] flat = new float[(int) total];
            int offset = 0;
            for (Tensor p : bucket) {
                Tensor g = p.grad();
                if (g != null) {
                    g.device().backend().download(g.buffer(), 0, flat, offset, (int) p.numel());
                }
                offset += (int) p.numel();
            }
            if (first) {
                flat[offset] = guard;
            }
            collective.allReduceMean(flat);
            offset = 0;
            for (Tensor p : bucket) {
                int n = (int) p.numel();
                if (p.grad() == null) {
                    p.setGrad(Tensor.unscoped(p.device(), Arrays.copyOfRange(flat, offset, offset + n), p.shape()));
                } else {
                    p.grad().device().backend().write(flat, offset, p.grad().buffer(), 0, n);
                }
                offset += n;
            }
            if (first) {
                reducedGuard = flat[offset];
            }
            first = false;
        }
        return reducedGuard;
    }

    /** Replaces every parameter by the mean over all members. */
    public void averageParameters() {
        if (collective.worldSize() == 1) {
            return;
        }
        long t0 = System.nanoTime();
        List<Tensor> params = model.parameters();
        float[] flat = flatten(params);
        collective.allReduceMean(flat);
        unflatten(flat, params);
        account(t0);
    }

    /**
     * One synchronous training step on this member's shard of the global batch, run by a {@link TrainingStep} with
     * this object as its {@link ReplicaSync} (made at the first call, and again when the shape, loss or optimizer
     * changes). Returns the mean of all members' losses, or NaN when the step was skipped because some member's
     * loss, gradients or running statistics were not finite. Reads the loss back (a host wait); for steps without
     * one, use a {@link TrainingStep} or {@link Trainer} with this object as their sync.
     */
    public float trainStep(Loss loss, Optimizer optimizer, Tensor inputs, Tensor targets) {
        int[] shape = inputs.shape();
        if (step == null || stepLoss != loss || stepOptimizer != optimizer
                || !Arrays.equals(step.inputs().shape(), shape)) {
            if (step != null) {
                step.close();
            }
            step = new TrainingStep(model, loss, optimizer, inputs.device(), shape[0],
                    Arrays.copyOfRange(shape, 1, shape.length), false, 1, this);
            stepLoss = loss;
            stepOptimizer = optimizer;
        }
        step.inputs().copyFrom(inputs);
        step.targets().copyFrom(targets);
        step.run();
        double mean = step.drain().meanLoss();
        return Double.isFinite(mean) ? (float) mean : Float.NaN;
    }

    /** Steps run with this object as their sync (skipped ones included). */
    public long steps() {
        return steps;
    }

    /** Steps every member skipped because a member's loss, gradients or running statistics were not finite. */
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

    /** Releases the step {@link #trainStep} made (the model stays the caller's). */
    @Override
    public void close() {
        if (step != null) {
            step.close();
            step = null;
        }
    }

    private void account(long t0) {
        collectiveNanos += System.nanoTime() - t0;
        collectiveCalls++;
    }

    private static float[] flatten(List<Tensor> tensors) {
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
            t.device().backend().download(t.buffer(), 0, flat, offset, n);
            offset += n;
        }
        return flat;
    }

    private static void unflatten(float[] flat, List<Tensor> tensors) {
        int offset = 0;
        for (Tensor t : tensors) {
            int n = (int) t.numel();
            t.device().backend().write(flat, offset, t.buffer(), 0, n);
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
