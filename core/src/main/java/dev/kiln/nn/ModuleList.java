package dev.kiln.nn;

import dev.kiln.core.Tensor;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;

/**
 * Modules held in a list and registered as children named "0", "1", ..., so their parameters appear in the state
 * dict as {@code layers.0.weight} (PyTorch's {@code nn.ModuleList}). Unlike {@link Sequential} it has no
 * {@code forward}: the owning module decides how to call its members.
 */
public final class ModuleList extends Module implements Iterable<Module> {

    private final List<Module> modules = new ArrayList<>();

    public ModuleList(Module... modules) {
        for (Module m : modules) {
            add(m);
        }
    }

    public ModuleList(List<? extends Module> modules) {
        for (Module m : modules) {
            add(m);
        }
    }

    /** Appends {@code m}, named by its index. */
    public ModuleList add(Module m) {
        if (m == null) {
            throw new IllegalArgumentException("ModuleList: cannot add null at index " + modules.size());
        }
        registerModule(Integer.toString(modules.size()), m);
        modules.add(m);
        return this;
    }

    /** The module at {@code index}; negative indices count from the end, as in Python. */
    public Module get(int index) {
        int i = index < 0 ? index + modules.size() : index;
        if (i < 0 || i >= modules.size()) {
            throw new IndexOutOfBoundsException("ModuleList: index " + index + " out of range for " + modules.size() + " modules");
        }
        return modules.get(i);
    }

    public int size() {
        return modules.size();
    }

    @Override
    public Iterator<Module> iterator() {
        return List.copyOf(modules).iterator();
    }

    @Override
    public Tensor forward(Tensor input) {
        throw new IllegalStateException("ModuleList has no forward: call its modules from the module that owns it");
    }

    @Override
    public Tensor[] forwardAll(Tensor... inputs) {
        throw new IllegalStateException("ModuleList has no forward: call its modules from the module that owns it");
    }
}
