package dev.kiln.nn;

import dev.kiln.core.Tensor;
import dev.kiln.core.TensorScope;

import java.util.List;

/**
 * Runs layers in order, fusing a layer with the activation after it where the layer allows ({@link FusesActivation}):
 * the only place where Kiln rewrites a model's computation, and it changes no result beyond float rounding.
 */
public final class LayerChain {

    private LayerChain() {
    }

    public static Tensor forward(List<Module> layers, Tensor input) {
        Tensor x = input;
        for (int i = 0; i < layers.size(); i++) {
            Module m = layers.get(i);
            Tensor in = x;
            if (i + 1 < layers.size() && m instanceof FusesActivation f && layers.get(i + 1) instanceof ActivationLayer a) {
                Tensor fused = TensorScope.frame(() -> f.forwardActivated(in, a.activation()));
                if (fused != null) {
                    x = fused;
                    i++;
                    releaseConsumed(in, input, x);
                    continue;
                }
            }
            x = TensorScope.frame(() -> m.forward(in));
            releaseConsumed(in, input, x);
        }
        return x;
    }

    /**
     * A layer's output that the next layer has consumed is unreachable (only this loop held it): its handle goes at
     * once, and the autograd graph keeps what the backward needs. The chain's own input is the caller's.
     */
    private static void releaseConsumed(Tensor consumed, Tensor chainInput, Tensor produced) {
        if (consumed != chainInput && consumed != produced) {
            TensorScope.releaseIntermediate(consumed);
        }
    }
}
