package dev.kiln.nn.functional;

import dev.kiln.backend.Backend;
import dev.kiln.backend.Buffer;
import dev.kiln.backend.PoolGeometry;
import dev.kiln.core.Shapes;
import dev.kiln.core.Tensor;

/** 2-d average and max pooling with their backward. */
public final class PoolOps {

    private PoolOps() {
    }

    public static Tensor avgPool2d(Tensor x, int kH, int kW, int sH, int sW, int pH, int pW) {
        PoolGeometry g = geometry("avg_pool2d", x, kH, kW, sH, sW, pH, pW);
        Backend be = x.device().backend();
        Buffer y = be.allocateUninitialized(g.outputLength());
        be.avgPool2dForward(g, x.buffer(), y);
        int[] xs = x.shape();
        return Tensor.fromOp("avg_pool2d", x.device(), y, outShape(g), dy -> {
            Buffer dx = be.allocateUninitialized(g.inputLength());
            be.avgPool2dBackward(g, dy.buffer(), dx);
            return new Tensor[]{Tensor.wrap(x.device(), dx, xs)};
        }, x);
    }

    public static Tensor maxPool2d(Tensor x, int kH, int kW, int sH, int sW, int pH, int pW) {
        PoolGeometry g = geometry("max_pool2d", x, kH, kW, sH, sW, pH, pW);
        Backend be = x.device().backend();
        Buffer y = be.allocateUninitialized(g.outputLength());
        be.maxPool2dForward(g, x.buffer(), y);
        int[] xs = x.shape();
        Tensor[] out = new Tensor[1];
        Tensor result = Tensor.fromOp("max_pool2d", x.device(), y, outShape(g), dy -> {
            Buffer dx = be.allocateUninitialized(g.inputLength());
            be.maxPool2dBackward(g, x.buffer(), out[0].buffer(), dy.buffer(), dx);
            return new Tensor[]{Tensor.wrap(x.device(), dx, xs)};
        }, x);
        out[0] = result.saveOutputForBackward();
        return result;
    }

    private static PoolGeometry geometry(String op, Tensor x, int kH, int kW, int sH, int sW, int pH, int pW) {
        int[] s = x.shape();
        if (s.length != 4) {
            throw new IllegalArgumentException(op + ": expected a 4-d input (N, C, H, W), got shape " + Shapes.toString(s));
        }
        return new PoolGeometry(s[0], s[1], s[2], s[3], kH, kW, sH, sW, pH, pW);
    }

    private static int[] outShape(PoolGeometry g) {
        return new int[]{g.n(), g.channels(), g.outH(), g.outW()};
    }
}
