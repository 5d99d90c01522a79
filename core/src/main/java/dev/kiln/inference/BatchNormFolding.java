package dev.kiln.inference;

import dev.kiln.core.Device;
import dev.kiln.core.Generator;
import dev.kiln.core.Tensor;
import dev.kiln.nn.BatchNorm;
import dev.kiln.nn.BatchNorm1d;
import dev.kiln.nn.BatchNorm2d;
import dev.kiln.nn.Conv2d;
import dev.kiln.nn.Linear;
import dev.kiln.nn.Module;

import java.util.ArrayList;
import java.util.List;

/**
 * Folds an eval-mode batch norm into the convolution or linear layer before it: with
 * {@code s = gamma / sqrt(running_var + eps)}, {@code W' = W * s} (per output channel) and
 * {@code b' = (b - running_mean) * s + beta}, so one layer computes what the two did. Computed in double on the host;
 * the folded model agrees with the unfolded one to float rounding (the tests bound it).
 */
final class BatchNormFolding {

    private BatchNormFolding() {
    }

    /**
     * The layers with every foldable (layer, batch norm) pair replaced by one new layer; new layers are added to
     * {@code created} (the caller owns and closes them), the others are the same instances as in {@code layers}.
     */
    static List<Module> fold(List<Module> layers, Device device, List<Module> created) {
        List<Module> out = new ArrayList<>(layers.size());
        for (int i = 0; i < layers.size(); i++) {
            Module m = layers.get(i);
            Module next = i + 1 < layers.size() ? layers.get(i + 1) : null;
            Module folded = null;
            if (m instanceof Conv2d conv && next instanceof BatchNorm2d bn && foldable(bn, conv.outChannels())) {
                Conv2d c = conv.toBuilder().bias(true).build(device, new Generator(0));
                foldInto(conv.weight(), conv.bias(), bn, c.weight(), c.bias());
                folded = c;
            } else if (m instanceof Linear lin && next instanceof BatchNorm1d bn && foldable(bn, lin.outFeatures())) {
                Linear l = new Linear(device, new Generator(0), lin.inFeatures(), lin.outFeatures(), true);
                foldInto(lin.weight(), lin.bias(), bn, l.weight(), l.bias());
                folded = l;
            }
            if (folded != null) {
                folded.eval();
                created.add(folded);
                out.add(folded);
                i++;
            } else {
                out.add(m);
            }
        }
        return out;
    }

    private static boolean foldable(BatchNorm bn, int channels) {
        return bn.trackRunningStats() && bn.numFeatures() == channels;
    }

    private static void foldInto(Tensor weight, Tensor bias, BatchNorm bn, Tensor foldedWeight, Tensor foldedBias) {
        float[] w = weight.toArray();
        int channels = bn.numFeatures();
        int perChannel = w.length / channels;
        float[] b = bias != null ? bias.toArray() : new float[channels];
        float[] mean = bn.runningMean().toArray();
        float[] var = bn.runningVar().toArray();
        float[] gamma = bn.affine() ? bn.weight().toArray() : null;
        float[] beta = bn.affine() ? bn.bias().toArray() : null;
        float[] w2 = new float[w.length];
        float[] b2 = new float[channels];
        for (int c = 0; c < channels; c++) {
            double s = (gamma != null ? gamma[c] : 1.0) / Math.sqrt((double) var[c] + bn.eps());
            for (int j = 0; j < perChannel; j++) {
                w2[c * perChannel + j] = (float) (w[c * perChannel + j] * s);
            }
            b2[c] = (float) ((b[c] - (double) mean[c]) * s + (beta != null ? beta[c] : 0.0));
        }
        foldedWeight.copyFrom(w2);
        foldedBias.copyFrom(b2);
    }
}
