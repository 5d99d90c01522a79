package dev.kiln.nn;

import dev.kiln.backend.Activation;
import dev.kiln.core.Device;
import dev.kiln.core.Generator;
import dev.kiln.core.Tensor;
import dev.kiln.nn.functional.FusedOps;
import dev.kiln.nn.functional.LinearOp;

/** {@code y = x W^T + b}, weight (out, in), PyTorch's default initialisation. */
public final class Linear extends Module implements FusesActivation {

    private final int inFeatures;
    private final int outFeatures;

    public Linear(Device device, Generator gen, int inFeatures, int outFeatures) {
        this(device, gen, inFeatures, outFeatures, true);
    }

    public Linear(Device device, Generator gen, int inFeatures, int outFeatures, boolean bias) {
        if (inFeatures < 1 || outFeatures < 1) {
            throw new IllegalArgumentException("Linear: features must be positive, got in=" + inFeatures + " out=" + outFeatures);
        }
        this.inFeatures = inFeatures;
        this.outFeatures = outFeatures;
        registerParameter("weight", Init.kaimingUniformDefault(device, gen, inFeatures, outFeatures, inFeatures));
        if (bias) {
            registerParameter("bias", Init.fanInUniform(device, gen, inFeatures, outFeatures));
        }
    }

    @Override
    public Tensor forward(Tensor input) {
        return LinearOp.linear(input, parameter("weight"), parameter("bias"));
    }

    /** With a bias and no gradient recorded: the GEMM, then bias and activation in one pass. */
    @Override
    public Tensor forwardActivated(Tensor input, Activation activation) {
        Tensor bias = parameter("bias");
        if (bias == null || Tensor.recordsGrad(input, parameter("weight"), bias)) {
            return null;
        }
        return FusedOps.linearActivation(input, parameter("weight"), bias, activation);
    }

    public Tensor weight() {
        return parameter("weight");
    }

    public Tensor bias() {
        return parameter("bias");
    }

    public int inFeatures() {
        return inFeatures;
    }

    public int outFeatures() {
        return outFeatures;
    }

    @Override
    protected String extraRepr() {
        return "in_features=" + inFeatures + ", out_features=" + outFeatures + ", bias=" + (bias() != null ? "True" : "False");
    }
}
