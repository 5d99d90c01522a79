package dev.kiln.core;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Deque;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;

/**
 * Read-only view of the autograd graph behind a tensor: which op made it ({@link Tensor#op()}) and from which
 * tensors. What lets a tool see the dataflow of a model whose {@code forward} is ordinary Java code, e.g. inference
 * finding each batch norm whose only input is a convolution. The graph exists only where gradients were recorded.
 */
public final class OpGraph {

    private OpGraph() {
    }

    /** The tensors {@code t} was computed from, in the op's order (null where an optional input was absent); empty for a leaf. */
    public static List<Tensor> inputs(Tensor t) {
        return t.inputs == null ? List.of() : Collections.unmodifiableList(java.util.Arrays.asList(t.inputs));
    }

    /**
     * What the op that made {@code t} recorded beyond its name, inputs and output shape ({@link Tensor#recordOpAttributes}):
     * e.g. {@code kernel}, {@code stride}, {@code padding} of a pool; empty for a leaf or an op that records none.
     */
    public static java.util.Map<String, Object> attributes(Tensor t) {
        return t.opAttributes == null ? java.util.Map.of() : t.opAttributes;
    }

    /** Every tensor the graph of {@code output} reaches, each once, inputs before the tensors computed from them. */
    public static List<Tensor> topologicalOrder(Tensor output) {
        List<Tensor> order = new ArrayList<>();
        Set<Tensor> seen = Collections.newSetFromMap(new IdentityHashMap<>());
        Deque<Object[]> stack = new ArrayDeque<>();
        stack.push(new Object[]{output, 0});
        seen.add(output);
        while (!stack.isEmpty()) {
            Object[] frame = stack.peek();
            Tensor t = (Tensor) frame[0];
            int next = (Integer) frame[1];
            Tensor[] in = t.inputs == null ? new Tensor[0] : t.inputs;
            if (next < in.length) {
                frame[1] = next + 1;
                Tensor child = in[next];
                if (child != null && seen.add(child)) {
                    stack.push(new Object[]{child, 0});
                }
            } else {
                stack.pop();
                order.add(t);
            }
        }
        return order;
    }
}
