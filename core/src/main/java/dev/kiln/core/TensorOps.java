package dev.kiln.core;

import dev.kiln.backend.Activation;
import dev.kiln.backend.Backend;
import dev.kiln.backend.BinaryOp;
import dev.kiln.backend.Buffer;
import dev.kiln.backend.ScalarOp;
import dev.kiln.backend.UnaryOp;

import java.util.Arrays;

/**
 * The differentiable tensor ops behind {@link Tensor}'s methods, each with its backward next to it (micrograd's rule:
 * an op knows its own derivative): the forward is one backend call, the backward a {@link GradFn} composed from other
 * ops or a backward kernel. Layers define their own ops the same way through {@link Tensor#fromOp}.
 */
final class TensorOps {

    private TensorOps() {
    }

    static Tensor binary(Tensor a, BinaryOp kind, Tensor b) {
        a.requireSameDevice(b, kind.name().toLowerCase());
        int[] outShape = Shapes.broadcast(a.shape, b.shape);
        int rank = outShape.length;
        Backend be = a.device.backend();
        Buffer out = be.allocateUninitialized(Shapes.numel(outShape));
        be.binary(kind, a.buffer(), Shapes.padLeft(a.shape, rank), b.buffer(), Shapes.padLeft(b.shape, rank), out,
                outShape);
        GradFn fn = switch (kind) {
            case ADD -> g -> new Tensor[]{g.sumToShape(a.shape), g.sumToShape(b.shape)};
            case SUB -> g -> new Tensor[]{g.sumToShape(a.shape), g.neg().sumToShape(b.shape)};
            case MUL -> g -> new Tensor[]{
                    a.requiresGrad ? g.mul(b).sumToShape(a.shape) : null,
                    b.requiresGrad ? g.mul(a).sumToShape(b.shape) : null};
            case DIV -> g -> new Tensor[]{
                    a.requiresGrad ? g.div(b).sumToShape(a.shape) : null,
                    b.requiresGrad ? g.mul(a).div(b.square()).neg().sumToShape(b.shape) : null};
            // d max(a, b)/da = H(a - b) with H(0) = 1/2: 1/2 + sign(a - b)/2; for min the sign flips
            case MAX, MIN -> g -> {
                Tensor half = sign(a.sub(b)).mul(kind == BinaryOp.MAX ? 0.5f : -0.5f);
                return new Tensor[]{
                        a.requiresGrad ? g.mul(half.add(0.5f)).sumToShape(a.shape) : null,
                        b.requiresGrad ? g.mul(half.rsub(0.5f)).sumToShape(b.shape) : null};
            };
        };
        // what each backward reads, as PyTorch saves it: add/sub only shapes, mul/div the other operand
        Tensor[] saved = switch (kind) {
            case ADD, SUB -> NONE;
            case MUL -> new Tensor[]{b.requiresGrad ? a : null, a.requiresGrad ? b : null};
            case DIV -> new Tensor[]{b.requiresGrad ? a : null, b};
            case MAX, MIN -> new Tensor[]{a, b};
        };
        return Tensor.fromOpSaving(kind.name().toLowerCase(), a.device, out, outShape, fn, saved, a, b);
    }

    private static final Tensor[] NONE = new Tensor[0];

    static Tensor scalar(Tensor x, ScalarOp kind, float s) {
        Backend be = x.device.backend();
        Buffer out = be.allocateUninitialized(x.numel());
        be.scalar(kind, x.buffer(), s, out, x.numel());
        GradFn fn = switch (kind) {
            case ADD -> g -> new Tensor[]{g};
            case MUL -> g -> new Tensor[]{g.mul(s)};
            case RSUB -> g -> new Tensor[]{g.neg()};
            case POW -> g -> new Tensor[]{g.mul(x.pow(s - 1f)).mul(s)};
            // passes where x >= s (MAX, clamp_min) or x <= s (MIN): 1 - relu(sign(s - x)), or of (x - s)
            case MAX -> g -> new Tensor[]{g.mul(sign(x.rsub(s)).relu().rsub(1f))};
            case MIN -> g -> new Tensor[]{g.mul(sign(x.sub(s)).relu().rsub(1f))};
        };
        Tensor[] saved = kind == ScalarOp.ADD || kind == ScalarOp.MUL || kind == ScalarOp.RSUB ? NONE : new Tensor[]{x};
        return Tensor.fromOpSaving(kind.name().toLowerCase(), x.device, out, x.shape.clone(), fn, saved, x)
                .recordOpAttributes(java.util.Map.of("scalar", s));
    }

    static Tensor unary(Tensor x, UnaryOp kind) {
        Backend be = x.device.backend();
        Buffer out = be.allocateUninitialized(x.numel());
        be.unary(kind, x.buffer(), out, x.numel());
        Tensor[] self = new Tensor[1];
        GradFn fn = switch (kind) {
            case NEG -> g -> new Tensor[]{g.neg()};
            case EXP -> g -> new Tensor[]{g.mul(self[0])};
            case LOG -> g -> new Tensor[]{g.div(x)};
            case SQRT -> g -> new Tensor[]{g.div(self[0]).mul(0.5f)};
            // sign(x) as x / max(|x|, tiny): 0 at 0, like PyTorch's abs backward.
            case ABS -> g -> new Tensor[]{g.mul(x.div(self[0].scalarOp(ScalarOp.MAX, Float.MIN_NORMAL)))};
            case SQUARE -> g -> new Tensor[]{g.mul(x).mul(2f)};
            case RECIPROCAL -> g -> new Tensor[]{g.mul(self[0].square()).neg()};
        };
        Tensor[] saved = switch (kind) {
            case NEG, EXP, SQRT, RECIPROCAL -> NONE;
            case LOG, ABS, SQUARE -> new Tensor[]{x};
        };
        Tensor result = Tensor.fromOpSaving(kind.name().toLowerCase(), x.device, out, x.shape.clone(), fn, saved, x);
        // exp, sqrt, abs and reciprocal read their own output in the backward
        if (kind == UnaryOp.EXP || kind == UnaryOp.SQRT || kind == UnaryOp.ABS || kind == UnaryOp.RECIPROCAL) {
            result.saveOutputForBackward();
        }
        self[0] = result;
        return result;
    }

    /** -1, 0 or 1 (fractional only for subnormal |x|); not differentiable. */
    static Tensor sign(Tensor x) {
        return x.div(x.abs().scalarOp(ScalarOp.MAX, Float.MIN_NORMAL));
    }

    /**
     * Activations whose backward kernels compute the derivative from the output alone (relu: y > 0; sigmoid:
     * y(1 - y); tanh: 1 - y^2; relu6: 0 < y < 6); a new activation needing its input stays out of this set.
     */
    private static final java.util.Set<Activation> DERIVATIVE_FROM_OUTPUT = java.util.EnumSet.of(
            Activation.IDENTITY, Activation.SIGMOID, Activation.RELU, Activation.TANH, Activation.RELU6);

    /** Any declared activation: forward and backward are backend kernels ({@code docs/adding-an-op.md}). */
    static Tensor activation(Tensor x, Activation kind) {
        Backend be = x.device.backend();
        Buffer out = be.allocateUninitialized(x.numel());
        be.activationForward(kind, x.buffer(), out, x.numel());
        Tensor[] y = new Tensor[1];
        boolean fromOutput = DERIVATIVE_FROM_OUTPUT.contains(kind);
        int[] shape = x.shape.clone();
        GradFn fn = g -> {
            Buffer dx = be.allocateUninitialized(g.numel());
            // an activation whose derivative is a function of its output saves only the output (as PyTorch's relu,
            // sigmoid and tanh do), and its kernel reads the output for x as well
            Buffer in = fromOutput ? y[0].buffer() : x.buffer();
            be.activationBackward(kind, in, y[0].buffer(), g.buffer(), dx, g.numel());
            return new Tensor[]{Tensor.wrap(g.device, dx, shape)};
        };
        Tensor result = Tensor.fromOpSaving(kind.name().toLowerCase(), x.device, out, shape.clone(), fn,
                fromOutput ? NONE : new Tensor[]{x}, x);
        result.saveOutputForBackward();
        y[0] = result;
        return result;
    }

    /** Sums {@code x} to {@code keptShape} (same rank, ones where summed), viewed as {@code resultShape}. */
    static Tensor reduceTo(Tensor x, int[] keptShape, int[] resultShape) {
        Backend be = x.device.backend();
        Buffer out = be.allocateUninitialized(Shapes.numel(keptShape));
        be.sumTo(x.buffer(), x.shape, out, keptShape);
        int[] original = x.shape;
        return Tensor.fromOpSaving("sum", x.device, out, resultShape.clone(),
                g -> new Tensor[]{g.reshape(keptShape).broadcastTo(original)}, NONE, x)
                .recordOpAttributes(java.util.Map.of("kept_shape", keptShape.clone()));
    }

    /** Repeats {@code x} along broadcast dimensions to {@code target}; the backward of a sum. */
    static Tensor broadcastTo(Tensor x, int[] target) {
        if (Arrays.equals(x.shape, target)) {
            return x;
        }
        int[] padded = Shapes.padLeft(x.shape, target.length);
        Shapes.broadcast(padded, target);
        Backend be = x.device.backend();
        Buffer out = be.allocateUninitialized(Shapes.numel(target));
        be.broadcastTo(x.buffer(), padded, out, target);
        int[] original = x.shape;
        return Tensor.fromOpSaving("broadcast_to", x.device, out, target.clone(),
                g -> new Tensor[]{g.sumToShape(original)}, NONE, x);
    }

    /** Matrix product of two 2-d tensors {@code (m,k) x (k,n)}; the backward is two more GEMMs. */
    static Tensor matmul(Tensor a, Tensor b) {
        a.requireSameDevice(b, "matmul");
        if (a.shape.length != 2 || b.shape.length != 2 || a.shape[1] != b.shape[0]) {
            throw new IllegalArgumentException("matmul: shapes " + Shapes.toString(a.shape) + " and "
                    + Shapes.toString(b.shape) + " cannot be multiplied (need (m,k) x (k,n))");
        }
        int m = a.shape[0];
        int k = a.shape[1];
        int n = b.shape[1];
        Backend be = a.device.backend();
        Buffer out = be.allocateUninitialized((long) m * n);
        be.gemm(false, false, m, n, k, 1f, a.buffer(), b.buffer(), 0f, out);
        GradFn fn = g -> {
            Tensor ga = null;
            Tensor gb = null;
            if (a.requiresGrad) {
                Buffer da = be.allocateUninitialized((long) m * k);
                be.gemm(false, true, m, k, n, 1f, g.buffer(), b.buffer(), 0f, da);
                ga = Tensor.wrap(a.device, da, m, k);
            }
            if (b.requiresGrad) {
                Buffer db = be.allocateUninitialized((long) k * n);
                be.gemm(true, false, k, n, m, 1f, a.buffer(), g.buffer(), 0f, db);
                gb = Tensor.wrap(b.device, db, k, n);
            }
            return new Tensor[]{ga, gb};
        };
        return Tensor.fromOpSaving("matmul", a.device, out, new int[]{m, n}, fn,
                new Tensor[]{b.requiresGrad ? a : null, a.requiresGrad ? b : null}, a, b);
    }
}
