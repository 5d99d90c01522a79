package dev.kiln.cpu;

import dev.kiln.core.Device;
import dev.kiln.core.Devices;
import dev.kiln.core.Generator;
import dev.kiln.core.ResourceLeaks;
import dev.kiln.core.Tensor;
import dev.kiln.core.TensorScope;
import dev.kiln.data.Normalization;
import dev.kiln.inference.Predictor;
import dev.kiln.models.LeNet5;
import dev.kiln.nn.Conv2d;
import dev.kiln.train.ModelFiles;

import java.util.concurrent.Callable;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * What one deployment of an application does with Kiln, run by {@link ClassLoaderUnloadingTest} inside a child
 * class loader on a thread of a pool that outlives it: leak detection on every resource, a GPU-style buffer
 * registered with a release action (one closed, one dropped for the cleaner), a model trained a step, a ResNet's
 * padded and strided convolutions run forward and backward, the model served by a predictor, everything closed and
 * the default devices released.
 */
public final class RedeployWorkload implements Callable<String> {

    @Override
    public String call() throws Exception {
        ResourceLeaks.setLevel(ResourceLeaks.Level.PARANOID);
        AtomicInteger released = new AtomicInteger();
        ResourceLeaks.Tracker closed = ResourceLeaks.trackWithRelease(new Object(), "cuda buffer", released::incrementAndGet);
        ResourceLeaks.trackWithRelease(new Object(), "cuda buffer", released::incrementAndGet);   // dropped unclosed
        closed.close();
        Device cpu = Device.cpu();
        int classes;
        try (LeNet5 model = new LeNet5(cpu, new Generator(7))) {
            try (TensorScope s = TensorScope.open()) {
                Tensor x = Tensor.zeros(cpu, 8, 1, 28, 28).add(0.5f);
                model.forward(x).sum().backward();
            }
            // a ResNet's padded convolutions too: the 28x28 padded layout, the stacked 7x7 one, stride 2
            try (Conv2d c28 = new Conv2d(cpu, new Generator(8), 4, 8, 3, 1, 1);
                 Conv2d c7 = new Conv2d(cpu, new Generator(9), 4, 8, 3, 1, 1);
                 Conv2d s2 = new Conv2d(cpu, new Generator(10), 4, 8, 3, 2, 1);
                 TensorScope s = TensorScope.open()) {
                c28.forward(Tensor.zeros(cpu, 2, 4, 28, 28).add(0.5f)).sum().backward();
                c7.forward(Tensor.zeros(cpu, 2, 4, 7, 7).add(0.5f)).sum().backward();
                s2.forward(Tensor.zeros(cpu, 2, 4, 14, 14).add(0.5f)).sum().backward();
            }
            byte[] bytes = ModelFiles.toBytes(model, Normalization.MNIST);
            try (Predictor p = Predictor.load(bytes, Predictor.Options.defaults().device(cpu))) {
                classes = p.classes(new byte[3][784]).length;
            }
        }
        Devices.releaseDefaults();
        return "scored " + classes + " images";
    }
}
