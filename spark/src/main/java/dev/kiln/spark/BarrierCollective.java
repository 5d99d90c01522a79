package dev.kiln.spark;

import dev.kiln.distributed.Collective;
import dev.kiln.distributed.CollectiveException;
import org.apache.spark.BarrierTaskContext;

import java.util.Base64;
import java.util.Objects;

/**
 * The {@link Collective} of the tasks of one Spark barrier stage: rank is the partition id, and every exchange is
 * one {@link BarrierTaskContext#allGather(String)} (which Spark orders by partition id), with the bytes carried as
 * Base64 text because that call takes strings. Each exchange passes through the driver, so it suits what data
 * parallelism sends per step (gradients of a small model, per-channel batch-norm statistics), not bulk data.
 */
public final class BarrierCollective implements Collective, SocketCollective.JobBound {

    private final BarrierTaskContext context;
    private final int worldSize;

    public BarrierCollective(BarrierTaskContext context) {
        this.context = Objects.requireNonNull(context, "context");
        this.worldSize = context.getTaskInfos().length;
    }

    /** The collective of the barrier task running on this thread. */
    public static BarrierCollective current() {
        BarrierTaskContext ctx;
        try {
            ctx = BarrierTaskContext.get();
        } catch (ClassCastException | IllegalStateException e) {
            throw new IllegalStateException("BarrierCollective: not inside a barrier task (use rdd.barrier())", e);
        }
        if (ctx == null) {
            throw new IllegalStateException("BarrierCollective: not inside a Spark task");
        }
        return new BarrierCollective(ctx);
    }

    @Override
    public int rank() {
        return context.partitionId();
    }

    @Override
    public int worldSize() {
        return worldSize;
    }

    @Override
    public byte[][] allGather(byte[] local) {
        String[] all;
        try {
            all = context.allGather(Base64.getEncoder().encodeToString(local));
        } catch (RuntimeException e) {
            throw new CollectiveException("allGather: barrier task " + rank() + " of " + worldSize + " (stage "
                    + context.stageId() + ") failed: " + e.getMessage(), e);
        }
        if (all.length != worldSize) {
            throw new CollectiveException("allGather: expected " + worldSize + " messages, got " + all.length);
        }
        byte[][] out = new byte[all.length][];
        for (int r = 0; r < all.length; r++) {
            out[r] = Base64.getDecoder().decode(all[r]);
        }
        return out;
    }

    /**
     * Binds a {@link SocketCollective} opened over this rendezvous to this stage and attempt, and seals its frames
     * when the cluster encrypts its own traffic ({@code spark.network.crypto.enabled}).
     */
    @Override
    public SocketCollective.Options bind(SocketCollective.Options options) {
        String app = "";
        boolean encrypt = false;
        org.apache.spark.SparkEnv env = org.apache.spark.SparkEnv.get();
        if (env != null) {
            app = env.conf().get("spark.app.id", "");
            encrypt = env.conf().getBoolean("spark.network.crypto.enabled", false);
        }
        return options.job(app + "/stage " + context.stageId(), context.stageAttemptNumber()).encrypt(encrypt);
    }

    @Override
    public String toString() {
        return "BarrierCollective(rank " + rank() + " of " + worldSize + ", stage " + context.stageId() + ")";
    }
}
