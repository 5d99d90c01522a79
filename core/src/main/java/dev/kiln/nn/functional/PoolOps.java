package dev.kiln.nn.functional;

import dev.kiln.backend.AdaptivePoolGeometry;
import dev.kiln.backend.Backend;
import dev.kiln.backend.Buffer;
import dev.kiln.backend.PoolGeometry;
import dev.kiln.backend.UpsampleGeometry;
import dev.kiln.core.Shapes;
import dev.kiln.core.Tensor;

/** 2-d average and max pooling, adaptive average and max pooling and nearest upsampling, with their backward. */
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
        }, x).recordOpAttributes(java.util.Map.of("kernel", new int[]{kH, kW}, "stride", new int[]{sH, sW},
                "padding", new int[]{pH, pW}));
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
        }, x).recordOpAttributes(java.util.Map.of("kernel", new int[]{kH, kW}, "stride", new int[]{sH, sW},
                "padding", new int[]{pH, pW}));
        out[0] = result.saveOutputForBackward();
        return result;
    }

    /**
     * {@code F.adaptive_avg_pool2d(x, (outH, outW))}: each output the mean of PyTorch's window
     * ({@link AdaptivePoolGeometry}); {@code (1, 1)} is global average pooling.
     */
    public static Tensor adaptiveAvgPool2d(Tensor x, int outH, int outW) {
        AdaptivePoolGeometry g = adaptive("adaptive_avg_pool2d", x, outH, outW);
        Backend be = x.device().backend();
        Buffer y = be.allocateUninitialized(g.outputLength());
        be.adaptiveAvgPool2dForward(g, x.buffer(), y);
        int[] xs = x.shape();
        return Tensor.fromOp("adaptive_avg_pool2d", x.device(), y, outShape(g), dy -> {
            Buffer dx = be.allocateUninitialized(g.inputLength());
            be.adaptiveAvgPool2dBackward(g, dy.buffer(), dx);
            return new Tensor[]{Tensor.wrap(x.device(), dx, xs)};
        }, x);
    }

    /** {@code F.adaptive_max_pool2d(x, (outH, outW))}: the maximum of each window; the gradient goes to its argmax. */
    public static Tensor adaptiveMaxPool2d(Tensor x, int outH, int outW) {
        Tensor[] r = adaptiveMaxPool2dWithIndices(x, outH, outW);
        if (!r[0].requiresGrad()) {
            // no backward will read the indices: release them now rather than with the scope
            r[1].close();
        }
        return r[0];
    }

    /**
     * {@code F.adaptive_max_pool2d(x, (outH, outW), return_indices=True)}: the pooled tensor and, as a second tensor of
     * the same shape, the position {@code h * W + w} of each maximum in its input plane (as floats; no gradient).
     */
    public static Tensor[] adaptiveMaxPool2dWithIndices(Tensor x, int outH, int outW) {
        AdaptivePoolGeometry g = adaptive("adaptive_max_pool2d", x, outH, outW);
        Backend be = x.device().backend();
        Buffer y = be.allocateUninitialized(g.outputLength());
        Buffer indices;
        try {
            indices = be.allocateUninitialized(g.outputLength());
        } catch (RuntimeException e) {
            y.close();
            throw e;
        }
        try {
            be.adaptiveMaxPool2dForward(g, x.buffer(), y, indices);
        } catch (RuntimeException e) {
            y.close();
            indices.close();
            throw e;
        }
        int[] xs = x.shape();
        Tensor idx = Tensor.wrap(x.device(), indices, outShape(g));
        Tensor result = Tensor.fromOp("adaptive_max_pool2d", x.device(), y, outShape(g), dy -> {
            Buffer dx = be.allocateUninitialized(g.inputLength());
            be.adaptiveMaxPool2dBackward(g, idx.buffer(), dy.buffer(), dx);
            return new Tensor[]{Tensor.wrap(x.device(), dx, xs)};
        }, x);
        return new Tensor[]{result, idx};
    }

    private static AdaptivePoolGeometry adaptive(String op, Tensor x, int outH, int outW) {
        int[] s = x.shape();
        if (s.length != 4) {
            throw new IllegalArgumentException(op + ": expected a 4-d input (N, C, H, W), got shape " + Shapes.toString(s));
        }
        if (outH < 1 || outW < 1) {
            throw new IllegalArgumentException(op + ": output size must be positive, got (" + outH + ", " + outW + ")");
        }
        return new AdaptivePoolGeometry(s[0], s[1], s[2], s[3], outH, outW);
    }

    private static int[] outShape(AdaptivePoolGeometry g) {
        return new int[]{g.n(), g.channels(), g.outH(), g.outW()};
    }

    /**
     * {@code F.interpolate(x, scale_factor=(scaleH, scaleW), mode='nearest')} for integer factors: each input pixel
     * repeated as a {@code scaleH x scaleW} block; the gradient sums each block.
     */
    public static Tensor upsampleNearest2d(Tensor x, int scaleH, int scaleW) {
        int[] s = x.shape();
        if (s.length != 4) {
            throw new IllegalArgumentException("upsample_nearest2d: expected a 4-d input (N, C, H, W), got shape "
                    + Shapes.toString(s));
        }
        UpsampleGeometry g = new UpsampleGeometry(s[0], s[1], s[2], s[3], scaleH, scaleW);
        Backend be = x.device().backend();
        Buffer y = be.allocateUninitialized(g.outputLength());
        be.upsampleNearest2dForward(g, x.buffer(), y);
        return Tensor.fromOp("upsample_nearest2d", x.device(), y, new int[]{g.n(), g.channels(), g.outH(), g.outW()}, dy -> {
            Buffer dx = be.allocateUninitialized(g.inputLength());
            be.upsampleNearest2dBackward(g, dy.buffer(), dx);
            return new Tensor[]{Tensor.wrap(x.device(), dx, s)};
        }, x);
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
