package dev.kiln.core;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;
import java.util.function.Supplier;

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
 *
 * <p>A scope is the safety net, not the only release: a container releases each layer's output once the next layer
 * has consumed it, a module called by a container runs in a <em>call frame</em> ({@link #frame}) that releases the op
 * results it made and did not return, and the backward pass releases what it saved as it goes. See
 * {@code docs/architecture.md}, "Tensor lifetimes".
 */
public final class TensorScope implements AutoCloseable {

    private static final ThreadLocal<ArrayDeque<TensorScope>> STACK = ThreadLocal.withInitial(ArrayDeque::new);

    /** The depth at which open scopes were last reported on this thread (reports again at each doubling). */
    private static final ThreadLocal<int[]> REPORTED_DEPTH = ThreadLocal.withInitial(() -> new int[1]);

    /**
     * Whether intermediates are released as soon as nothing can reach them (the default); with
     * {@code -Dkiln.tensors.eagerRelease=false} they live until their scope closes (to tell a too-early release from
     * another bug, and to measure the difference).
     */
    private static final boolean EAGER_RELEASE = !"false".equalsIgnoreCase(System.getProperty("kiln.tensors.eagerRelease"));

    private final Set<Tensor> owned = Collections.newSetFromMap(new IdentityHashMap<>());
    private final Thread owner = Thread.currentThread();
    private final ResourceLeaks.Tracker leak;
    /** A call frame (closed by {@link #frame} itself, so never leaked): what it does not release moves to its parent. */
    private final boolean frame;
    /** A frame around a backward function: releases everything it made but the returned gradients. */
    private final boolean releaseAll;
    private boolean closed;

    private TensorScope() {
        this.leak = ResourceLeaks.track(this, "TensorScope", ResourceLeaks.sampledTrace());
        this.frame = false;
        this.releaseAll = false;
    }

    private TensorScope(boolean releaseAll) {
        this.leak = ResourceLeaks.track(this, "TensorScope", null);
        this.frame = true;
        this.releaseAll = releaseAll;
    }

    /** Whether intermediates are released eagerly (see {@code kiln.tensors.eagerRelease}). */
    public static boolean eagerRelease() {
        return EAGER_RELEASE;
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
            t.scope = top;
        }
    }

    /** A closed tensor leaves the scope that would have closed it (on that scope's thread; elsewhere it stays). */
    static void forget(Tensor t) {
        TensorScope s = t.scope;
        if (s != null && s.owner == Thread.currentThread()) {
            s.owned.remove(t);
            t.scope = null;
        }
    }

    /**
     * Runs {@code body} (a module's forward) in a call frame: when it returns, the op results it created on this
     * thread and did not return are released; everything else it created (data, wrapped side buffers, detached views,
     * the result) moves to the enclosing scope, as without the frame. Memory an autograd node saved stays alive for its
     * backward. Containers call their children through here; a forward that stores an op result beyond the call
     * keeps a {@code detach()} of it instead. If {@code body} throws, nothing is released early.
     */
    public static Tensor frame(Supplier<Tensor> body) {
        if (!EAGER_RELEASE) {
            return body.get();
        }
        TensorScope f = openFrame(false);
        Tensor result;
        try {
            result = body.get();
        } catch (RuntimeException | Error e) {
            f.closeFrame(null, true);
            throw e;
        }
        f.closeFrame(new Tensor[]{result}, false);
        return result;
    }

    /** {@link #frame(Supplier)} for a body with several results (a multi-output module). */
    public static Tensor[] frameMany(Supplier<Tensor[]> body) {
        if (!EAGER_RELEASE) {
            return body.get();
        }
        TensorScope f = openFrame(false);
        Tensor[] results;
        try {
            results = body.get();
        } catch (RuntimeException | Error e) {
            f.closeFrame(null, true);
            throw e;
        }
        f.closeFrame(results, false);
        return results;
    }

    /**
     * Closes {@code t} if it is an op result (not data, a parameter, a gradient or a detached view): for a container
     * that knows nothing else can reach a tensor it made, such as a layer's output the next layer has consumed. The
     * autograd graph keeps what its backward needs. Does nothing with {@code -Dkiln.tensors.eagerRelease=false}.
     */
    public static void releaseIntermediate(Tensor t) {
        if (EAGER_RELEASE && t != null && t.opResult) {
            t.close();
        }
    }

    /** A frame whose {@link #closeFrame} releases every tensor made inside but the results (backward functions). */
    static TensorScope openFrame(boolean releaseAll) {
        TensorScope f = new TensorScope(releaseAll);
        STACK.get().push(f);
        return f;
    }

    /**
     * Ends this frame (the innermost scope of this thread): releases what it should, moves the rest (and
     * {@code results}) to the enclosing scope, or leaves them to the caller when there is none.
     */
    void closeFrame(Tensor[] results, boolean keepAll) {
        if (closed) {
            return; // an enclosing scope closed inside the body already closed this frame with it
        }
        ArrayDeque<TensorScope> stack = STACK.get();
        if (stack.peek() != this) {
            // a scope opened inside the body and left open: closing this frame closes it, as an enclosing scope would
            while (!stack.isEmpty() && stack.peek() != this) {
                stack.pop().closeOwned();
            }
        }
        stack.pop();
        closed = true;
        TensorScope parent = stack.peek();
        Set<Tensor> kept = Collections.newSetFromMap(new IdentityHashMap<>());
        if (results != null) {
            for (Tensor r : results) {
                if (r != null) {
                    kept.add(r);
                }
            }
        }
        List<Tensor> tensors = new ArrayList<>(owned);
        owned.clear();
        for (Tensor t : tensors) {
            t.scope = null;
            if (!keepAll && !kept.contains(t) && (releaseAll || t.opResult)) {
                t.close();
            } else if (parent != null) {
                parent.owned.add(t);
                t.scope = parent;
            }
        }
    }

    /**
     * Takes {@code t} out of this scope so it survives {@link #close()}; it moves to the enclosing scope if there is
     * one, otherwise the caller owns it and must close it.
     */
    public Tensor keep(Tensor t) {
        if (owned.remove(t)) {
            t.scope = null;
            ArrayDeque<TensorScope> stack = STACK.get();
            boolean found = false;
            for (TensorScope s : stack) {
                if (found) {
                    s.owned.add(t);
                    t.scope = s;
                    break;
                }
                found = s == this;
            }
        }
        return t;
    }

    /** The tensors this scope holds now (a copy). */
    List<Tensor> ownedView() {
        return new ArrayList<>(owned);
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
            t.scope = null;
            t.close();
        }
    }
}
