package dev.kiln.nn.functional;

import dev.kiln.backend.Backend;
import dev.kiln.backend.Buffer;
import dev.kiln.core.Shapes;
import dev.kiln.core.Tensor;

/** Losses with mean reduction. */
public final class LossOps {

    private LossOps() {
    }

    /**
     * Cross-entropy from logits {@code (N, C)} and class indices {@code (N)} (stored as floats), mean over the batch;
     * softmax and log fused in one numerically stable op.
     */
    public static Tensor crossEntropy(Tensor logits, Tensor targets) {
        int[] ls = logits.shape();
        int[] ts = targets.shape();
        if (ls.length != 2) {
            throw new IllegalArgumentException("cross_entropy: expected logits of shape (N, C), got " + Shapes.toString(ls));
        }
        if (ts.length != 1 || ts[0] != ls[0]) {
            throw new IllegalArgumentException("cross_entropy: targets of shape " + Shapes.toString(ts)
                    + " do not match logits of shape " + Shapes.toString(ls) + " (expected (" + ls[0] + ",))");
        }
        int rows = ls[0];
        int classes = ls[1];
        Backend be = logits.device().backend();
        Buffer probs = be.allocateUninitialized((long) rows * classes);
        Buffer loss = be.allocateUninitialized(1);
        try {
            be.softmaxCrossEntropyForward(rows, classes, logits.buffer(), targets.buffer(), probs, loss);
        } catch (RuntimeException e) {
            probs.close();
            loss.close();
            throw e;
        }
        Tensor savedProbs = Tensor.wrap(logits.device(), probs, ls);
        return Tensor.fromOp("cross_entropy", logits.device(), loss, new int[0], dLoss -> {
            Buffer d = be.allocateUninitialized((long) rows * classes);
            be.softmaxCrossEntropyBackward(rows, classes, savedProbs.buffer(), targets.buffer(), dLoss.buffer(), d);
            return new Tensor[]{Tensor.wrap(logits.device(), d, ls), null};
        }, logits, targets);
    }

    /**
     * {@code mean over rows and classes of -log softmax(logits)}: the uniform-target term of label smoothing. With
     * {@code lse} the row's log-sum-exp, {@code -log p_c = lse - x_c}; the fused cross-entropy against class 0 gives
     * {@code mean(lse - x_0)} stably, so the term is that plus {@code mean(x_0) - mean(x)}, one weighted sum.
     */
    public static Tensor meanNegativeLogSoftmax(Tensor logits) {
        int[] ls = logits.shape();
        if (ls.length != 2) {
            throw new IllegalArgumentException("cross_entropy: expected logits of shape (N, C), got " + Shapes.toString(ls));
        }
        int rows = ls[0];
        int classes = ls[1];
        Tensor classZero = Tensor.zeros(logits.device(), rows);
        float[] w = new float[classes];
        double all = 1.0 / ((double) rows * classes);
        for (int c = 0; c < classes; c++) {
            w[c] = (float) ((c == 0 ? 1.0 / rows : 0.0) - all);
        }
        Tensor weights = Tensor.of(logits.device(), w, 1, classes);
        return crossEntropy(logits, classZero).add(logits.mul(weights).sum());
    }

    /** Mean squared error {@code mean((input - target)^2)}; shapes must match exactly. */
    public static Tensor mse(Tensor input, Tensor target) {
        if (!java.util.Arrays.equals(input.shape(), target.shape())) {
            throw new IllegalArgumentException("mse_loss: input of shape " + Shapes.toString(input.shape())
                    + " and target of shape " + Shapes.toString(target.shape()) + " differ");
        }
        return input.sub(target).square().mean();
    }

    /** Row-wise softmax of a (rows, cols) tensor. */
    public static Tensor softmax(Tensor x) {
        int[] s = x.shape();
        if (s.length != 2) {
            throw new IllegalArgumentException("softmax: expected a 2-d tensor, got shape " + Shapes.toString(s));
        }
        Backend be = x.device().backend();
        Buffer y = be.allocateUninitialized(x.numel());
        be.softmaxForward(s[0], s[1], x.buffer(), y);
        Tensor[] out = new Tensor[1];
        Tensor result = Tensor.fromOp("softmax", x.device(), y, s, dy -> {
            Buffer dx = be.allocateUninitialized(x.numel());
            be.softmaxBackward(s[0], s[1], out[0].buffer(), dy.buffer(), dx);
            return new Tensor[]{Tensor.wrap(x.device(), dx, s)};
        }, x);
        out[0] = result.requiresGrad() ? result.detach() : result;
        return result;
    }
}
