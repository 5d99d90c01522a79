package dev.kiln.onnx;

import dev.kiln.core.Device;
import dev.kiln.core.Generator;
import dev.kiln.core.Tensor;
import dev.kiln.models.LeNet5;
import dev.kiln.models.ResNet;
import dev.kiln.nn.AdaptiveAvgPool2d;
import dev.kiln.nn.AdaptiveMaxPool2d;
import dev.kiln.nn.AvgPool2d;
import dev.kiln.nn.BatchNorm1d;
import dev.kiln.nn.BatchNorm2d;
import dev.kiln.nn.Conv2d;
import dev.kiln.nn.Dropout;
import dev.kiln.nn.Flatten;
import dev.kiln.nn.Identity;
import dev.kiln.nn.Linear;
import dev.kiln.nn.MaxPool2d;
import dev.kiln.nn.Module;
import dev.kiln.nn.ReLU;
import dev.kiln.nn.Sequential;
import dev.kiln.nn.Sigmoid;
import dev.kiln.nn.Tanh;
import dev.kiln.nn.Upsample;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * Deterministic models the export tests run in ONNX Runtime and the checker generator writes: LeNet-5, the ResNet, and
 * one small model per layer type (each with its batch norm statistics and affine parameters set to random values, so
 * that folding and normalisation are not identities).
 */
final class ExportCases {

    /** A model and its input shape without the batch dimension. */
    record Case(String name, int[] inputShape, Function<Device, Module> factory) {
        Module build(Device device) {
            Module m = factory.apply(device);
            randomizeStatistics(m, new java.util.Random(name.hashCode()));
            m.eval();
            return m;
        }
    }

    private ExportCases() {
    }

    static List<Case> all() {
        List<Case> cases = new ArrayList<>();
        cases.add(new Case("lenet5", new int[]{1, 28, 28}, d -> new LeNet5(d, new Generator(1))));
        cases.add(new Case("resnet", new int[]{1, 28, 28}, d -> new ResNet(d, new Generator(2))));
        cases.addAll(layers());
        return cases;
    }

    /** One model per layer type (and per variant: bias, groups, rectangular kernels, affine or not). */
    static List<Case> layers() {
        List<Case> c = new ArrayList<>();
        c.add(new Case("conv_bias", new int[]{3, 9, 9}, d -> new Conv2d(d, new Generator(3), 3, 4, 3, 1, 1)));
        c.add(new Case("conv_rect_stride_dilation_nobias", new int[]{3, 11, 12}, d -> Conv2d.builder(3, 6)
                .kernel(3, 5).stride(2, 1).padding(1, 2).dilation(2, 1).bias(false).build(d, new Generator(4))));
        c.add(new Case("conv_groups", new int[]{4, 8, 8}, d -> Conv2d.builder(4, 8).kernel(3).padding(1).groups(2)
                .build(d, new Generator(5))));
        c.add(new Case("conv_depthwise", new int[]{4, 8, 8}, d -> Conv2d.builder(4, 4).kernel(3).groups(4)
                .build(d, new Generator(6))));
        c.add(new Case("conv_bn2d_relu", new int[]{3, 8, 8}, d -> new Sequential(new Conv2d(d, new Generator(7), 3, 5, 3),
                new BatchNorm2d(d, 5), new ReLU())));
        c.add(new Case("bn2d_not_affine", new int[]{3, 6, 6}, d -> new Sequential(
                new BatchNorm2d(d, 3, 1e-5f, 0.1f, false, true))));
        c.add(new Case("bn2d_batch_statistics", new int[]{3, 6, 6}, d -> new Sequential(
                new BatchNorm2d(d, 3, 1e-3f, 0.1f, true, false))));
        c.add(new Case("linear_bn1d_sigmoid", new int[]{2, 4, 4}, d -> new Sequential(new Flatten(),
                new Linear(d, new Generator(8), 32, 12), new BatchNorm1d(d, 12), new Sigmoid())));
        c.add(new Case("bn1d_not_affine", new int[]{7}, d -> new Sequential(
                new BatchNorm1d(d, 7, 1e-5f, 0.1f, false, true))));
        c.add(new Case("linear_nobias_tanh", new int[]{10}, d -> new Sequential(
                new Linear(d, new Generator(9), 10, 6, false), new Tanh())));
        c.add(new Case("avgpool", new int[]{2, 8, 8}, d -> new Sequential(new AvgPool2d(2), new AvgPool2d(3, 2, 1))));
        c.add(new Case("maxpool", new int[]{2, 9, 9}, d -> new Sequential(new MaxPool2d(2), new MaxPool2d(3, 2, 1))));
        c.add(new Case("adaptive_avgpool_global", new int[]{3, 7, 5}, d -> new Sequential(new AdaptiveAvgPool2d(1))));
        c.add(new Case("adaptive_avgpool_divisible", new int[]{3, 8, 6}, d -> new Sequential(new AdaptiveAvgPool2d(4, 3))));
        c.add(new Case("adaptive_maxpool", new int[]{3, 8, 8}, d -> new Sequential(new AdaptiveMaxPool2d(2),
                new AdaptiveMaxPool2d(1))));
        c.add(new Case("flatten_dropout_identity", new int[]{2, 3, 3}, d -> new Sequential(new Identity(),
                new Dropout(0.5f, new Generator(10)), new Flatten(), new Linear(d, new Generator(11), 18, 4))));
        c.add(new Case("upsample_nearest", new int[]{2, 3, 4}, d -> new Sequential(new Upsample(2), new Upsample(1, 3))));
        c.add(new Case("add_cat_mean", new int[]{3, 6, 6}, d -> new Branches(d)));
        return c;
    }

    static Case named(String name) {
        return all().stream().filter(c -> c.name().equals(name)).findFirst().orElseThrow();
    }

    /** Running statistics and affine parameters of every batch norm set to random values. */
    static void randomizeStatistics(Module model, java.util.Random gen) {
        for (Map.Entry<String, Tensor> e : model.namedBuffers().entrySet()) {
            Tensor t = e.getValue();
            if (e.getKey().endsWith("running_mean")) {
                t.copyFrom(uniform(gen, t.numel(), -0.5f, 0.5f));
            } else if (e.getKey().endsWith("running_var")) {
                t.copyFrom(uniform(gen, t.numel(), 0.5f, 2f));
            }
        }
        Map<String, Module> modules = model.namedModules();
        for (Map.Entry<String, Module> e : modules.entrySet()) {
            if (e.getValue() instanceof dev.kiln.nn.BatchNorm bn && bn.affine()) {
                Tensor w = bn.weight();
                w.copyFrom(uniform(gen, w.numel(), 0.5f, 1.5f));
                Map<String, Tensor> p = bn.namedParameters();
                Tensor b = p.get("bias");
                b.copyFrom(uniform(gen, b.numel(), -0.5f, 0.5f));
            }
        }
    }

    private static float[] uniform(java.util.Random gen, long n, float lo, float hi) {
        float[] a = new float[(int) n];
        for (int i = 0; i < a.length; i++) {
            a[i] = lo + (hi - lo) * gen.nextFloat();
        }
        return a;
    }

    /**
     * A hand-written forward: two convolution branches, one through ReLU, concatenated, plus a shortcut, then the mean
     * over the width, the height (ReduceMean) and a linear layer.
     */
    static final class Branches extends Module {
        private final Conv2d left;
        private final Conv2d right;
        private final Conv2d shortcut;
        private final Linear head;

        Branches(Device d) {
            left = registerModule("left", new Conv2d(d, new Generator(12), 3, 2, 3, 1, 1));
            right = registerModule("right", new Conv2d(d, new Generator(13), 3, 3, 3, 1, 1));
            shortcut = registerModule("shortcut", new Conv2d(d, new Generator(14), 3, 5, 1, 1, 0));
            head = registerModule("head", new Linear(d, new Generator(15), 5, 4));
        }

        @Override
        public Tensor forward(Tensor x) {
            Tensor joined = Tensor.cat(List.of(left.forward(x), right.forward(x).relu()), 1);
            Tensor sum = joined.add(shortcut.forward(x));
            return head.forward(sum.mean(3, false).mean(2, false));
        }
    }
}
