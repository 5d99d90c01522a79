package dev.kiln.nn.init;

import dev.kiln.core.Generator;
import dev.kiln.core.Shapes;
import dev.kiln.core.Tensor;

import java.util.Objects;

/**
 * PyTorch's {@code torch.nn.init}: each method overwrites a tensor in place (no gradient recorded) and returns it.
 * The arithmetic follows {@code torch.nn.init} step for step in double, and the values come from {@code gen}, so with
 * {@link Generator#pytorch(long)} a call gives PyTorch's values bit for bit after the same {@code torch.manual_seed}
 * and the same calls in the same order.
 *
 * <pre>{@code
 * Generator gen = Generator.pytorch(0);
 * for (Module m : model.namedModules().values()) {
 *     if (m instanceof Conv2d conv) {
 *         Initializers.kaimingNormal_(conv.weight(), gen, 0, FanMode.FAN_OUT, Nonlinearity.RELU);
 *     }
 * }
 * }</pre>
 */
public final class Initializers {

    /** The activation a layer feeds, for {@link #calculateGain}: PyTorch's {@code nonlinearity} strings. */
    public enum Nonlinearity { LINEAR, CONV1D, CONV2D, CONV3D, CONV_TRANSPOSE1D, CONV_TRANSPOSE2D, CONV_TRANSPOSE3D,
        SIGMOID, TANH, RELU, LEAKY_RELU, SELU }

    /** Whether Kaiming initialisation preserves the variance of the forward pass (fan in) or the backward (fan out). */
    public enum FanMode { FAN_IN, FAN_OUT }

    private Initializers() {
    }

    /** {@code calculate_gain(nonlinearity)}; for {@code LEAKY_RELU} the negative slope is 0.01. */
    public static double calculateGain(Nonlinearity nonlinearity) {
        return calculateGain(nonlinearity, Double.NaN);
    }

    /**
     * {@code calculate_gain(nonlinearity, param)}: 1 for linear, convolutions and sigmoid, 5/3 for tanh, sqrt(2) for
     * ReLU, {@code sqrt(2 / (1 + slope^2))} for leaky ReLU ({@code param} is the slope; NaN means PyTorch's default
     * 0.01), 3/4 for SELU.
     */
    public static double calculateGain(Nonlinearity nonlinearity, double param) {
        Objects.requireNonNull(nonlinearity, "nonlinearity");
        return switch (nonlinearity) {
            case LINEAR, CONV1D, CONV2D, CONV3D, CONV_TRANSPOSE1D, CONV_TRANSPOSE2D, CONV_TRANSPOSE3D, SIGMOID -> 1.0;
            case TANH -> 5.0 / 3;
            case RELU -> Math.sqrt(2.0);
            case LEAKY_RELU -> {
                double slope = Double.isNaN(param) ? 0.01 : param;
                if (Double.isInfinite(slope)) {
                    throw new IllegalArgumentException("calculate_gain: negative slope " + param + " is not a valid number");
                }
                yield Math.sqrt(2.0 / (1 + slope * slope));
            }
            case SELU -> 3.0 / 4;
        };
    }

    /** {@code [fan_in, fan_out]}: {@code size(1)} and {@code size(0)} times the receptive field (dims 2 and up). */
    public static int[] fanInAndFanOut(Tensor tensor) {
        int[] s = tensor.shape();
        if (s.length < 2) {
            throw new IllegalArgumentException("fan in and fan out can not be computed for a tensor with fewer than 2"
                    + " dimensions, got shape " + Shapes.toString(s));
        }
        long receptive = 1;
        for (int i = 2; i < s.length; i++) {
            receptive *= s[i];
        }
        return new int[]{Math.toIntExact(s[1] * receptive), Math.toIntExact(s[0] * receptive)};
    }

    // ------------------------------------------------------------------ plain distributions

    /** {@code uniform_(tensor, a, b)}: uniform in [a, b). */
    public static Tensor uniform_(Tensor tensor, Generator gen, double a, double b) {
        if (!(a <= b) || Double.isInfinite(a) || Double.isInfinite(b)) {
            throw new IllegalArgumentException("uniform_: expects a <= b, both finite, got a=" + a + " b=" + b);
        }
        float[] data = new float[numel(tensor)];
        gen.fillUniform(data, (float) a, (float) b);
        tensor.copyFrom(data);
        return tensor;
    }

    /** {@code uniform_(tensor)}: uniform in [0, 1). */
    public static Tensor uniform_(Tensor tensor, Generator gen) {
        return uniform_(tensor, gen, 0, 1);
    }

    /** {@code normal_(tensor, mean, std)}. */
    public static Tensor normal_(Tensor tensor, Generator gen, double mean, double std) {
        if (!(std >= 0) || Double.isInfinite(std) || !Double.isFinite(mean)) {
            throw new IllegalArgumentException("normal_: expects a finite mean and std >= 0, got mean=" + mean + " std=" + std);
        }
        float[] data = new float[numel(tensor)];
        gen.fillNormal(data, mean, std);
        tensor.copyFrom(data);
        return tensor;
    }

    /** {@code normal_(tensor)}: standard normal. */
    public static Tensor normal_(Tensor tensor, Generator gen) {
        return normal_(tensor, gen, 0, 1);
    }

    /** {@code constant_(tensor, val)}; draws nothing. */
    public static Tensor constant_(Tensor tensor, double value) {
        tensor.fill((float) value);
        return tensor;
    }

    public static Tensor zeros_(Tensor tensor) {
        return constant_(tensor, 0);
    }

    public static Tensor ones_(Tensor tensor) {
        return constant_(tensor, 1);
    }

    // ------------------------------------------------------------------ Xavier (Glorot)

    /** {@code xavier_uniform_(tensor, gain)}: bound {@code gain * sqrt(6 / (fan_in + fan_out))}. */
    public static Tensor xavierUniform_(Tensor tensor, Generator gen, double gain) {
        double std = xavierStd(tensor, gain);
        double a = Math.sqrt(3.0) * std;
        return uniform_(tensor, gen, -a, a);
    }

    public static Tensor xavierUniform_(Tensor tensor, Generator gen) {
        return xavierUniform_(tensor, gen, 1.0);
    }

    /** {@code xavier_normal_(tensor, gain)}: std {@code gain * sqrt(2 / (fan_in + fan_out))}. */
    public static Tensor xavierNormal_(Tensor tensor, Generator gen, double gain) {
        return normal_(tensor, gen, 0, xavierStd(tensor, gain));
    }

    public static Tensor xavierNormal_(Tensor tensor, Generator gen) {
        return xavierNormal_(tensor, gen, 1.0);
    }

    private static double xavierStd(Tensor tensor, double gain) {
        int[] fans = fanInAndFanOut(tensor);
        return gain * Math.sqrt(2.0 / (double) (fans[0] + fans[1]));
    }

    // ------------------------------------------------------------------ Kaiming (He)

    /**
     * {@code kaiming_uniform_(tensor, a, mode, nonlinearity)}: bound {@code sqrt(3) * gain / sqrt(fan)} with
     * {@code gain = calculateGain(nonlinearity, a)}.
     */
    public static Tensor kaimingUniform_(Tensor tensor, Generator gen, double a, FanMode mode, Nonlinearity nonlinearity) {
        double std = kaimingStd(tensor, a, mode, nonlinearity);
        double bound = Math.sqrt(3.0) * std;
        return uniform_(tensor, gen, -bound, bound);
    }

    /** PyTorch's defaults: {@code a = 0}, fan in, leaky ReLU (which with slope 0 is ReLU's gain sqrt(2)). */
    public static Tensor kaimingUniform_(Tensor tensor, Generator gen) {
        return kaimingUniform_(tensor, gen, 0, FanMode.FAN_IN, Nonlinearity.LEAKY_RELU);
    }

    /** {@code kaiming_normal_(tensor, a, mode, nonlinearity)}: std {@code gain / sqrt(fan)}. */
    public static Tensor kaimingNormal_(Tensor tensor, Generator gen, double a, FanMode mode, Nonlinearity nonlinearity) {
        return normal_(tensor, gen, 0, kaimingStd(tensor, a, mode, nonlinearity));
    }

    /** PyTorch's defaults: {@code a = 0}, fan in, leaky ReLU. */
    public static Tensor kaimingNormal_(Tensor tensor, Generator gen) {
        return kaimingNormal_(tensor, gen, 0, FanMode.FAN_IN, Nonlinearity.LEAKY_RELU);
    }

    private static double kaimingStd(Tensor tensor, double a, FanMode mode, Nonlinearity nonlinearity) {
        Objects.requireNonNull(mode, "mode");
        int[] fans = fanInAndFanOut(tensor);
        int fan = mode == FanMode.FAN_IN ? fans[0] : fans[1];
        if (fan == 0) {
            throw new IllegalArgumentException("kaiming init: the " + mode.name().toLowerCase(java.util.Locale.ROOT)
                    + " of a tensor of shape " + Shapes.toString(tensor.shape()) + " is 0");
        }
        return calculateGain(nonlinearity, a) / Math.sqrt(fan);
    }

    private static int numel(Tensor tensor) {
        return Math.toIntExact(tensor.numel());
    }
}
