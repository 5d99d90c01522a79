package dev.kiln.examples;

import dev.kiln.core.Device;
import dev.kiln.core.Generator;
import dev.kiln.models.ResNet;
import dev.kiln.nn.Module;
import picocli.CommandLine.Command;

/**
 * {@code kiln bench lenet}'s measurement on {@link ResNet} (the network of {@code ./kiln resnet}): training and
 * inference images/s on random 1x28x28 images gathered on the device, the peer of {@code bench/pytorch_resnet.py}.
 */
@Command(name = "resnet", mixinStandardHelpOptions = true, sortOptions = false,
        description = "ResNet (./kiln resnet's network) training and inference images/s on in-memory random data.")
final class BenchResNetCommand extends BenchLeNetCommand {

    @Override
    Module newModel(Device dev) {
        return new ResNet(dev, new Generator(42));
    }
}
