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

import dev.kiln.core.GradMode;
import dev.kiln.core.OpGraph;
import dev.kiln.core.TensorScope;

import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

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

    /**
     * Folds, in place, every batch norm of {@code model} whose only input is a convolution or linear layer's output
     * that nothing else reads, wherever the two sit in the model: found from the dataflow of one forward pass on
     * {@code probe} with gradients recorded ({@link OpGraph}), so a model whose {@code forward} is ordinary code (a
     * residual block) folds as a flat sequence does. The layer's weight and bias take the folded values (a layer
     * without a bias gets one) and the batch norm becomes a pass-through ({@link BatchNorm#markFolded}). A layer or
     * batch norm that {@code forward} uses more than once is left alone, as is a batch norm without running
     * statistics or affine parameters. {@code model} must be in eval mode and must not be shared: it is changed.
     *
     * @return the batch norms folded, in the order the forward pass reached them
     */
    static List<BatchNorm> foldGraph(Module model, Tensor probe) {
        if (model.isTraining()) {
            throw new IllegalStateException("batch-norm folding needs the model in eval mode");
        }
        Map<Tensor, Module> byWeight = new IdentityHashMap<>();
        for (Module m : model.namedModules().values()) {
            if (m instanceof Conv2d c) {
                byWeight.put(c.weight(), c);
            } else if (m instanceof Linear l) {
                byWeight.put(l.weight(), l);
            } else if (m instanceof BatchNorm bn && bn.affine() && bn.trackRunningStats() && !bn.isFolded()) {
                byWeight.put(bn.weight(), bn);
            }
        }
        List<Module[]> pairs = new ArrayList<>();
        try (TensorScope scope = TensorScope.open(); GradMode grad = GradMode.enableGrad()) {
            Tensor out = model.forward(probe);
            List<Tensor> nodes = OpGraph.topologicalOrder(out);
            Map<Tensor, Integer> readers = new IdentityHashMap<>();
            Map<Module, Integer> uses = new IdentityHashMap<>();
            readers.merge(out, 1, Integer::sum); // the caller reads the output
            for (Tensor n : nodes) {
                for (Tensor in : OpGraph.inputs(n)) {
                    if (in != null) {
                        readers.merge(in, 1, Integer::sum);
                        Module owner = byWeight.get(in);
                        if (owner != null) {
                            uses.merge(owner, 1, Integer::sum);
                        }
                    }
                }
            }
            for (Tensor n : nodes) {
                if (!"batch_norm".equals(n.op())) {
                    continue;
                }
                List<Tensor> in = OpGraph.inputs(n);
                BatchNorm bn = in.size() > 3 && byWeight.get(in.get(3)) instanceof BatchNorm b ? b : null;
                Tensor x = in.isEmpty() ? null : in.get(0);
                if (bn == null || x == null || uses.getOrDefault(bn, 0) != 1 || readers.getOrDefault(x, 0) != 1) {
                    continue;
                }
                List<Tensor> xin = OpGraph.inputs(x);
                Module layer = xin.size() > 1 ? byWeight.get(xin.get(1)) : null;
                boolean matches = ("conv2d".equals(x.op()) && layer instanceof Conv2d c && c.outChannels() == bn.numFeatures())
                        || ("linear".equals(x.op()) && layer instanceof Linear l && l.outFeatures() == bn.numFeatures());
                if (matches && uses.getOrDefault(layer, 0) == 1) {
                    pairs.add(new Module[]{layer, bn});
                }
            }
        }
        List<BatchNorm> folded = new ArrayList<>();
        for (Module[] pair : pairs) {
            BatchNorm bn = (BatchNorm) pair[1];
            Tensor weight = pair[0] instanceof Conv2d c ? c.weight() : ((Linear) pair[0]).weight();
            Tensor bias = pair[0] instanceof Conv2d c ? c.bias() : ((Linear) pair[0]).bias();
            boolean addBias = bias == null;
            if (addBias) {
                bias = Tensor.unscoped(weight.device(), new float[bn.numFeatures()], bn.numFeatures());
            }
            // foldInto reads the old values before it writes, so the layer's own tensors are source and target
            foldInto(weight, addBias ? null : bias, bn, weight, bias);
            if (addBias) {
                pair[0].registerParameter("bias", bias);
            }
            bn.markFolded();
            folded.add(bn);
        }
        return folded;
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
