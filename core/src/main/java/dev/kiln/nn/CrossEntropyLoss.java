package dev.kiln.nn;

import dev.kiln.core.Shapes;
import dev.kiln.core.Tensor;
import dev.kiln.nn.functional.LossOps;

/**
 * Cross-entropy from logits (N, C) and class indices (N), mean reduction, as PyTorch's {@code nn.CrossEntropyLoss}.
 * Targets are class indices: an {@code int[]} or {@code long[]} (checked here against C), or a tensor of (N) whose
 * values are whole class numbers (Kiln's tensors hold floats; the backend checks the values).
 *
 * <p>With {@code labelSmoothing} ε the target is the mixture of the one-hot class (weight 1 − ε) and the uniform
 * distribution over the C classes (weight ε), as PyTorch defines it:
 * {@code loss = (1 − ε) · nll(y) + ε · mean_c(−log softmax(x)_c)}, averaged over the batch.
 */
public final class CrossEntropyLoss implements Loss {

    private final float labelSmoothing;

    public CrossEntropyLoss() {
        this(0f);
    }

    /** @param labelSmoothing in [0, 1]; 0 is the plain loss */
    public CrossEntropyLoss(float labelSmoothing) {
        if (!(labelSmoothing >= 0f && labelSmoothing <= 1f)) {
            throw new IllegalArgumentException("CrossEntropyLoss: label_smoothing must be in [0, 1], got " + labelSmoothing);
        }
        this.labelSmoothing = labelSmoothing;
    }

    public float labelSmoothing() {
        return labelSmoothing;
    }

    @Override
    public Tensor forward(Tensor logits, Tensor targets) {
        Tensor nll = LossOps.crossEntropy(logits, targets);
        if (labelSmoothing == 0f) {
            return nll;
        }
        return nll.mul(1f - labelSmoothing).add(LossOps.meanNegativeLogSoftmax(logits).mul(labelSmoothing));
    }

    /** Targets as class indices in {@code [0, C)}. */
    public Tensor forward(Tensor logits, int[] targets) {
        if (targets == null) {
            throw new IllegalArgumentException("CrossEntropyLoss: targets are null");
        }
        float[] values = new float[targets.length];
        int classes = classes(logits, targets.length);
        for (int i = 0; i < targets.length; i++) {
            values[i] = checkClass(targets[i], i, classes);
        }
        return forward(logits, Tensor.of(logits.device(), values, targets.length));
    }

    /** Targets as class indices in {@code [0, C)} (PyTorch's int64 targets). */
    public Tensor forward(Tensor logits, long[] targets) {
        if (targets == null) {
            throw new IllegalArgumentException("CrossEntropyLoss: targets are null");
        }
        float[] values = new float[targets.length];
        int classes = classes(logits, targets.length);
        for (int i = 0; i < targets.length; i++) {
            values[i] = checkClass(targets[i], i, classes);
        }
        return forward(logits, Tensor.of(logits.device(), values, targets.length));
    }

    private static int classes(Tensor logits, int n) {
        int[] s = logits.shape();
        if (s.length != 2 || s[0] != n) {
            throw new IllegalArgumentException("cross_entropy: " + n + " targets do not match logits of shape "
                    + Shapes.toString(s) + " (expected logits (" + n + ", C))");
        }
        return s[1];
    }

    private static float checkClass(long target, int index, int classes) {
        if (target < 0 || target >= classes) {
            throw new IllegalArgumentException("cross_entropy: target " + target + " at index " + index
                    + " is out of bounds for " + classes + " classes");
        }
        return target;
    }

    @Override
    public String toString() {
        return "CrossEntropyLoss(" + (labelSmoothing != 0f ? "label_smoothing=" + labelSmoothing : "") + ")";
    }
}
