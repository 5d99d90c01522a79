package dev.kiln.models;

import dev.kiln.core.Device;
import dev.kiln.core.Generator;
import dev.kiln.nn.Module;
import dev.kiln.nn.init.SkipInit;

import java.util.Arrays;
import java.util.Objects;
import java.util.Optional;
import java.util.function.Function;

/**
 * What a model file names so that it can be rebuilt from its weights alone: an architecture name, the shape of one
 * input sample, and how to construct the (untrained) module on a device. {@link #LENET5} is built in; an application
 * with its own model passes its {@code Architecture} where a model is saved and where it is loaded.
 *
 * @param name       recorded in the model file ({@code kiln.architecture})
 * @param inputShape one sample, without the batch dimension, e.g. {@code [1, 28, 28]}
 * @param factory    builds the module on a device; its weights are then replaced by the file's
 */
public record Architecture(String name, int[] inputShape, Function<Device, ? extends Module> factory) {

    /** {@link LeNet5}: 1×28×28 inputs, 10 classes. */
    public static final Architecture LENET5 = new Architecture("LeNet5", new int[]{1, 28, 28},
            device -> new LeNet5(device, new Generator(0)));

    /** {@link ResNet}: 1×28×28 inputs, 10 classes. */
    public static final Architecture RESNET = new Architecture("ResNet", new int[]{1, 28, 28},
            device -> new ResNet(device, new Generator(0)));

    public Architecture {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(factory, "factory");
        if (name.isBlank() || inputShape.length == 0 || Arrays.stream(inputShape).anyMatch(d -> d < 1)) {
            throw new IllegalArgumentException("architecture '" + name + "': invalid input shape " + Arrays.toString(inputShape));
        }
        inputShape = inputShape.clone();
    }

    @Override
    public int[] inputShape() {
        return inputShape.clone();
    }

    /** Values per input sample. */
    public int inputSize() {
        int n = 1;
        for (int d : inputShape) {
            n *= d;
        }
        return n;
    }

    /**
     * The module, built to receive weights that replace its own: inside {@link SkipInit}, so its layers draw no
     * random initialisation (their parameters start at zero).
     */
    public Module buildForLoading(Device device) {
        try (SkipInit ignored = SkipInit.enter()) {
            return factory.apply(device);
        }
    }

    /** A built-in architecture by name (case-insensitive). */
    public static Optional<Architecture> builtIn(String name) {
        for (Architecture a : new Architecture[]{LENET5, RESNET}) {
            if (a.name.equalsIgnoreCase(name)) {
                return Optional.of(a);
            }
        }
        return Optional.empty();
    }

    /** The built-in architecture {@code model} is an instance of. */
    public static Optional<Architecture> of(Module model) {
        if (model instanceof LeNet5) {
            return Optional.of(LENET5);
        }
        return model instanceof ResNet r && r.isDefaultShape() ? Optional.of(RESNET) : Optional.empty();
    }

    @Override
    public String toString() {
        return name + Arrays.toString(inputShape);
    }
}
