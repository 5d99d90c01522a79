package dev.kiln.nn.functional;

import dev.kiln.backend.Backend;
import dev.kiln.backend.Buffer;
import dev.kiln.core.Shapes;
import dev.kiln.core.Tensor;

/** {@code y = x W^T + b} for x of shape (N, in), one GEMM forward and two backward, no transposes materialised. */
public final class LinearOp {

    private LinearOp() {
    }

    /** x (N, in), weight (out, in), bias (out) or null; otherwise an exception naming the shapes. */
    static void checkShapes(Tensor x, Tensor weight, Tensor bias) {
        int[] xs = x.shape();
        int[] ws = weight.shape();
        if (ws.length != 2) {
            throw new IllegalArgumentException("linear: weight must be 2-d (out, in), got " + Shapes.toString(ws));
        }
        if (xs.length != 2 || xs[1] != ws[1]) {
            throw new IllegalArgumentException("linear: input of shape " + Shapes.toString(xs)
                    + " does not match weight of shape " + Shapes.toString(ws) + " (expected (N, " + ws[1] + "))");
        }
        if (bias != null && (bias.dim() != 1 || bias.size(0) != ws[0])) {
            throw new IllegalArgumentException("linear: bias of shape " + Shapes.toString(bias.shape())
                    + " does not match weight of shape " + Shapes.toString(ws));
        }
    }

    public static Tensor linear(Tensor x, Tensor weight, Tensor bias) {
        checkShapes(x, weight, bias);
        int[] xs = x.shape();
        int[] ws = weight.shape();
        int n = xs[0];
        int in = ws[1];
        int out = ws[0];
        Backend be = x.device().backend();
        Buffer y = be.allocateUninitialized((long) n * out);
        float beta = 0f;
        if (bias != null) {
            be.broadcastTo(bias.buffer(), new int[]{1, out}, y, new int[]{n, out});
            beta = 1f;
        }
        be.gemm(false, true, n, out, in, 1f, x.buffer(), weight.buffer(), beta, y);
        return Tensor.fromOp("linear", x.device(), y, new int[]{n, out}, dy -> {
            Tensor dx = null;
            Tensor dw = null;
            Tensor db = null;
            if (x.requiresGrad()) {
                Buffer b = be.allocateUninitialized((long) n * in);
                be.gemm(false, false, n, in, out, 1f, dy.buffer(), weight.buffer(), 0f, b);
                dx = Tensor.wrap(x.device(), b, xs);
            }
            if (weight.requiresGrad()) {
                Buffer b = be.allocateUninitialized((long) out * in);
                be.gemm(true, false, out, in, n, 1f, dy.buffer(), x.buffer(), 0f, b);
                dw = Tensor.wrap(x.device(), b, ws);
            }
            if (bias != null && bias.requiresGrad()) {
                Buffer b = be.allocateUninitialized(out);
                be.sumTo(dy.buffer(), new int[]{n, out}, b, new int[]{1, out});
                db = Tensor.wrap(x.device(), b, out);
            }
            return new Tensor[]{dx, dw, db};
        }, x, weight, bias);
    }
}
