package dev.kiln.core;

import dev.kiln.backend.Buffer;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The reverse-mode engine behind {@link Tensor#backward}: a topological sort of the graph recorded by
 * {@link Tensor#fromOp} from the root, then one reverse pass in which each node's {@link GradFn} maps its output
 * gradient to its inputs' gradients, summed per input; leaves accumulate into their {@link Tensor#grad()}.
 */
final class Autograd {

    private Autograd() {
    }

    /** Set while this thread runs a backward: saved tensors with closed handles stay readable to backward functions. */
    private static final ThreadLocal<boolean[]> RUNNING = ThreadLocal.withInitial(() -> new boolean[1]);

    static boolean isRunning() {
        return RUNNING.get()[0];
    }

    /**
     * Backpropagates {@code gradient} (the shape of {@code root}) into the leaf gradients. Each node's backward runs
     * in a frame that releases what it made but the gradients it returns; a gradient is released once it has been
     * passed on (summed, accumulated into a leaf); unless {@code retainGraph}, each node releases what it saved right
     * after its backward, so an activation dies with its last use.
     */
    static void backward(Tensor root, Tensor gradient, boolean retainGraph) {
        if (!root.requiresGrad) {
            throw new IllegalStateException("tensor does not require grad and has no grad_fn");
        }
        if (!Arrays.equals(gradient.shape, root.shape)) {
            throw new IllegalArgumentException("gradient shape " + Shapes.toString(gradient.shape)
                    + " does not match tensor shape " + Shapes.toString(root.shape));
        }
        List<Tensor> order = topologicalOrder(root);
        for (Tensor t : order) {
            if (t.savedReleasedByBackward()) {
                throw new IllegalStateException("trying to backward through the graph a second time (op " + t.op()
                        + "): its saved tensors were released by the first backward; pass retainGraph = true to the"
                        + " first backward(gradient, retainGraph) to keep them");
            }
        }
        boolean eager = TensorScope.eagerRelease();
        Map<Tensor, Tensor> grads = new IdentityHashMap<>();
        // gradients this pass made: released once passed on (the caller's seed is the caller's)
        Set<Tensor> made = Collections.newSetFromMap(new IdentityHashMap<>());
        grads.put(root, gradient);
        boolean[] running = RUNNING.get();
        boolean wasRunning = running[0];
        running[0] = true;
        try (GradMode ignored = GradMode.noGrad()) {
            for (int i = order.size() - 1; i >= 0; i--) {
                Tensor t = order.get(i);
                Tensor g = grads.remove(t);
                if (g == null) {
                    if (!retainGraph && t.gradFn != null) {
                        t.releaseSavedAfterBackward();
                    }
                    continue;
                }
                if (t.gradFn == null) {
                    accumulate(t, g);
                    releaseIfDone(g, made, grads, eager);
                    continue;
                }
                Tensor[] inputGrads = runBackward(t, g, made, eager);
                if (!retainGraph) {
                    t.releaseSavedAfterBackward();
                }
                List<Tensor> passedOn = new ArrayList<>(inputGrads.length + 1);
                passedOn.add(g);
                for (int j = 0; j < t.inputs.length; j++) {
                    Tensor in = t.inputs[j];
                    Tensor gi = j < inputGrads.length ? inputGrads[j] : null;
                    if (gi != null) {
                        passedOn.add(gi);
                    }
                    if (in == null || gi == null || !in.requiresGrad) {
                        continue;
                    }
                    Tensor previous = grads.get(in);
                    if (previous == null) {
                        grads.put(in, gi);
                    } else {
                        Tensor sum = previous.add(gi);
                        made.add(sum);
                        grads.put(in, sum);
                        passedOn.add(previous);
                    }
                }
                for (Tensor done : passedOn) {
                    releaseIfDone(done, made, grads, eager);
                }
            }
        } finally {
            running[0] = wasRunning;
        }
    }

    /** Runs one node's backward in a frame that releases its temporaries; the returned gradients become the pass's. */
    private static Tensor[] runBackward(Tensor t, Tensor g, Set<Tensor> made, boolean eager) {
        if (!eager) {
            Tensor[] out = t.gradFn.backward(g);
            made.addAll(Arrays.asList(out));
            made.remove(null);
            return out;
        }
        TensorScope frame = TensorScope.openFrame(true);
        Tensor[] out;
        try {
            out = t.gradFn.backward(g);
        } catch (RuntimeException | Error e) {
            frame.closeFrame(null, true);
            throw e;
        }
        Set<Tensor> createdHere = Collections.newSetFromMap(new IdentityHashMap<>());
        createdHere.addAll(frame.ownedView());
        frame.closeFrame(out, false);
        for (Tensor gi : out) {
            if (gi != null && createdHere.contains(gi)) {
                made.add(gi);
            }
        }
        return out;
    }

    /** Releases a gradient this pass made once no input still waits for it. */
    private static void releaseIfDone(Tensor g, Set<Tensor> made, Map<Tensor, Tensor> grads, boolean eager) {
        if (!eager || !made.contains(g)) {
            return;
        }
        for (Tensor pending : grads.values()) {
            if (pending == g) {
                return;
            }
        }
        made.remove(g);
        g.close();
    }

    private static List<Tensor> topologicalOrder(Tensor root) {
        List<Tensor> order = new ArrayList<>();
        Map<Tensor, Boolean> visited = new IdentityHashMap<>();
        // Iterative DFS: deep graphs (long unrolled loops) must not overflow the Java stack.
        ArrayList<Object[]> stack = new ArrayList<>();
        stack.add(new Object[]{root, 0});
        visited.put(root, Boolean.TRUE);
        while (!stack.isEmpty()) {
            Object[] frame = stack.get(stack.size() - 1);
            Tensor t = (Tensor) frame[0];
            int next = (Integer) frame[1];
            Tensor[] ins = t.inputs == null ? new Tensor[0] : t.inputs;
            if (next < ins.length) {
                frame[1] = next + 1;
                Tensor in = ins[next];
                if (in != null && in.requiresGrad && visited.put(in, Boolean.TRUE) == null) {
                    stack.add(new Object[]{in, 0});
                }
            } else {
                stack.remove(stack.size() - 1);
                order.add(t);
            }
        }
        return order;
    }

    private static void accumulate(Tensor leaf, Tensor g) {
        if (!leaf.requiresGrad) {
            return;
        }
        if (leaf.grad == null) {
            Buffer b = leaf.device.backend().allocateUninitialized(leaf.numel());
            leaf.device.backend().copy(g.buffer(), 0, b, 0, leaf.numel());
            leaf.grad = Tensor.unscopedWrap(leaf.device, b, leaf.shape.clone());
        } else {
            leaf.device.backend().axpy(1f, g.buffer(), leaf.grad.buffer(), leaf.numel());
        }
    }
}
