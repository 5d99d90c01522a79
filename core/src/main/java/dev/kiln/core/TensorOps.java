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
        return Tensor.fromOp(kind.name().toLowerCase(), a.device, out, outShape, fn, a, b);
    }

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
        return Tensor.fromOp(kind.name().toLowerCase(), x.device, out, x.shape.clone(), fn, x);
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
        Tensor result = Tensor.fromOp(kind.name().toLowerCase(), x.device, out, x.shape.clone(), fn, x);
        // The backward of exp/sqrt/abs/reciprocal reuses the output; detach it to avoid a reference cycle in the graph.
        self[0] = result.requiresGrad ? result.detach() : result;
        return result;
    }

    /** -1, 0 or 1 (fractional only for subnormal |x|); not differentiable. */
    static Tensor sign(Tensor x) {
        return x.div(x.abs().scalarOp(ScalarOp.MAX, Float.MIN_NORMAL));
    }

    /** Any declared activation: forward and backward are backend kernels ({@code docs/adding-an-op.md}). */
    static Tensor activation(Tensor x, Activation kind) {
        Backend be = x.device.backend();
        Buffer out = be.allocateUninitialized(x.numel());
        be.activationForward(kind, x.buffer(), out, x.numel());
        Tensor[] y = new Tensor[1];
        GradFn fn = g -> {
            Buffer dx = be.allocateUninitialized(x.numel());
            be.activationBackward(kind, x.buffer(), y[0].buffer(), g.buffer(), dx, x.numel());
            return new Tensor[]{Tensor.wrap(x.device, dx, x.shape.clone())};
        };
        Tensor result = Tensor.fromOp(kind.name().toLowerCase(), x.device, out, x.shape.clone(), fn, x);
        y[0] = result.requiresGrad ? result.detach() : result;
        return result;
    }

    /** Sums {@code x} to {@code keptShape} (same rank, ones where summed), viewed as {@code resultShape}. */
    static Tensor reduceTo(Tensor x, int[] keptShape, int[] resultShape) {
        Backend be = x.device.backend();
        Buffer out = be.allocateUninitialized(Shapes.numel(keptShape));
        be.sumTo(x.buffer(), x.shape, out, keptShape);
        int[] original = x.shape;
        return Tensor.fromOp("sum", x.device, out, resultShape.clone(),
                g -> new Tensor[]{g.reshape(keptShape).broadcastTo(original)}, x);
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
        return Tensor.fromOp("broadcast_to", x.device, out, target.clone(), g -> new Tensor[]{g.sumToShape(original)}, x);
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
        return Tensor.fromOp("matmul", a.device, out, new int[]{m, n}, fn, a, b);
    }
}
