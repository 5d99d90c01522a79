package dev.kiln.nn;

import dev.kiln.core.Tensor;

import java.util.ArrayList;
import java.util.List;

/** Children applied in order, named "0", "1", ... as in PyTorch (or by the names given). */
public final class Sequential extends Module implements LayerSequence {

    private final List<Module> layers = new ArrayList<>();

    public Sequential(Module... modules) {
        for (Module m : modules) {
            add(m);
        }
    }

    /** Appends a child named by its index. */
    public Sequential add(Module m) {
        return add(Integer.toString(layers.size()), m);
    }

    public Sequential add(String name, Module m) {
        registerModule(name, m);
        layers.add(m);
        return this;
    }

    public Module get(int index) {
        return layers.get(index);
    }

    public int size() {
        return layers.size();
    }

    @Override
    public List<Module> layers() {
        return List.copyOf(layers);
    }

    @Override
    public Tensor forward(Tensor input) {
        return LayerChain.forward(layers, input);
    }
}
