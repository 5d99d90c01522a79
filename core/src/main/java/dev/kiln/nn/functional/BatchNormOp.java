package dev.kiln.nn.functional;

import dev.kiln.backend.Activation;
import dev.kiln.backend.Backend;
import dev.kiln.backend.BatchNormGeometry;
import dev.kiln.backend.Buffer;
import dev.kiln.core.GradMode;
import dev.kiln.core.Tensor;
import dev.kiln.nn.StepTransaction;

/**
 * Batch normalisation over (N, C, *) with PyTorch's {@code F.batch_norm} semantics. Statistics per channel over
 * N and all trailing dimensions.
 */
public final class BatchNormOp {

    private BatchNormOp() {
    }

    /**
     * @param useBatchStats   normalise with the batch's biased statistics (training, or no running stats); else with
     *                        {@code runningMean}/{@code runningVar}
     * @param updateFactor    when using batch statistics and the running buffers are non-null, the exponential
     *                        averaging factor (momentum, or 1/num_batches_tracked); ignored otherwise
     * @param weight          gamma (C) or null; {@code bias} beta (C) or null
     */
    public static Tensor batchNorm(Tensor x, Tensor runningMean, Tensor runningVar, Tensor weight, Tensor bias,
                                   boolean useBatchStats, double updateFactor, float eps) {
        return batchNorm(x, runningMean, runningVar, weight, bias, useBatchStats, updateFactor, eps, null);
    }

    /**
     * As above; inside a {@link StepTransaction} the running-statistics update is deferred to the step's commit,
     * where a non-finite loss skips it and counts the skip in {@code skipCounter} (one float, nullable).
     */
    public static Tensor batchNorm(Tensor x, Tensor runningMean, Tensor runningVar, Tensor weight, Tensor bias,
                                   boolean useBatchStats, double updateFactor, float eps, Tensor skipCounter) {
        int[] s = x.shape();
        BatchNormGeometry g = geometry(s);
        Backend be = x.device().backend();
        Buffer y = be.allocateUninitialized(g.length());
        Buffer gamma = weight == null ? null : weight.buffer();
        Buffer beta = bias == null ? null : bias.buffer();
        if (!useBatchStats) {
            be.batchNormForwardInference(g, Activation.IDENTITY, x.buffer(), gamma, beta, runningMean.buffer(),
                    runningVar.buffer(), eps, y);
            return Tensor.fromOp("batch_norm", x.device(), y, s, dy -> {
                // Eval mode: y = gamma * (x - m) * r + beta with fixed statistics, so the backward is element-wise.
                Tensor invStd = runningVar.add(eps).sqrt().reciprocal();
                Tensor scale = weight == null ? invStd : invStd.mul(weight);
                int[] bshape = broadcastShape(s);
                Tensor dx = x.requiresGrad() ? dy.mul(scale.reshape(bshape)) : null;
                Tensor normalized = null;
                if (weight != null && weight.requiresGrad()) {
                    normalized = x.sub(runningMean.reshape(bshape)).mul(invStd.reshape(bshape));
                }
                Tensor dGamma = normalized == null ? null : reduceToChannels(dy.mul(normalized));
                Tensor dBeta = bias != null && bias.requiresGrad() ? reduceToChannels(dy) : null;
                return new Tensor[]{dx, null, null, dGamma, dBeta};
            }, x, null, null, weight, bias).recordOpAttributes(java.util.Map.of("eps", eps, "batch_stats", false,
                    "running_mean", runningMean, "running_var", runningVar));
        }
        Buffer saveMean = be.allocateUninitialized(g.channels());
        Buffer saveInvStd = be.allocateUninitialized(g.channels());
        be.batchNormForwardTraining(g, x.buffer(), gamma, beta, eps, y, saveMean, saveInvStd);
        if (runningMean != null && runningVar != null) {
            updateRunningStats(g, saveMean, saveInvStd, eps, updateFactor, runningMean, runningVar, skipCounter);
        }
        Tensor mean = Tensor.wrap(x.device(), saveMean, g.channels());
        Tensor invStd = Tensor.wrap(x.device(), saveInvStd, g.channels());
        return Tensor.fromOp("batch_norm", x.device(), y, s, dy -> {
            Buffer dx = x.requiresGrad() ? be.allocateUninitialized(g.length()) : null;
            boolean wantGamma = weight != null && weight.requiresGrad();
            boolean wantBeta = bias != null && bias.requiresGrad();
            Buffer dGamma = wantGamma ? be.allocateUninitialized(g.channels()) : null;
            Buffer dBeta = wantBeta ? be.allocateUninitialized(g.channels()) : null;
            be.batchNormBackward(g, x.buffer(), dy.buffer(), gamma, mean.buffer(), invStd.buffer(), dx, dGamma, dBeta);
            return new Tensor[]{
                    dx == null ? null : Tensor.wrap(x.device(), dx, s),
                    null, null,
                    dGamma == null ? null : Tensor.wrap(x.device(), dGamma, g.channels()),
                    dBeta == null ? null : Tensor.wrap(x.device(), dBeta, g.channels())};
        }, x, null, null, weight, bias).recordOpAttributes(java.util.Map.of("eps", eps, "batch_stats", true));
    }

    /**
     * Folds a batch's statistics ({@code mean}, {@code invStd} = 1/sqrt(biased var + eps), per channel of {@code g})
     * into the running statistics: at once outside a {@link StepTransaction}; inside one, the new values are computed
     * into temporaries the step's guard checks ({@link StepTransaction#willWrite}), and the update itself is applied
     * at the commit, guarded (a skipped one counted in {@code skipCounter}, one float, nullable). The buffers
     * {@code mean} and {@code invStd} must live until the commit (the step's scope).
     */
    public static void updateRunningStats(BatchNormGeometry g, Buffer mean, Buffer invStd, float eps, double factor,
                                          Tensor runningMean, Tensor runningVar, Tensor skipCounter) {
        Backend be = runningMean.device().backend();
        StepTransaction tx = StepTransaction.current();
        if (tx == null) {
            be.batchNormUpdateRunningStats(g, mean, invStd, eps, factor, runningMean.buffer(), runningVar.buffer(),
                    null, null);
            return;
        }
        // the same kernel on copies gives the very values the commit will write, so the guard can check them first
        Tensor newMean = runningMean.copy();
        Tensor newVar = runningVar.copy();
        be.batchNormUpdateRunningStats(g, mean, invStd, eps, factor, newMean.buffer(), newVar.buffer(), null, null);
        tx.willWrite(newMean);
        tx.willWrite(newVar);
        tx.deferDeviceUpdate(guard -> be.batchNormUpdateRunningStats(g, mean, invStd, eps, factor,
                runningMean.buffer(), runningVar.buffer(), guard == null ? null : guard.buffer(),
                guard == null || skipCounter == null ? null : skipCounter.buffer()));
    }

    /** (N, C, *) as N, C and the product of the trailing dimensions. */
    static BatchNormGeometry geometry(int[] s) {
        int spatial = 1;
        for (int i = 2; i < s.length; i++) {
            spatial *= s[i];
        }
        return new BatchNormGeometry(s[0], s[1], spatial);
    }

    private static int[] broadcastShape(int[] s) {
        int[] b = new int[s.length];
        java.util.Arrays.fill(b, 1);
        b[1] = s[1];
        return b;
    }

    private static Tensor reduceToChannels(Tensor t) {
        int[] s = t.shape();
        try (GradMode ignored = GradMode.noGrad()) {
            return t.sumToShape(broadcastShape(s)).reshape(s[1]);
        }
    }
}
