package dev.kiln.nn.functional;

import dev.kiln.backend.Activation;
import dev.kiln.backend.Backend;
import dev.kiln.backend.BatchNormGeometry;
import dev.kiln.backend.Buffer;
import dev.kiln.core.CaptureContext;
import dev.kiln.core.Device;
import dev.kiln.core.GradMode;
import dev.kiln.core.Shapes;
import dev.kiln.core.Tensor;
import dev.kiln.distributed.Collective;

import java.util.Arrays;

/**
 * Training-mode batch normalisation whose statistics span every member of a {@link Collective}, as PyTorch's
 * {@code SyncBatchNorm}: each member computes its local per-channel mean and inverse standard deviation, the
 * members exchange (count, mean, variance) and combine them in rank order (parallel variance formula, double
 * precision), and every member normalises with the global biased statistics. The backward pass exchanges the
 * per-channel sums of {@code dy} and {@code dy * xhat} the same way and divides by the global count, so N members
 * with b samples each compute the input gradients of one batch of N*b samples (scaled by N, which the data-parallel
 * gradient average divides out). The gradients of gamma and beta stay local, as in PyTorch.
 */
public final class SyncBatchNormOp {

    private SyncBatchNormOp() {
    }

    /**
     * @param updateFactor the running-statistics averaging factor; the buffers are updated with the global mean and
     *                     the global unbiased variance when both are non-null
     * @param layer        names the layer in error messages
     */
    public static Tensor syncBatchNorm(Tensor x, Tensor runningMean, Tensor runningVar, Tensor weight, Tensor bias,
                                       double updateFactor, float eps, Collective collective, String layer) {
        return syncBatchNorm(x, runningMean, runningVar, weight, bias, updateFactor, eps, collective, layer, null);
    }

    /**
     * As above; inside a {@link dev.kiln.nn.StepTransaction} the running statistics change at the step's commit
     * (guarded, a skip counted in {@code skipCounter}, one float, nullable), as {@link BatchNormOp} does.
     */
    public static Tensor syncBatchNorm(Tensor x, Tensor runningMean, Tensor runningVar, Tensor weight, Tensor bias,
                                       double updateFactor, float eps, Collective collective, String layer,
                                       Tensor skipCounter) {
        CaptureContext.refuse(layer + ": synchronised batch norm exchanges statistics on the host every step");
        int[] s = x.shape();
        BatchNormGeometry g = BatchNormOp.geometry(s);
        Device device = x.device();
        Backend be = device.backend();
        int c = g.channels();

        // local statistics (count, mean[c], biased var[c]): the backend's training kernel gives mean and
        // 1/sqrt(var + eps) per channel (its normalised output is not needed)
        double[] local = new double[1 + 2 * c];
        local[0] = g.valuesPerChannel();
        float[] m = new float[c];
        float[] is = new float[c];
        try (Buffer scratch = be.allocateUninitialized(g.length());
             Buffer mean = be.allocateUninitialized(c);
             Buffer invStd = be.allocateUninitialized(c)) {
            be.batchNormForwardTraining(g, x.buffer(), null, null, eps, scratch, mean, invStd);
            be.download(mean, 0, m, 0, c);
            be.download(invStd, 0, is, 0, c);
        }
        for (int ch = 0; ch < c; ch++) {
            double r = is[ch];
            local[1 + ch] = m[ch];
            local[1 + c + ch] = Math.max(0.0, 1.0 / (r * r) - eps);
        }
        double[][] all = collective.allGatherDoubles(local);
        double total = 0;
        for (double[] part : all) {
            checkLength(part, local.length, layer, "statistics");
            total += part[0];
        }
        if (total <= 1) {
            throw new IllegalArgumentException(layer + ": expected more than 1 value per channel over all "
                    + all.length + " members when training, got " + (long) total + " (local input of shape "
                    + Shapes.toString(s) + ")");
        }
        float[] globalMean = new float[c];
        float[] globalVar = new float[c];
        float[] globalInvStd = new float[c];
        for (int ch = 0; ch < c; ch++) {
            double mean = 0;
            for (double[] part : all) {
                mean += part[0] * part[1 + ch];
            }
            mean /= total;
            double m2 = 0;
            for (double[] part : all) {
                double d = part[1 + ch] - mean;
                m2 += part[0] * (part[1 + c + ch] + d * d);
            }
            double var = m2 / total;
            globalMean[ch] = (float) mean;
            globalVar[ch] = (float) var;
            globalInvStd[ch] = (float) (1.0 / Math.sqrt(var + eps));
        }
        Tensor meanT = Tensor.wrap(device, be.upload(globalMean, 0, c), c);
        Tensor invStdT = Tensor.wrap(device, be.upload(globalInvStd, 0, c), c);
        Buffer y = be.allocateUninitialized(g.length());
        try (Buffer var = be.upload(globalVar, 0, c)) {
            be.batchNormForwardInference(g, Activation.IDENTITY, x.buffer(), weight == null ? null : weight.buffer(),
                    bias == null ? null : bias.buffer(), meanT.buffer(), var, eps, y);
        }
        if (runningMean != null && runningVar != null) {
            // the global count decides the unbiased correction n/(n-1)
            BatchNormGeometry global = new BatchNormGeometry((int) Math.round(total / g.spatial()), c, g.spatial());
            BatchNormOp.updateRunningStats(global, meanT.buffer(), invStdT.buffer(), eps, updateFactor, runningMean,
                    runningVar, skipCounter);
        }
        final double globalCount = total;
        return Tensor.fromOp("sync_batch_norm", device, y, s, dy -> {
            boolean wantGamma = weight != null && weight.requiresGrad();
            boolean wantBeta = bias != null && bias.requiresGrad();
            Buffer sumDyXhat = be.allocateUninitialized(c);
            Buffer sumDy = be.allocateUninitialized(c);
            float[] sums = new float[2 * c];
            be.batchNormBackward(g, x.buffer(), dy.buffer(), null, meanT.buffer(), invStdT.buffer(), null,
                    sumDyXhat, sumDy);
            be.download(sumDy, 0, sums, 0, c);
            be.download(sumDyXhat, 0, sums, c, c);
            double[] reduced = new double[2 * c];
            for (int i = 0; i < reduced.length; i++) {
                reduced[i] = sums[i];
            }
            collective.allReduceSum(reduced);
            Tensor dx = null;
            if (x.requiresGrad()) {
                float[] meanDy = new float[c];
                float[] meanDyXhat = new float[c];
                for (int ch = 0; ch < c; ch++) {
                    meanDy[ch] = (float) (reduced[ch] / globalCount);
                    meanDyXhat[ch] = (float) (reduced[c + ch] / globalCount);
                }
                int[] b = channelShape(s);
                try (GradMode ignored = GradMode.noGrad()) {
                    Tensor scale = weight == null ? invStdT : invStdT.mul(weight);
                    Tensor xhat = x.sub(meanT.reshape(b)).mul(invStdT.reshape(b));
                    // dx = gamma * invstd * (dy - mean(dy) - xhat * mean(dy * xhat)), means over the global batch
                    dx = dy.sub(Tensor.of(device, meanDy, b))
                            .sub(xhat.mul(Tensor.of(device, meanDyXhat, b)))
                            .mul(scale.reshape(b));
                }
            }
            Tensor dGamma = Tensor.wrap(device, sumDyXhat, c);
            Tensor dBeta = Tensor.wrap(device, sumDy, c);
            return new Tensor[]{dx, null, null, wantGamma ? dGamma : null, wantBeta ? dBeta : null};
        }, x, null, null, weight, bias);
    }

    private static void checkLength(double[] part, int expected, String layer, String what) {
        if (part.length != expected) {
            throw new IllegalStateException(layer + ": a member sent " + part.length + " " + what + " values, expected "
                    + expected + " (every member must have the same channels)");
        }
    }

    private static int[] channelShape(int[] s) {
        int[] b = new int[s.length];
        Arrays.fill(b, 1);
        b[1] = s[1];
        return b;
    }
}
