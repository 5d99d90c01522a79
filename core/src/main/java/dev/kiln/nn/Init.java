package dev.kiln.nn;

import dev.kiln.core.Device;
import dev.kiln.core.Generator;
import dev.kiln.core.Tensor;

/** PyTorch's default initialisations, drawn from an explicit {@link Generator}. */
public final class Init {

    private Init() {
    }

    /**
     * {@code kaiming_uniform_(w, a=sqrt(5))} as used by {@code nn.Linear}/{@code nn.Conv2d}: gain sqrt(2/(1+a^2)),
     * bound = sqrt(3) * gain / sqrt(fanIn), which is about {@code 1/sqrt(fanIn)}. The double arithmetic follows
     * {@code torch.nn.init} step for step, so the float bound (and with {@link Generator#pytorch} every value) is
     * PyTorch's.
     */
    public static Tensor kaimingUniformDefault(Device device, Generator gen, int fanIn, int... shape) {
        return uniform(device, gen, (float) kaimingUniformBound(fanIn), shape);
    }

    /** {@code math.sqrt(3.0) * (calculate_gain('leaky_relu', math.sqrt(5)) / math.sqrt(fan_in))}. */
    static double kaimingUniformBound(int fanIn) {
        double a = Math.sqrt(5);
        double gain = Math.sqrt(2.0 / (1 + a * a));
        double std = gain / Math.sqrt(fanIn);
        return Math.sqrt(3.0) * std;
    }

    /** The default bias: uniform in {@code [-1/sqrt(fanIn), 1/sqrt(fanIn))}. */
    public static Tensor fanInUniform(Device device, Generator gen, int fanIn, int... shape) {
        return uniform(device, gen, (float) (1 / Math.sqrt(fanIn)), shape);
    }

    /** Draws nothing while a {@link dev.kiln.nn.init.SkipInit} is open: the values are about to be replaced. */
    private static Tensor uniform(Device device, Generator gen, float bound, int... shape) {
        float[] data = new float[(int) dev.kiln.core.Shapes.numel(shape)];
        if (dev.kiln.nn.init.SkipInit.active()) {
            return Tensor.unscoped(device, data, shape);
        }
        gen.fillUniform(data, -bound, bound);
        return Tensor.unscoped(device, data, shape);
    }

    public static Tensor constant(Device device, float value, int... shape) {
        float[] data = new float[(int) dev.kiln.core.Shapes.numel(shape)];
        java.util.Arrays.fill(data, value);
        return Tensor.unscoped(device, data, shape);
    }
}
