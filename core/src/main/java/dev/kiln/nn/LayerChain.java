package dev.kiln.nn;

import dev.kiln.core.Tensor;

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
            if (i + 1 < layers.size() && m instanceof FusesActivation f && layers.get(i + 1) instanceof ActivationLayer a) {
                Tensor fused = f.forwardActivated(x, a.activation());
                if (fused != null) {
                    x = fused;
                    i++;
                    continue;
                }
            }
            x = m.forward(x);
        }
        return x;
    }
}
