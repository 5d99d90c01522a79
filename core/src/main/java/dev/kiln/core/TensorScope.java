package dev.kiln.core;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;

/**
 * Owns every tensor created on this thread while it is open and closes them when it closes, releasing their
 * device memory deterministically. A training step runs inside one scope; what must outlive it (the loss value,
 * a prediction) is {@link #keep kept}. Parameters, buffers and their gradients are never owned by a scope.
 *
 * <pre>{@code
 * try (TensorScope step = TensorScope.open()) {
 *     Tensor loss = criterion.forward(model.forward(x), y);
 *     loss.backward();
 *     optimizer.step();
 * }
 * }</pre>
 */
public final class TensorScope implements AutoCloseable {

    private static final ThreadLocal<ArrayDeque<TensorScope>> STACK = ThreadLocal.withInitial(ArrayDeque::new);

    private final Set<Tensor> owned = Collections.newSetFromMap(new IdentityHashMap<>());
    private final Thread owner = Thread.currentThread();
    private boolean closed;

    private TensorScope() {
    }

    /** Opens a scope nested in the current one (if any) on this thread. */
    public static TensorScope open() {
        TensorScope scope = new TensorScope();
        STACK.get().push(scope);
        return scope;
    }

    static void register(Tensor t) {
        TensorScope top = STACK.get().peek();
        if (top != null) {
            top.owned.add(t);
        }
    }

    /**
     * Takes {@code t} out of this scope so it survives {@link #close()}; it moves to the enclosing scope if there is
     * one, otherwise the caller owns it and must close it.
     */
    public Tensor keep(Tensor t) {
        if (owned.remove(t)) {
            ArrayDeque<TensorScope> stack = STACK.get();
            boolean found = false;
            for (TensorScope s : stack) {
                if (found) {
                    s.owned.add(t);
                    break;
                }
                found = s == this;
            }
        }
        return t;
    }

    /** Number of tensors this scope will close. */
    public int size() {
        return owned.size();
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        if (Thread.currentThread() != owner) {
            throw new IllegalStateException("a TensorScope must be closed on the thread that opened it (" + owner.getName() + ")");
        }
        closed = true;
        ArrayDeque<TensorScope> stack = STACK.get();
        // Closing an outer scope first also closes the inner ones still open, like nested try blocks would.
        while (!stack.isEmpty()) {
            TensorScope top = stack.pop();
            top.closeOwned();
            if (top == this) {
                break;
            }
        }
    }

    private void closeOwned() {
        closed = true;
        List<Tensor> tensors = new ArrayList<>(owned);
        owned.clear();
        for (Tensor t : tensors) {
            t.close();
        }
    }
}
