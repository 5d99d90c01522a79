package dev.kiln.core;

import dev.kiln.backend.Activation;
import dev.kiln.backend.Backend;
import dev.kiln.backend.BinaryOp;
import dev.kiln.backend.Buffer;
import dev.kiln.backend.ScalarOp;
import dev.kiln.backend.UnaryOp;


/**
 * A float32 tensor, the user's view: a shape over contiguous row-major storage owned by a {@link Device}'s backend,
 * plus the autograd node that produced it. Operations are out-of-place; their forward and backward live in
 * {@code TensorOps} (one backend call each, the backward next to it), the reverse pass in {@code Autograd}.
 *
 * <p>Tensors hold backend memory: close them, or create them inside a {@link TensorScope}. A tensor's storage has
 * several owners, counted: this handle, its views, and the autograd nodes that saved it for their backward. Closing the
 * handle never breaks a backward that still needs the data (the graph keeps its own reference), and the graph lets go
 * of what it saved as soon as that node's backward has run or nothing can reach the node any more; see
 * {@code docs/architecture.md}, "Tensor lifetimes".
 */
public final class Tensor implements AutoCloseable {

    final Device device;
    private final Storage storage;
    final int[] shape;
    private final String op;
    /** The graph: this tensor's inputs and the function from its gradient to theirs (null for a leaf). */
    final Tensor[] inputs;
    final GradFn gradFn;
    boolean requiresGrad;
    Tensor grad;
    private boolean closed;

    /** Made by an op (not a leaf created from data, a view or a wrapped side buffer): a call frame may release it. */
    final boolean opResult;
    /** The scope that will close this tensor, if any. */
    TensorScope scope;
    /** Autograd nodes holding this tensor's storage for their backward (it stays readable to them when closed). */
    private int savedBy;
    /** What this node holds for its backward; null once released (or for a leaf). */
    private Tensor[] saved;
    /** Whether this node's saved tensors were released by a backward (a second one must fail, as in PyTorch). */
    private boolean savedReleasedByBackward;
    /** Recorded nodes that have this node as an input and are still alive (a node lives while reachable). */
    private int graphUsers;
    /** Whether this node was dropped from the graph (released what it saved, let go of its inputs). */
    private boolean graphDropped;
    /** What the op's name and shapes leave out (kernel, stride, a scalar operand), for {@link OpGraph#attributes}. */
    java.util.Map<String, Object> opAttributes;

    private Tensor(Device device, Storage storage, int[] shape, boolean requiresGrad,
                   String op, Tensor[] inputs, GradFn gradFn, boolean scoped) {
        this(device, storage, shape, requiresGrad, op, inputs, gradFn, scoped, false);
    }

    private Tensor(Device device, Storage storage, int[] shape, boolean requiresGrad,
                   String op, Tensor[] inputs, GradFn gradFn, boolean scoped, boolean opResult) {
        this.device = device;
        this.storage = storage;
        this.shape = shape;
        this.requiresGrad = requiresGrad;
        this.op = op;
        this.inputs = inputs;
        this.gradFn = gradFn;
        this.opResult = opResult;
        if (inputs != null) {
            for (Tensor in : inputs) {
                if (in != null && in.gradFn != null) {
                    in.graphUsers++;
                }
            }
        }
        if (scoped) {
            TensorScope.register(this);
        }
    }

    // ------------------------------------------------------------------ creation

    /** A tensor of zeros. */
    public static Tensor zeros(Device device, int... shape) {
        Shapes.checkValid(shape);
        return wrap(device, device.backend().allocate(Shapes.numel(shape)), shape.clone());
    }

    public static Tensor ones(Device device, int... shape) {
        return full(device, 1f, shape);
    }

    public static Tensor full(Device device, float value, int... shape) {
        Tensor t = zeros(device, shape);
        if (value != 0f) {
            device.backend().fill(t.buffer(), 0, t.numel(), value);
        }
        return t;
    }

    /** A copy of {@code data} with the given shape ({@code data.length} must equal the shape's element count). */
    public static Tensor of(Device device, float[] data, int... shape) {
        Shapes.checkValid(shape);
        if (Shapes.numel(shape) != data.length) {
            throw new IllegalArgumentException("data has " + data.length + " elements but shape "
                    + Shapes.toString(shape) + " needs " + Shapes.numel(shape));
        }
        return wrap(device, device.backend().upload(data, 0, data.length), shape.clone());
    }

    /** A copy of the first {@code numel(shape)} values of {@code data} (batches from a recycled, larger array). */
    public static Tensor ofPrefix(Device device, float[] data, int... shape) {
        Shapes.checkValid(shape);
        long n = Shapes.numel(shape);
        if (n > data.length) {
            throw new IllegalArgumentException("data has " + data.length + " elements but shape "
                    + Shapes.toString(shape) + " needs " + n);
        }
        return wrap(device, device.backend().upload(data, 0, (int) n), shape.clone());
    }

    /** A 1-d tensor holding a copy of {@code data}. */
    public static Tensor of(Device device, float... data) {
        return of(device, data, data.length);
    }

    /** A 0-d tensor. */
    public static Tensor scalar(Device device, float value) {
        return of(device, new float[]{value}, new int[0]);
    }

    /** Standard-normal values drawn from {@code gen} on the host (portable across backends). */
    public static Tensor randn(Device device, Generator gen, int... shape) {
        Shapes.checkValid(shape);
        float[] data = new float[(int) Shapes.numel(shape)];
        gen.fillNormal(data, 0f, 1f);
        return of(device, data, shape);
    }

    /** Uniform values in [lo, hi) drawn from {@code gen} on the host. */
    public static Tensor uniform(Device device, Generator gen, float lo, float hi, int... shape) {
        Shapes.checkValid(shape);
        float[] data = new float[(int) Shapes.numel(shape)];
        gen.fillUniform(data, lo, hi);
        return of(device, data, shape);
    }

    /** Wraps a freshly allocated buffer (owned by the new tensor) as a leaf. */
    public static Tensor wrap(Device device, Buffer buffer, int... shape) {
        if (buffer.length() != Shapes.numel(shape)) {
            throw new IllegalArgumentException("buffer of " + buffer.length() + " floats cannot hold shape " + Shapes.toString(shape));
        }
        return new Tensor(device, new Storage(buffer, device.tensorMemory()), shape, false, null, null, null, true);
    }

    /**
     * Wraps a freshly allocated buffer as the result of an op that records no graph (fused inference paths): a leaf
     * like {@link #wrap}, which a call frame or a container may release once nothing can reach it.
     */
    public static Tensor wrapResult(Device device, Buffer buffer, int... shape) {
        if (buffer.length() != Shapes.numel(shape)) {
            throw new IllegalArgumentException("buffer of " + buffer.length() + " floats cannot hold shape " + Shapes.toString(shape));
        }
        return new Tensor(device, new Storage(buffer, device.tensorMemory()), shape, false, null, null, null, true, true);
    }

    /**
     * The result of an operation: {@code buffer} (freshly allocated, now owned by the result) with the given shape,
     * recording {@code gradFn} when grad mode is on and any input requires a gradient. This is how layers outside this
     * package define ops with their own backward.
     *
     * <p>The recorded node saves every input for its backward: their memory stays alive for {@code gradFn} until it
     * has run, even when their handles are closed. A backward that also reads the op's output calls
     * {@link #saveOutputForBackward()} on the result (not {@code detach()}, whose view would live until its scope closes).
     */
    public static Tensor fromOp(String op, Device device, Buffer buffer, int[] shape, GradFn gradFn, Tensor... inputs) {
        return fromOpSaving(op, device, buffer, shape, gradFn, inputs, inputs);
    }

    /**
     * As {@link #fromOp}, saving only {@code saved} (a subset of the inputs) for the backward: an op whose backward
     * reads nothing but the output gradient and shapes (add, sum, reshape, concatenation) keeps no activation alive.
     * Null entries of {@code saved} are skipped.
     */
    public static Tensor fromOpSaving(String op, Device device, Buffer buffer, int[] shape, GradFn gradFn,
                                      Tensor[] saved, Tensor... inputs) {
        boolean needsGrad = gradFn != null && recordsGrad(inputs);
        if (buffer.length() != Shapes.numel(shape)) {
            throw new IllegalStateException(op + ": output buffer of " + buffer.length() + " floats for shape " + Shapes.toString(shape));
        }
        Tensor result = new Tensor(device, new Storage(buffer, device.tensorMemory()), shape, needsGrad, op,
                needsGrad ? inputs.clone() : null, needsGrad ? gradFn : null, true, true);
        if (needsGrad) {
            int n = 0;
            Tensor[] keep = new Tensor[saved.length];
            for (Tensor t : saved) {
                if (t != null) {
                    t.retainForGraph();
                    keep[n++] = t;
                }
            }
            result.saved = java.util.Arrays.copyOf(keep, n);
        }
        return result;
    }

    /**
     * Keeps this op result's own memory for its backward (sigmoid, exp, max-pool and softmax read their output there),
     * until that backward has run or the node is dropped. Does nothing when no graph was recorded. Returns this tensor.
     */
    public Tensor saveOutputForBackward() {
        if (gradFn == null || saved == null) {
            return this;
        }
        retainForGraph();
        Tensor[] more = java.util.Arrays.copyOf(saved, saved.length + 1);
        more[saved.length] = this;
        saved = more;
        return this;
    }

    private void retainForGraph() {
        storage.retain();
        savedBy++;
    }

    private void releaseFromGraph() {
        savedBy--;
        storage.release();
    }

    /** Whether a backward already ran through this node and released what it saved. */
    boolean savedReleasedByBackward() {
        return savedReleasedByBackward;
    }

    /** Called by the backward pass once this node's backward has run: what it saved is not needed any more. */
    void releaseSavedAfterBackward() {
        if (saved != null && saved.length > 0) {
            savedReleasedByBackward = true;
        }
        releaseSaved();
    }

    private void releaseSaved() {
        Tensor[] s = saved;
        saved = null;
        if (s != null) {
            for (Tensor t : s) {
                t.releaseFromGraph();
            }
        }
    }

    /**
     * Drops this node from the graph once nothing can reach it (its handle closed and no live node uses it): releases
     * what it saved and lets go of its inputs, which may become unreachable in turn. Iterative: a long chain of nodes
     * must not overflow the stack.
     */
    private static void dropUnreachable(Tensor start) {
        java.util.ArrayDeque<Tensor> work = new java.util.ArrayDeque<>();
        work.push(start);
        while (!work.isEmpty()) {
            Tensor t = work.pop();
            if (t.graphDropped || t.gradFn == null || !t.closed || t.graphUsers > 0) {
                continue;
            }
            t.graphDropped = true;
            t.releaseSaved();
            for (Tensor in : t.inputs) {
                if (in != null && in.gradFn != null && --in.graphUsers == 0) {
                    work.push(in);
                }
            }
        }
    }

    /**
     * Whether an op on {@code inputs} would be recorded for backward (grad mode on and an input requires a gradient);
     * fused inference-only paths run only when it would not.
     */
    public static boolean recordsGrad(Tensor... inputs) {
        if (!GradMode.isEnabled()) {
            return false;
        }
        for (Tensor in : inputs) {
            if (in != null && in.requiresGrad) {
                return true;
            }
        }
        return false;
    }

    // ------------------------------------------------------------------ basic properties

    public Device device() {
        return device;
    }

    /** Low-level access for ops and optimizers; only the tensor's own backend may use it. */
    public Buffer buffer() {
        if (storage.isReleased() || (closed && !(savedBy > 0 && Autograd.isRunning()))) {
            throw new IllegalStateException("tensor " + Shapes.toString(shape) + " was closed");
        }
        return storage.buffer();
    }

    public int[] shape() {
        return shape.clone();
    }

    public int dim() {
        return shape.length;
    }

    public int size(int dim) {
        return shape[Shapes.dim(dim, shape.length)];
    }

    public long numel() {
        return Shapes.numel(shape);
    }

    public boolean requiresGrad() {
        return requiresGrad;
    }

    /** Marks a leaf as needing a gradient (parameters). */
    public Tensor requiresGrad(boolean value) {
        if (gradFn != null && !value) {
            throw new IllegalStateException("cannot clear requiresGrad on a non-leaf tensor; use detach()");
        }
        this.requiresGrad = value;
        return this;
    }

    public boolean isLeaf() {
        return gradFn == null;
    }

    /** The name of the op that produced this tensor, or null for a leaf. */
    public String op() {
        return op;
    }

    /** The accumulated gradient of a leaf, or null. */
    public Tensor grad() {
        return grad;
    }

    /** Sets the gradient to none, releasing its memory (like PyTorch's {@code set_to_none=True}). */
    public void zeroGrad() {
        if (grad != null) {
            grad.close();
            grad = null;
        }
    }

    /** Replaces the gradient (optimizer state loading, gradient clipping); the tensor takes ownership. */
    public void setGrad(Tensor g) {
        if (g != null && !java.util.Arrays.equals(g.shape, shape)) {
            throw new IllegalArgumentException("gradient shape " + Shapes.toString(g.shape) + " does not match tensor shape " + Shapes.toString(shape));
        }
        if (grad != null && grad != g) {
            grad.close();
        }
        grad = g;
    }

    // ------------------------------------------------------------------ data access

    public float[] toArray() {
        float[] out = new float[(int) numel()];
        device.backend().download(buffer(), 0, out, 0, out.length);
        return out;
    }

    /** The value of a one-element tensor. */
    public float item() {
        if (numel() != 1) {
            throw new IllegalStateException("item() needs a tensor with one element, got shape " + Shapes.toString(shape));
        }
        float[] out = new float[1];
        device.backend().download(buffer(), 0, out, 0, 1);
        return out[0];
    }

    /** Overwrites this tensor's contents in place (no autograd; for loading state). */
    public void copyFrom(float[] data) {
        if (data.length != numel()) {
            throw new IllegalArgumentException("copyFrom: " + data.length + " values for shape " + Shapes.toString(shape));
        }
        device.backend().write(data, 0, buffer(), 0, data.length);
    }

    /** Overwrites this tensor's contents in place from a tensor of the same shape on the same device. */
    public void copyFrom(Tensor src) {
        if (!java.util.Arrays.equals(src.shape, shape)) {
            throw new IllegalArgumentException("copyFrom: source shape " + Shapes.toString(src.shape) + " vs " + Shapes.toString(shape));
        }
        requireSameDevice(src, "copyFrom");
        device.backend().copy(src.buffer(), 0, buffer(), 0, numel());
    }

    /** Fills in place (no autograd). */
    public void fill(float value) {
        device.backend().fill(buffer(), 0, numel(), value);
    }

    /** A copy on {@code target} (through the host when the backends differ). */
    public Tensor to(Device target) {
        if (target == device) {
            return this;
        }
        return of(target, toArray(), shape);
    }

    /** A new leaf with a copy of the data and no history. */
    public Tensor copy() {
        Tensor t = zeros(device, shape);
        device.backend().copy(buffer(), 0, t.buffer(), 0, numel());
        return t;
    }

    /** A leaf sharing this tensor's storage, cut off from the graph. */
    public Tensor detach() {
        return new Tensor(device, storage.retain(), shape, false, null, null, null, true);
    }

    /**
     * Attaches what this op result's name and shapes leave out (a pool's kernel and stride, a scalar operand, the
     * dimension of a concatenation) for tools that read the recorded graph through {@link OpGraph#attributes}, such as
     * a model exporter. Values are numbers, booleans, {@code int[]} or tensors the op read outside its inputs (a batch
     * norm's running statistics). Does nothing when no graph was recorded for this tensor. Returns this tensor.
     */
    public Tensor recordOpAttributes(java.util.Map<String, ?> attributes) {
        if (gradFn != null) {
            opAttributes = java.util.Map.copyOf(attributes);
        }
        return this;
    }

    // ------------------------------------------------------------------ views

    /** Same storage, new shape (one dimension may be -1). Differentiable. */
    public Tensor reshape(int... newShape) {
        int[] target = Shapes.resolveReshape(shape, newShape);
        boolean needsGrad = requiresGrad && GradMode.isEnabled();
        int[] original = shape;
        GradFn fn = needsGrad ? g -> new Tensor[]{g.reshape(original)} : null;
        // a view made by an op: a call frame may release it like any op result (its storage lives on in its source)
        Tensor view = new Tensor(device, storage.retain(), target, needsGrad, needsGrad ? "reshape" : null,
                needsGrad ? new Tensor[]{this} : null, fn, true, true);
        if (needsGrad) {
            view.saved = new Tensor[0];
        }
        return view;
    }

    public Tensor view(int... newShape) {
        return reshape(newShape);
    }

    /** Flattens dimensions {@code startDim..end} into one, like {@code torch.flatten(x, startDim)}. */
    public Tensor flatten(int startDim) {
        int s = Shapes.dim(startDim, Math.max(shape.length, 1));
        if (shape.length == 0) {
            return reshape(1);
        }
        int[] out = new int[s + 1];
        System.arraycopy(shape, 0, out, 0, s);
        long rest = 1;
        for (int i = s; i < shape.length; i++) {
            rest *= shape[i];
        }
        out[s] = (int) rest;
        return reshape(out);
    }

    public Tensor flatten() {
        return flatten(0);
    }

    // ------------------------------------------------------------------ slices and joins

    /**
     * {@code torch.narrow}: entries {@code [start, start + length)} of dimension {@code dim} ({@code start} may be
     * negative, counting from the end), as a new tensor. Differentiable: the gradient is zero outside the slice.
     */
    public Tensor narrow(int dim, int start, int length) {
        return SliceOps.narrow(this, dim, start, length);
    }

    /**
     * Python's {@code x[:, start:end]} along {@code dim} (step 1): negative bounds count from the end and bounds past
     * either end are clamped, as in PyTorch. Differentiable.
     */
    public Tensor slice(int dim, int start, int end) {
        return SliceOps.slice(this, dim, start, end);
    }

    /** {@code torch.unsqueeze}: a dimension of size 1 inserted at {@code dim}; a differentiable reshape. */
    public Tensor unsqueeze(int dim) {
        return SliceOps.unsqueeze(this, dim);
    }

    /**
     * {@code torch.cat(tensors, dim)}: the tensors joined along {@code dim} (negative counts from the end); every other
     * dimension must agree. Differentiable in each input.
     */
    public static Tensor cat(java.util.List<Tensor> tensors, int dim) {
        return SliceOps.cat(tensors, dim);
    }

    /** {@code torch.stack(tensors, dim)}: tensors of one shape joined along a new dimension. Differentiable. */
    public static Tensor stack(java.util.List<Tensor> tensors, int dim) {
        return SliceOps.stack(tensors, dim);
    }

    // ------------------------------------------------------------------ element-wise

    public Tensor add(Tensor other) {
        return binary(BinaryOp.ADD, other);
    }

    public Tensor sub(Tensor other) {
        return binary(BinaryOp.SUB, other);
    }

    public Tensor mul(Tensor other) {
        return binary(BinaryOp.MUL, other);
    }

    public Tensor div(Tensor other) {
        return binary(BinaryOp.DIV, other);
    }

    public Tensor add(float s) {
        return scalarOp(ScalarOp.ADD, s);
    }

    public Tensor sub(float s) {
        return scalarOp(ScalarOp.ADD, -s);
    }

    public Tensor mul(float s) {
        return scalarOp(ScalarOp.MUL, s);
    }

    public Tensor div(float s) {
        return scalarOp(ScalarOp.MUL, 1f / s);
    }

    /** {@code s - this}. */
    public Tensor rsub(float s) {
        return scalarOp(ScalarOp.RSUB, s);
    }

    public Tensor pow(float exponent) {
        return scalarOp(ScalarOp.POW, exponent);
    }

    public Tensor neg() {
        return unary(UnaryOp.NEG);
    }

    public Tensor exp() {
        return unary(UnaryOp.EXP);
    }

    public Tensor log() {
        return unary(UnaryOp.LOG);
    }

    public Tensor sqrt() {
        return unary(UnaryOp.SQRT);
    }

    public Tensor abs() {
        return unary(UnaryOp.ABS);
    }

    public Tensor square() {
        return unary(UnaryOp.SQUARE);
    }

    public Tensor reciprocal() {
        return unary(UnaryOp.RECIPROCAL);
    }

    public Tensor sigmoid() {
        return activationOp(Activation.SIGMOID);
    }

    public Tensor relu() {
        return activationOp(Activation.RELU);
    }

    public Tensor tanh() {
        return activationOp(Activation.TANH);
    }

    /**
     * Element-wise maximum with broadcasting ({@code torch.maximum}); NaN propagates. The gradient goes to the larger
     * input, split in half where they are equal, as in PyTorch.
     */
    public Tensor maximum(Tensor other) {
        return binary(BinaryOp.MAX, other);
    }

    /** Element-wise minimum with broadcasting ({@code torch.minimum}); the gradient as for {@link #maximum}. */
    public Tensor minimum(Tensor other) {
        return binary(BinaryOp.MIN, other);
    }

    /** {@code max(x, min)} ({@code torch.clamp_min}); NaN propagates; the gradient passes where {@code x >= min}. */
    public Tensor clampMin(float min) {
        return scalarOp(ScalarOp.MAX, min);
    }

    /** {@code min(x, max)} ({@code torch.clamp_max}); NaN propagates; the gradient passes where {@code x <= max}. */
    public Tensor clampMax(float max) {
        return scalarOp(ScalarOp.MIN, max);
    }

    /**
     * The activation {@code a} applied element-wise, with its backward ({@code torch.nn.functional.relu} and friends);
     * {@link #sigmoid}, {@link #relu} and {@link #tanh} are shorthands.
     */
    public Tensor activation(Activation a) {
        return activationOp(a);
    }

    private Tensor binary(BinaryOp kind, Tensor other) {
        return TensorOps.binary(this, kind, other);
    }

    Tensor scalarOp(ScalarOp kind, float s) {
        return TensorOps.scalar(this, kind, s);
    }

    private Tensor unary(UnaryOp kind) {
        return TensorOps.unary(this, kind);
    }

    private Tensor activationOp(Activation kind) {
        return TensorOps.activation(this, kind);
    }

    private Tensor reduceTo(int[] keptShape, int[] resultShape) {
        return TensorOps.reduceTo(this, keptShape, resultShape);
    }

    // ------------------------------------------------------------------ reductions

    /** Sum of all elements (0-d). */
    public Tensor sum() {
        return reduceTo(ones(shape.length), new int[0]);
    }

    /** Sum over {@code dim}. */
    public Tensor sum(int dim, boolean keepDim) {
        int d = Shapes.dim(dim, shape.length);
        int[] kept = shape.clone();
        kept[d] = 1;
        return reduceTo(kept, keepDim ? kept : removeDim(shape, d));
    }

    public Tensor mean() {
        return consumed(sum(), s -> s.mul(1f / numel()));
    }

    public Tensor mean(int dim, boolean keepDim) {
        return consumed(sum(dim, keepDim), s -> s.mul(1f / shape[Shapes.dim(dim, shape.length)]));
    }

    /** Variance of all elements; {@code unbiased} divides by n-1 (Bessel's correction). */
    public Tensor var(boolean unbiased) {
        Tensor centered = consumed(mean(), this::sub);
        Tensor squares = consumed(centered, Tensor::square);
        Tensor total = consumed(squares, Tensor::sum);
        return consumed(total, t -> t.mul(1f / (numel() - (unbiased ? 1 : 0))));
    }

    public Tensor var(int dim, boolean unbiased, boolean keepDim) {
        int d = Shapes.dim(dim, shape.length);
        Tensor centered = consumed(mean(d, true), this::sub);
        Tensor squares = consumed(centered, Tensor::square);
        Tensor total = consumed(squares, t -> t.sum(d, keepDim));
        return consumed(total, t -> t.mul(1f / (shape[d] - (unbiased ? 1 : 0))));
    }

    /**
     * {@code next(intermediate)}, then the intermediate released (what autograd saved of it stays for the backward
     * pass): a composite op leaves no handle behind for the caller, with or without a scope.
     */
    private static Tensor consumed(Tensor intermediate, java.util.function.Function<Tensor, Tensor> next) {
        Tensor result = next.apply(intermediate);
        if (result != intermediate) {
            TensorScope.releaseIntermediate(intermediate);
        }
        return result;
    }

    /**
     * The rows {@code indices} of this tensor along dimension 0, in that order ({@code torch.index_select(x, 0, idx)}):
     * batch gathering on the device. Only dimension 0 is supported, and the result has no gradient: a tensor that
     * requires one is refused (use it on data, not on parameters).
     */
    public Tensor indexSelect(int dim, int... indices) {
        if (Shapes.dim(dim, shape.length) != 0) {
            throw new IllegalArgumentException("indexSelect: only dimension 0 is supported, got " + dim + " for shape "
                    + Shapes.toString(shape));
        }
        if (requiresGrad && GradMode.isEnabled()) {
            throw new UnsupportedOperationException("indexSelect has no backward; select from data, or detach()");
        }
        int[] outShape = shape.clone();
        outShape[0] = indices.length;
        int rowLength = (int) (numel() / Math.max(1, shape[0]));
        Buffer out = device.backend().allocateUninitialized(Shapes.numel(outShape));
        try {
            device.backend().gatherRows(buffer(), rowLength, indices, out);
        } catch (RuntimeException e) {
            out.close();
            throw e;
        }
        return wrap(device, out, outShape);
    }

    /** Indices of the first maximum along {@code dim} (not differentiable; indices as floats). */
    public Tensor argmax(int dim) {
        int d = Shapes.dim(dim, shape.length);
        int outer = 1;
        int inner = 1;
        for (int i = 0; i < d; i++) {
            outer *= shape[i];
        }
        for (int i = d + 1; i < shape.length; i++) {
            inner *= shape[i];
        }
        int[] outShape = removeDim(shape, d);
        Buffer out = device.backend().allocateUninitialized(Shapes.numel(outShape));
        device.backend().argmax(buffer(), outer, shape[d], inner, out);
        return wrap(device, out, outShape);
    }

    /** Reduces (sums) to {@code target}, which this shape broadcasts to; the backward of broadcasting. */
    public Tensor sumToShape(int[] target) {
        if (java.util.Arrays.equals(shape, target)) {
            return this;
        }
        int[] padded = Shapes.padLeft(target, shape.length);
        return reduceTo(padded, target);
    }

    /** Repeats along broadcast dimensions to {@code target}; the backward of a sum. */
    public Tensor broadcastTo(int[] target) {
        return TensorOps.broadcastTo(this, target);
    }

    private static int[] ones(int rank) {
        int[] s = new int[rank];
        java.util.Arrays.fill(s, 1);
        return s;
    }

    private static int[] removeDim(int[] shape, int d) {
        int[] out = new int[shape.length - 1];
        for (int i = 0, j = 0; i < shape.length; i++) {
            if (i != d) {
                out[j++] = shape[i];
            }
        }
        return out;
    }

    // ------------------------------------------------------------------ linear algebra

    /** Matrix product of two 2-d tensors {@code (m,k) x (k,n)}. */
    public Tensor matmul(Tensor other) {
        return TensorOps.matmul(this, other);
    }

    // ------------------------------------------------------------------ autograd

    /**
     * Backpropagates from a one-element tensor (the loss). A NaN or infinite loss is an error, not a silent update
     * (outside graph capture; see the comment inside).
     */
    public void backward() {
        if (numel() != 1) {
            throw new IllegalStateException("backward() without a gradient needs a one-element tensor, got shape "
                    + Shapes.toString(shape) + "; pass the gradient explicitly");
        }
        // A captured step cannot read the loss on the host; there the optimizer's guard (Optimizer.step(loss)) skips
        // a non-finite update on the device instead.
        if (!CaptureContext.active()) {
            float value = item();
            if (!Float.isFinite(value)) {
                throw new NonFiniteLossException("loss is " + value + " (op " + op + "); no gradients were computed");
            }
        }
        try (Tensor seed = full(device, 1f, shape)) {
            backward(seed);
        }
    }

    /**
     * {@link #backward()} without reading the loss on the host, so an asynchronous device does not wait here. Pair it
     * with {@link dev.kiln.optim.Optimizer#step(Tensor)}, which skips a non-finite update on the device, and check the
     * loss where you read it anyway.
     */
    public void backwardWithoutHostCheck() {
        if (numel() != 1) {
            throw new IllegalStateException("backward() without a gradient needs a one-element tensor, got shape "
                    + Shapes.toString(shape) + "; pass the gradient explicitly");
        }
        try (Tensor seed = full(device, 1f, shape)) {
            backward(seed);
        }
    }

    /**
     * Backpropagates {@code gradient} (same shape as this tensor) through the recorded graph into leaf gradients. As in
     * PyTorch without {@code retain_graph}, each node releases what it saved once its backward has run, so a second
     * backward through the same graph fails; use {@link #backward(Tensor, boolean)} to keep it.
     */
    public void backward(Tensor gradient) {
        Autograd.backward(this, gradient, false);
    }

    /**
     * {@link #backward(Tensor)} that keeps the graph's saved tensors when {@code retainGraph} is true (PyTorch's
     * {@code retain_graph=True}): they are released when the graph becomes unreachable instead.
     */
    public void backward(Tensor gradient, boolean retainGraph) {
        Autograd.backward(this, gradient, retainGraph);
    }

    // ------------------------------------------------------------------ misc

    void requireSameDevice(Tensor other, String what) {
        if (other.device != device) {
            throw new IllegalArgumentException(what + ": tensors are on different devices (" + device + " and " + other.device + ")");
        }
    }

    /** A leaf gradient: owned by its leaf, not by the step's scope. */
    static Tensor unscopedWrap(Device device, Buffer buffer, int[] shape) {
        return new Tensor(device, new Storage(buffer, device.tensorMemory()), shape, false, null, null, null, false);
    }

    /** A leaf owned by the caller, not by any open scope (parameters and buffers of modules). */
    public static Tensor unscoped(Device device, float[] data, int... shape) {
        Shapes.checkValid(shape);
        if (Shapes.numel(shape) != data.length) {
            throw new IllegalArgumentException("data has " + data.length + " elements but shape " + Shapes.toString(shape)
                    + " needs " + Shapes.numel(shape));
        }
        return new Tensor(device, new Storage(device.backend().upload(data, 0, data.length), device.tensorMemory()), shape.clone(),
                false, null, null, null, false);
    }

    public boolean isClosed() {
        return closed;
    }

    /**
     * Releases this handle's reference to its storage (and its gradient). Memory an autograd node saved stays alive
     * for that node's backward; a node whose handle is closed and that no live node uses is dropped, releasing what it
     * saved. Idempotent.
     */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        TensorScope.forget(this);
        storage.release();
        if (grad != null) {
            grad.close();
            grad = null;
        }
        if (gradFn != null && graphUsers == 0) {
            dropUnreachable(this);
        }
    }

    @Override
    public String toString() {
        if (closed || storage.isReleased()) {
            return "tensor(<closed>, shape=" + Shapes.toString(shape) + ")";
        }
        String body = TensorFormatter.format(toArray(), shape);
        StringBuilder sb = new StringBuilder("tensor(").append(body);
        if (!device.type().equals("cpu")) {
            sb.append(", device='").append(device.name()).append('\'');
        }
        if (gradFn != null) {
            sb.append(", grad_fn=<").append(op).append(">");
        } else if (requiresGrad) {
            sb.append(", requires_grad=True");
        }
        return sb.append(')').toString();
    }

    @Override
    public boolean equals(Object o) {
        return this == o;
    }

    @Override
    public int hashCode() {
        return System.identityHashCode(this);
    }
}
