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

    /** The depth at which open scopes were last reported on this thread (reports again at each doubling). */
    private static final ThreadLocal<int[]> REPORTED_DEPTH = ThreadLocal.withInitial(() -> new int[1]);

    private final Set<Tensor> owned = Collections.newSetFromMap(new IdentityHashMap<>());
    private final Thread owner = Thread.currentThread();
    private final ResourceLeaks.Tracker leak;
    private boolean closed;

    private TensorScope() {
        this.leak = ResourceLeaks.track(this, "TensorScope", ResourceLeaks.sampledTrace());
    }

    /**
     * Opens a scope nested in the current one (if any) on this thread. A thread that holds more than
     * {@link ResourceLeaks#maxOpenScopes()} open scopes is reported as a leak (a scope opened per request and never
     * closed keeps every tensor of every request), naming where the oldest sampled one was opened.
     */
    public static TensorScope open() {
        TensorScope scope = new TensorScope();
        ArrayDeque<TensorScope> stack = STACK.get();
        stack.push(scope);
        int depth = stack.size();
        int[] reported = REPORTED_DEPTH.get();
        if (depth > ResourceLeaks.maxOpenScopes() && depth >= 2 * reported[0] && ResourceLeaks.level() != ResourceLeaks.Level.DISABLED) {
            reported[0] = depth;
            StackTraceElement[] oldest = null;
            for (java.util.Iterator<TensorScope> it = stack.descendingIterator(); it.hasNext() && oldest == null; ) {
                oldest = it.next().leak.createdAt();
            }
            ResourceLeaks.report(new ResourceLeaks.LeakReport("TensorScope", depth + " TensorScopes are open on thread '"
                    + Thread.currentThread().getName() + "'; a scope that is never closed keeps every tensor created in"
                    + " it, so memory grows with each one" + (oldest != null ? "; the oldest sampled one was opened here" : ""),
                    oldest));
        }
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
        if (stack.size() <= ResourceLeaks.maxOpenScopes()) {
            REPORTED_DEPTH.get()[0] = 0;
        }
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
        leak.close();
        List<Tensor> tensors = new ArrayList<>(owned);
        owned.clear();
        for (Tensor t : tensors) {
            t.close();
        }
    }
}
