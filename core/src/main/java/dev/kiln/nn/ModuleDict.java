package dev.kiln.nn;

import dev.kiln.core.Tensor;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * Modules held by name, in insertion order, registered as children under those names ({@code heads.digit.weight}),
 * as PyTorch's {@code nn.ModuleDict}. Names follow the rules of any child name: non-empty, no '.'.
 */
public final class ModuleDict extends Module {

    private final Map<String, Module> modules = new LinkedHashMap<>();

    public ModuleDict() {
    }

    public ModuleDict(Map<String, ? extends Module> modules) {
        modules.forEach(this::put);
    }

    /** Adds {@code m} under {@code name}; a name already used is an error (PyTorch would replace it). */
    public ModuleDict put(String name, Module m) {
        if (m == null) {
            throw new IllegalArgumentException("ModuleDict: module for '" + name + "' is null");
        }
        registerModule(name, m);
        modules.put(name, m);
        return this;
    }

    /** The module named {@code name}. */
    public Module get(String name) {
        Module m = modules.get(name);
        if (m == null) {
            throw new IllegalArgumentException("ModuleDict: no module named '" + name + "'; it holds " + modules.keySet());
        }
        return m;
    }

    public boolean containsKey(String name) {
        return modules.containsKey(name);
    }

    public Set<String> keySet() {
        return Collections.unmodifiableSet(modules.keySet());
    }

    public int size() {
        return modules.size();
    }

    @Override
    public Tensor forward(Tensor input) {
        throw new IllegalStateException("ModuleDict has no forward: call its modules from the module that owns it");
    }

    @Override
    public Tensor[] forwardAll(Tensor... inputs) {
        throw new IllegalStateException("ModuleDict has no forward: call its modules from the module that owns it");
    }
}
