package dev.kiln.suites;

import dev.kiln.core.Device;
import dev.kiln.core.Generator;
import dev.kiln.core.Tensor;
import dev.kiln.nn.AvgPool2d;
import dev.kiln.nn.BatchNorm2d;
import dev.kiln.nn.Conv2d;
import dev.kiln.nn.Flatten;
import dev.kiln.nn.Linear;
import dev.kiln.nn.Module;
import dev.kiln.nn.ReLU;
import dev.kiln.nn.Sequential;

/**
 * The small ResNet of the lifetime tests, written only against the public API as a user would: a 3x3 stem, three
 * stages of two basic blocks at 16/32/64 channels (1x1-conv shortcuts where the shape changes), global average
 * pooling by {@code AvgPool2d(7)} on 28x28 input, a linear classifier; 174,970 parameters, 15 batch norms.
 */
public final class SmallResNet {

    private SmallResNet() {
    }

    public static Sequential build(Device device, long seed) {
        Generator gen = new Generator(seed);
        Sequential net = new Sequential();
        net.add(new Conv2d(device, gen, 1, 16, 3, 1, 1, 1, false));
        net.add(new BatchNorm2d(device, 16));
        net.add(new ReLU());
        int in = 16;
        for (int width : new int[]{16, 32, 64}) {
            int stride = width == 16 ? 1 : 2;
            net.add(new BasicBlock(device, gen, in, width, stride));
            net.add(new BasicBlock(device, gen, width, width, 1));
            in = width;
        }
        net.add(new AvgPool2d(7));
        net.add(new Flatten());
        net.add(new Linear(device, gen, 64, 10));
        return net;
    }

    /** {@code relu(branch(x) + shortcut(x))}; the branch is conv-bn-relu-conv-bn. */
    static final class BasicBlock extends Module {
        private final Sequential branch;
        private final Sequential shortcut;

        BasicBlock(Device device, Generator gen, int in, int out, int stride) {
            branch = registerModule("branch", new Sequential(
                    new Conv2d(device, gen, in, out, 3, stride, 1, 1, false), new BatchNorm2d(device, out), new ReLU(),
                    new Conv2d(device, gen, out, out, 3, 1, 1, 1, false), new BatchNorm2d(device, out)));
            shortcut = in == out && stride == 1 ? null : registerModule("shortcut", new Sequential(
                    new Conv2d(device, gen, in, out, 1, stride, 0, 1, false), new BatchNorm2d(device, out)));
        }

        @Override
        public Tensor forward(Tensor x) {
            Tensor y = branch.forward(x);
            Tensor s = shortcut == null ? x : shortcut.forward(x);
            return y.add(s).relu();
        }
    }
}
