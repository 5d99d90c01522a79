package dev.kiln.models;

import dev.kiln.core.Device;
import dev.kiln.core.Generator;
import dev.kiln.core.Tensor;
import dev.kiln.distributed.Collective;
import dev.kiln.nn.AvgPool2d;
import dev.kiln.nn.BatchNorm1d;
import dev.kiln.nn.BatchNorm2d;
import dev.kiln.nn.Conv2d;
import dev.kiln.nn.Flatten;
import dev.kiln.nn.LayerChain;
import dev.kiln.nn.LayerSequence;
import dev.kiln.nn.Linear;
import dev.kiln.nn.Module;
import dev.kiln.nn.Sigmoid;
import dev.kiln.nn.SyncBatchNorm;

import java.util.ArrayList;
import java.util.List;

/**
 * LeNet-5 with batch normalisation for 1×28×28 inputs (d2l.ai's "BN LeNet"):
 * conv 1→6 k5 p2, BN2d, sigmoid, avgpool 2; conv 6→16 k5, BN2d, sigmoid, avgpool 2; flatten 400;
 * linear 400→120, BN1d, sigmoid; 120→84, BN1d, sigmoid; 84→10 (logits).
 * Layer names, and so state-dict keys, are those of the PyTorch {@code LeNetModel} of the blog post "Batch
 * Normalization" (2024-10-15), which this model reproduces:
 * {@code conv1}, {@code bn1}, {@code conv2}, {@code bn2}, {@code dense1}, {@code bn3}, {@code dense2}, {@code bn4},
 * {@code dense3} ({@code conv1.weight}, {@code bn1.running_mean}, ..., {@code dense3.bias}); a state dict from
 * {@code LeNetModel().state_dict()} loads as it is. Files written before the linear layers took the post's names
 * ({@code fc1..fc3}) still load: {@link #upgradeStateDictKey} maps those keys.
 */
public final class LeNet5 extends Module implements LayerSequence {

    private final List<Module> layers = new ArrayList<>();

    public LeNet5(Device device, Generator gen) {
        this(device, gen, null);
    }

    /**
     * @param syncGroup null for plain batch norm; otherwise every batch-norm layer is a {@link SyncBatchNorm} over
     *                  this group (data-parallel training with global-batch statistics). Same keys, same file.
     */
    public LeNet5(Device device, Generator gen, Collective syncGroup) {
        add("conv1", new Conv2d(device, gen, 1, 6, 5, 1, 2));
        add("bn1", batchNorm(device, 6, true, syncGroup));
        add("act1", new Sigmoid());
        add("pool1", new AvgPool2d(2));
        add("conv2", new Conv2d(device, gen, 6, 16, 5));
        add("bn2", batchNorm(device, 16, true, syncGroup));
        add("act2", new Sigmoid());
        add("pool2", new AvgPool2d(2));
        add("flatten", new Flatten());
        add("dense1", new Linear(device, gen, 400, 120));
        add("bn3", batchNorm(device, 120, false, syncGroup));
        add("act3", new Sigmoid());
        add("dense2", new Linear(device, gen, 120, 84));
        add("bn4", batchNorm(device, 84, false, syncGroup));
        add("act4", new Sigmoid());
        add("dense3", new Linear(device, gen, 84, 10));
    }

    /** {@code fc1.*}, {@code fc2.*}, {@code fc3.*} (Kiln's earlier names) become {@code dense1.*} .. {@code dense3.*}. */
    @Override
    protected String upgradeStateDictKey(String key) {
        for (int i = 1; i <= 3; i++) {
            if (key.startsWith("fc" + i + ".")) {
                return "dense" + i + key.substring(3);
            }
        }
        return key;
    }

    private static Module batchNorm(Device device, int features, boolean spatial, Collective syncGroup) {
        if (syncGroup != null) {
            return new SyncBatchNorm(device, features, syncGroup);
        }
        return spatial ? new BatchNorm2d(device, features) : new BatchNorm1d(device, features);
    }

    private void add(String name, Module m) {
        layers.add(registerModule(name, m));
    }

    @Override
    public List<Module> layers() {
        return List.copyOf(layers);
    }

    /** @param images (N, 1, 28, 28) @return logits (N, 10) */
    @Override
    public Tensor forward(Tensor images) {
        int[] s = images.shape();
        if (s.length != 4 || s[1] != 1 || s[2] != 28 || s[3] != 28) {
            throw new IllegalArgumentException("LeNet5: expected input of shape (N, 1, 28, 28), got "
                    + dev.kiln.core.Shapes.toString(s));
        }
        return LayerChain.forward(layers, images);
    }
}
