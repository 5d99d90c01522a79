package dev.kiln.cpu;

import dev.kiln.backend.AdamHyper;
import dev.kiln.backend.SgdHyper;

/** In-place SGD and Adam/AdamW steps with PyTorch's rules (float32 element math, scalars prepared in double). */
final class OptimizerKernels {

    static final int GRAIN = 16384;

    private OptimizerKernels() {
    }

    static void sgd(SgdHyper h, float[] p, float[] grad, float[] buf, int n, Parallel par) {
        float lr = h.lr(), wd = h.weightDecay(), mom = h.momentum(), damp = 1f - h.dampening();
        boolean nesterov = h.nesterov(), first = h.firstStep();
        par.parallelFor(n, GRAIN, (lo, hi) -> {
            if (mom == 0f) {
                for (int i = lo; i < hi; i++) {
                    float g = wd != 0f ? grad[i] + wd * p[i] : grad[i];
                    p[i] -= lr * g;
                }
                return;
            }
            for (int i = lo; i < hi; i++) {
                float g = wd != 0f ? grad[i] + wd * p[i] : grad[i];
                float b = first ? g : mom * buf[i] + damp * g;
                buf[i] = b;
                g = nesterov ? g + mom * b : b;
                p[i] -= lr * g;
            }
        });
    }

    static void adam(AdamHyper h, float[] p, float[] grad, float[] m, float[] v, int n, Parallel par) {
        if (h.step() < 1) {
            throw new IllegalArgumentException("adam: step must be >= 1 (1 on the first update), got " + h.step());
        }
        float b1 = h.beta1(), b2 = h.beta2(), eps = h.eps(), wd = h.weightDecay();
        float ob1 = 1f - b1, ob2 = 1f - b2;
        double bc1 = 1.0 - Math.pow(h.beta1(), h.step());
        double bc2 = 1.0 - Math.pow(h.beta2(), h.step());
        float stepSize = (float) (h.lr() / bc1);
        float bc2Sqrt = (float) Math.sqrt(bc2);
        boolean decoupled = h.decoupledWeightDecay();
        float decay = (float) (1.0 - (double) h.lr() * wd);
        par.parallelFor(n, GRAIN, (lo, hi) -> {
            for (int i = lo; i < hi; i++) {
                float g = grad[i];
                float pi = p[i];
                if (wd != 0f) {
                    if (decoupled) {
                        pi *= decay;
                    } else {
                        g += wd * pi;
                    }
                }
                float mi = b1 * m[i] + ob1 * g;
                float vi = b2 * v[i] + ob2 * g * g;
                m[i] = mi;
                v[i] = vi;
                float denom = (float) Math.sqrt(vi) / bc2Sqrt + eps;
                p[i] = pi - stepSize * (mi / denom);
            }
        });
    }
}
