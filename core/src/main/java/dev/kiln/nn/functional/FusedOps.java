package dev.kiln.nn.functional;

import dev.kiln.backend.Activation;
import dev.kiln.backend.Backend;
import dev.kiln.backend.BatchNormGeometry;
import dev.kiln.backend.Buffer;
import dev.kiln.core.Tensor;

/**
 * Inference-only fusions of a layer with the activation after it: one pass over memory instead of two (and on the GPU
 * one launch instead of two or three). The results carry no gradient function; callers use them only when
 * {@link Tensor#recordsGrad} is false.
 */
public final class FusedOps {

    private FusedOps() {
    }

    /** {@code activation(batchNorm(x))} with running statistics (eval mode). */
    public static Tensor batchNormActivation(Tensor x, Tensor runningMean, Tensor runningVar, Tensor weight, Tensor bias,
                                             float eps, Activation activation) {
        BatchNormGeometry g = BatchNormOp.geometry(x.shape());
        Backend be = x.device().backend();
        Buffer y = be.allocateUninitialized(g.length());
        be.batchNormForwardInference(g, activation, x.buffer(), weight == null ? null : weight.buffer(),
                bias == null ? null : bias.buffer(), runningMean.buffer(), runningVar.buffer(), eps, y);
        return Tensor.wrapResult(x.device(), y, x.shape());
    }

    /** {@code activation(x W^T + b)}: the GEMM, then bias and activation in one pass over its output, in place. */
    public static Tensor linearActivation(Tensor x, Tensor weight, Tensor bias, Activation activation) {
        LinearOp.checkShapes(x, weight, bias);
        int n = x.size(0);
        int in = weight.size(1);
        int out = weight.size(0);
        Backend be = x.device().backend();
        Buffer y = be.allocateUninitialized((long) n * out);
        be.gemm(false, true, n, out, in, 1f, x.buffer(), weight.buffer(), 0f, y);
        be.biasActivation(activation, n, out, 1, y, bias.buffer(), y);
        return Tensor.wrapResult(x.device(), y, n, out);
    }
}
