package dev.kiln.nn.functional;

import dev.kiln.backend.Activation;
import dev.kiln.backend.Backend;
import dev.kiln.backend.BatchNormGeometry;
import dev.kiln.backend.Buffer;
import dev.kiln.core.Tensor;
import dev.kiln.core.TensorScope;

import java.util.Arrays;
import java.util.Locale;

/**
 * Fusions of a layer with the activation after it: one pass over memory instead of two (and on the GPU one launch
 * instead of two or three). {@link #batchNormActivation} and {@link #linearActivation} are inference-only: their
 * results carry no gradient function, and callers use them only when {@link Tensor#recordsGrad} is false.
 * {@link #addActivation} records its backward (training-mode batch norm with an activation is
 * {@link BatchNormOp#batchNormActivationTraining}).
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

    /**
     * {@code activation(a + b)} for two tensors of one shape (a residual sum and its activation) in one pass, bitwise
     * {@code a.add(b).activation(activation)}. With gradients recorded its backward is the activation's, taken from
     * the output, and goes to both inputs; only the output is saved for it. Tensors of different shapes (a
     * broadcasting sum) take the two ops in turn.
     */
    public static Tensor addActivation(Tensor a, Tensor b, Activation activation) {
        if (activation == null) {
            throw new IllegalArgumentException("addActivation: activation is null");
        }
        if (a.device() != b.device()) {
            throw new IllegalArgumentException("addActivation: tensors are on different devices (" + a.device()
                    + " and " + b.device() + ")");
        }
        int[] shape = a.shape();
        if (!Arrays.equals(shape, b.shape())) {
            Tensor sum = a.add(b);
            Tensor out = sum.activation(activation);
            TensorScope.releaseIntermediate(sum);
            return out;
        }
        Backend be = a.device().backend();
        long n = a.numel();
        Buffer y = be.allocateUninitialized(n);
        be.addActivation(activation, a.buffer(), b.buffer(), y, n);
        Tensor[] output = new Tensor[1];
        Tensor result = Tensor.fromOpSaving("add_" + activation.name().toLowerCase(Locale.ROOT), a.device(), y,
                shape.clone(), dy -> {
                    Buffer dx = be.allocateUninitialized(dy.numel());
                    Buffer out = output[0].buffer();
                    be.activationBackward(activation, out, out, dy.buffer(), dx, dy.numel());
                    Tensor d = Tensor.wrap(dy.device(), dx, shape);
                    return new Tensor[]{d, d};
                }, new Tensor[0], a, b);
        result.saveOutputForBackward();
        output[0] = result;
        return result;
    }
}
