package dev.kiln.models;

import dev.kiln.backend.Activation;
import dev.kiln.core.Device;
import dev.kiln.core.Generator;
import dev.kiln.core.Shapes;
import dev.kiln.core.Tensor;
import dev.kiln.core.TensorScope;
import dev.kiln.nn.BatchNorm2d;
import dev.kiln.nn.Conv2d;
import dev.kiln.nn.Identity;
import dev.kiln.nn.Linear;
import dev.kiln.nn.Module;
import dev.kiln.nn.Sequential;
import dev.kiln.nn.functional.FusedOps;

/**
 * A small residual network for small images (MNIST, CIFAR): a 3×3 stem convolution to 16 channels, three stages of
 * two {@link BasicBlock}s at 16, 32 and 64 channels (the first block of stages 2 and 3 halves the resolution with
 * stride 2, its shortcut a 1×1 convolution and a batch norm), global average pooling and a linear layer to the
 * classes. For 1 input channel and 10 classes: 174,970 parameters and 15 batch norms. Any input size from 8×8 works:
 * the pooling averages whatever the last stage leaves.
 *
 * <p>State-dict names are those of the equivalent PyTorch module (see {@code tools/kiln_torch_models.py}):
 * {@code conv1.weight}, {@code bn1.*}, {@code layer1.0.conv1.weight}, {@code layer2.0.shortcut.0.weight},
 * {@code layer2.0.shortcut.1.running_mean}, ..., {@code fc.weight}, {@code fc.bias}. The layers are built in that
 * module's order, so with {@link Generator#pytorch} the initial weights are PyTorch's after the same
 * {@code torch.manual_seed}.
 */
public final class ResNet extends Module {

    private final Conv2d conv1;
    private final BatchNorm2d bn1;
    private final Sequential layer1;
    private final Sequential layer2;
    private final Sequential layer3;
    private final Linear fc;
    private final int inChannels;
    private final int numClasses;

    /** 1 input channel (MNIST), 10 classes. */
    public ResNet(Device device, Generator gen) {
        this(device, gen, 1, 10);
    }

    public ResNet(Device device, Generator gen, int inChannels, int numClasses) {
        if (inChannels < 1 || numClasses < 1) {
            throw new IllegalArgumentException("ResNet: inChannels and numClasses must be positive, got " + inChannels
                    + " and " + numClasses);
        }
        this.inChannels = inChannels;
        this.numClasses = numClasses;
        conv1 = registerModule("conv1", conv3x3(device, gen, inChannels, 16, 1));
        bn1 = registerModule("bn1", new BatchNorm2d(device, 16));
        layer1 = registerModule("layer1", stage(device, gen, 16, 16, 1));
        layer2 = registerModule("layer2", stage(device, gen, 16, 32, 2));
        layer3 = registerModule("layer3", stage(device, gen, 32, 64, 2));
        fc = registerModule("fc", new Linear(device, gen, 64, numClasses));
    }

    private static Sequential stage(Device device, Generator gen, int in, int out, int stride) {
        return new Sequential(new BasicBlock(device, gen, in, out, stride), new BasicBlock(device, gen, out, out, 1));
    }

    /** Whether this is {@link Architecture#RESNET}'s configuration: 1 input channel, 10 classes. */
    boolean isDefaultShape() {
        return inChannels == 1 && numClasses == 10;
    }

    static Conv2d conv3x3(Device device, Generator gen, int in, int out, int stride) {
        return new Conv2d(device, gen, in, out, 3, stride, 1, 1, false);
    }

    /** @param images (N, inChannels, H, W), H and W at least 8 @return logits (N, numClasses) */
    @Override
    public Tensor forward(Tensor images) {
        int[] s = images.shape();
        if (s.length != 4 || s[1] != inChannels || s[2] < 8 || s[3] < 8) {
            throw new IllegalArgumentException("ResNet: expected input of shape (N, " + inChannels
                    + ", H, W) with H, W >= 8, got " + Shapes.toString(s));
        }
        // Each call runs in a frame and each consumed output is released at once, so a no-grad pass holds only the
        // live activations (what autograd saved stays alive for the backward pass).
        Tensor x = convBn(conv1, bn1, images, true);
        for (Sequential stage : new Sequential[]{layer1, layer2, layer3}) {
            for (Module block : stage.layers()) { // block by block: each block's input goes once it has returned
                Tensor in = x;
                x = TensorScope.frame(() -> block.forward(in));
                TensorScope.releaseIntermediate(in);
            }
        }
        Tensor features = x;
        Tensor pooled = TensorScope.frame(() -> globalAveragePool(features));
        TensorScope.releaseIntermediate(features);
        Tensor logits = TensorScope.frame(() -> fc.forward(pooled));
        TensorScope.releaseIntermediate(pooled);
        return logits;
    }

    /**
     * {@code bn(conv(x))}, then ReLU if asked, fused with the batch norm (training and eval alike); each intermediate
     * released as soon as the next op has read it.
     */
    static Tensor convBn(Conv2d conv, BatchNorm2d bn, Tensor x, boolean relu) {
        Tensor convolved = TensorScope.frame(() -> conv.forward(x));
        Tensor normalised = TensorScope.frame(() -> relu ? bn.forward(convolved, Activation.RELU)
                : bn.forward(convolved));
        if (normalised != convolved) { // a folded batch norm passes its input through
            TensorScope.releaseIntermediate(convolved);
        }
        return normalised;
    }

    /** (N, C, H, W) to (N, C): the mean over each channel's plane (PyTorch's {@code adaptive_avg_pool2d(x, 1)}). */
    static Tensor globalAveragePool(Tensor x) {
        return x.mean(3, false).mean(2, false);
    }

    /**
     * Two 3×3 convolutions with batch norm and ReLU, plus the input through a shortcut: {@link Identity} when the
     * shape is kept, a strided 1×1 convolution and a batch norm ({@code shortcut.0}, {@code shortcut.1}) when not.
     */
    public static final class BasicBlock extends Module {

        private final Conv2d conv1;
        private final BatchNorm2d bn1;
        private final Conv2d conv2;
        private final BatchNorm2d bn2;
        private final Module shortcut;

        public BasicBlock(Device device, Generator gen, int in, int out, int stride) {
            conv1 = registerModule("conv1", conv3x3(device, gen, in, out, stride));
            bn1 = registerModule("bn1", new BatchNorm2d(device, out));
            conv2 = registerModule("conv2", conv3x3(device, gen, out, out, 1));
            bn2 = registerModule("bn2", new BatchNorm2d(device, out));
            if (stride != 1 || in != out) {
                shortcut = registerModule("shortcut", new Sequential(
                        new Conv2d(device, gen, in, out, 1, stride, 0, 1, false), new BatchNorm2d(device, out)));
            } else {
                shortcut = registerModule("shortcut", new Identity());
            }
        }

        @Override
        public Tensor forward(Tensor x) {
            Tensor hidden = convBn(conv1, bn1, x, true);
            Tensor branch = convBn(conv2, bn2, hidden, false);
            TensorScope.releaseIntermediate(hidden);
            Tensor skip = shortcut.forward(x);
            Tensor out = FusedOps.addActivation(branch, skip, Activation.RELU);
            TensorScope.releaseIntermediate(branch);
            if (skip != x) {
                TensorScope.releaseIntermediate(skip);
            }
            return out;
        }
    }
}
