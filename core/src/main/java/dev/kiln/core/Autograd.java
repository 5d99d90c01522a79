package dev.kiln.core;

import dev.kiln.backend.Buffer;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * The reverse-mode engine behind {@link Tensor#backward}: a topological sort of the graph recorded by
 * {@link Tensor#fromOp} from the root, then one reverse pass in which each node's {@link GradFn} maps its output
 * gradient to its inputs' gradients, summed per input; leaves accumulate into their {@link Tensor#grad()}.
 */
final class Autograd {

    private Autograd() {
    }

    /** Backpropagates {@code gradient} (the shape of {@code root}) into the leaf gradients. */
    static void backward(Tensor root, Tensor gradient) {
        if (!root.requiresGrad) {
            throw new IllegalStateException("tensor does not require grad and has no grad_fn");
        }
        if (!Arrays.equals(gradient.shape, root.shape)) {
            throw new IllegalArgumentException("gradient shape " + Shapes.toString(gradient.shape)
                    + " does not match tensor shape " + Shapes.toString(root.shape));
        }
        List<Tensor> order = topologicalOrder(root);
        Map<Tensor, Tensor> grads = new IdentityHashMap<>();
        grads.put(root, gradient);
        try (GradMode ignored = GradMode.noGrad()) {
            for (int i = order.size() - 1; i >= 0; i--) {
                Tensor t = order.get(i);
                Tensor g = grads.remove(t);
                if (g == null) {
                    continue;
                }
                if (t.gradFn == null) {
                    accumulate(t, g);
                    continue;
                }
                Tensor[] inputGrads = t.gradFn.backward(g);
                for (int j = 0; j < t.inputs.length; j++) {
                    Tensor in = t.inputs[j];
                    Tensor gi = j < inputGrads.length ? inputGrads[j] : null;
                    if (in == null || gi == null || !in.requiresGrad) {
                        continue;
                    }
                    Tensor previous = grads.get(in);
                    grads.put(in, previous == null ? gi : previous.add(gi));
                }
            }
        }
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
