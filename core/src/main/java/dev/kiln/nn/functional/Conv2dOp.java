package dev.kiln.nn.functional;

import dev.kiln.backend.Backend;
import dev.kiln.backend.Buffer;
import dev.kiln.backend.ConvGeometry;
import dev.kiln.core.Shapes;
import dev.kiln.core.Tensor;

/** {@code conv2d} (cross-correlation, grouped or not) and its backward. */
public final class Conv2dOp {

    private Conv2dOp() {
    }

    /**
     * An ungrouped convolution ({@code groups = 1}).
     *
     * @param x      input (N, C, H, W)
     * @param weight (O, C, kH, kW)
     * @param bias   (O) or null
     */
    public static Tensor conv2d(Tensor x, Tensor weight, Tensor bias, int strideH, int strideW,
                                int padH, int padW, int dilationH, int dilationW) {
        return conv2d(x, weight, bias, strideH, strideW, padH, padW, dilationH, dilationW, 1);
    }

    /**
     * {@code F.conv2d(x, weight, bias, stride, padding, dilation, groups)}.
     *
     * @param x      input (N, C, H, W)
     * @param weight (O, C / groups, kH, kW); O divisible by groups
     * @param bias   (O) or null
     */
    public static Tensor conv2d(Tensor x, Tensor weight, Tensor bias, int strideH, int strideW,
                                int padH, int padW, int dilationH, int dilationW, int groups) {
        int[] xs = x.shape();
        int[] ws = weight.shape();
        if (xs.length != 4) {
            throw new IllegalArgumentException("conv2d: expected a 4-d input (N, C, H, W), got shape " + Shapes.toString(xs));
        }
        if (groups < 1) {
            throw new IllegalArgumentException("conv2d: groups must be >= 1, got " + groups);
        }
        if (ws.length != 4 || (long) ws[1] * groups != xs[1]) {
            throw new IllegalArgumentException("conv2d: input of shape " + Shapes.toString(xs) + " has " + xs[1]
                    + " channels but weight of shape " + Shapes.toString(ws) + " in " + groups + " group(s) expects "
                    + (ws.length == 4 ? (long) ws[1] * groups : -1));
        }
        if (ws[0] % groups != 0) {
            throw new IllegalArgumentException("conv2d: weight of shape " + Shapes.toString(ws) + " has " + ws[0]
                    + " output channels, not divisible by groups=" + groups);
        }
        if (bias != null && (bias.dim() != 1 || bias.size(0) != ws[0])) {
            throw new IllegalArgumentException("conv2d: bias of shape " + Shapes.toString(bias.shape())
                    + " does not match weight of shape " + Shapes.toString(ws));
        }
        ConvGeometry g = new ConvGeometry(xs[0], xs[1], xs[2], xs[3], ws[0], ws[2], ws[3],
                strideH, strideW, padH, padW, dilationH, dilationW, groups);
        Backend be = x.device().backend();
        Buffer y = be.allocateUninitialized(g.outputLength());
        be.conv2dForward(g, x.buffer(), weight.buffer(), bias == null ? null : bias.buffer(), y);
        int[] outShape = {g.n(), g.outChannels(), g.outH(), g.outW()};
        return Tensor.fromOp("conv2d", x.device(), y, outShape, dy -> {
            Tensor dx = null;
            Tensor dw = null;
            Tensor db = null;
            if (x.requiresGrad()) {
                Buffer b = be.allocateUninitialized(g.inputLength());
                be.conv2dBackwardData(g, weight.buffer(), dy.buffer(), b);
                dx = Tensor.wrap(x.device(), b, xs);
            }
            if (weight.requiresGrad()) {
                Buffer b = be.allocateUninitialized(g.weightLength());
                be.conv2dBackwardWeight(g, x.buffer(), dy.buffer(), b);
                dw = Tensor.wrap(x.device(), b, ws);
            }
            if (bias != null && bias.requiresGrad()) {
                Buffer b = be.allocateUninitialized(g.outChannels());
                be.conv2dBackwardBias(g, dy.buffer(), b);
                db = Tensor.wrap(x.device(), b, g.outChannels());
            }
            return new Tensor[]{dx, dw, db};
        }, x, weight, bias).recordOpAttributes(java.util.Map.of("stride", new int[]{strideH, strideW},
                "padding", new int[]{padH, padW}, "dilation", new int[]{dilationH, dilationW}, "groups", groups));
    }
}
