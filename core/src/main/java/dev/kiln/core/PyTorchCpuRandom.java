package dev.kiln.core;

/**
 * The random streams of PyTorch's CPU generator after {@code torch.manual_seed(seed)}, reproduced bit for bit for
 * float32 tensors: {@code uniform_} (and so {@code rand} and the default layer initialisations), {@code normal_}
 * (both of PyTorch's paths: element by element with a cached second Box-Muller value below 16 elements, and the
 * vectorised fill that draws all uniforms first and transforms them 16 at a time), {@code random_},
 * {@code randint} and {@code randperm}. The vectorised normal fill is PyTorch's AVX2 kernel, which every x86-64
 * machine with AVX2 runs. Not thread-safe.
 */
final class PyTorchCpuRandom {

    /** 2^-24: a float in [0, 1) from the low 24 bits of a 32-bit draw. */
    private static final float FLOAT_STEP = 1f / (1 << 24);
    /** 2^-53: a double in [0, 1) from the low 53 bits of a 64-bit draw. */
    private static final double DOUBLE_STEP = 1.0 / (1L << 53);
    private static final float TWO_PI_FLOAT = (float) (2.0f * Math.PI);

    private final Mt19937 engine;
    /** The second value of the last scalar Box-Muller pair, returned by the next scalar normal draw. */
    private double cachedNormal;
    private boolean hasCachedNormal;
    private final float[] sinCos = new float[2];

    PyTorchCpuRandom(long seed) {
        engine = new Mt19937(seed);
    }

    long random32() {
        return engine.nextUnsigned32();
    }

    long random64() {
        return engine.next64();
    }

    /** One float32 element of {@code uniform_(from, to)}. */
    float uniformFloat(float from, float to) {
        float x = (random32() & 0xFFFFFF) * FLOAT_STEP;
        // PyTorch's build fuses this multiply-add (one rounding); unfused, half of uniform_(-b, b) differs in the last bit.
        return Math.fma(x, to - from, from);
    }

    private double uniformDouble() {
        return (random64() & ((1L << 53) - 1)) * DOUBLE_STEP;
    }

    /** One element of the scalar normal path (double Box-Muller, second value cached). */
    double normalDouble(double mean, double std) {
        if (hasCachedNormal) {
            hasCachedNormal = false;
            return cachedNormal * std + mean;
        }
        double u1 = uniformDouble();
        double u2 = uniformDouble();
        double r = Math.sqrt(-2.0 * StrictMath.log1p(-u2));
        double theta = 2.0 * Math.PI * u1;
        cachedNormal = r * StrictMath.sin(theta);
        hasCachedNormal = true;
        return r * StrictMath.cos(theta) * std + mean;
    }

    /** {@code tensor.uniform_(from, to)} on a float32 tensor of {@code dst.length} elements. */
    void fillUniform(float[] dst, int offset, int length, double from, double to) {
        float lo = (float) from;
        float hi = (float) to;
        for (int i = 0; i < length; i++) {
            dst[offset + i] = uniformFloat(lo, hi);
        }
    }

    /** {@code tensor.normal_(mean, std)} on a contiguous float32 tensor of {@code length} elements. */
    void fillNormal(float[] dst, int offset, int length, double mean, double std) {
        if (length < 16) {
            for (int i = 0; i < length; i++) {
                dst[offset + i] = (float) normalDouble(mean, std);
            }
            return;
        }
        float m = (float) mean;
        float s = (float) std;
        for (int i = 0; i < length; i++) {
            dst[offset + i] = uniformFloat(0f, 1f);
        }
        for (int i = 0; i + 16 <= length; i += 16) {
            boxMuller16(dst, offset + i, m, s);
        }
        if (length % 16 != 0) {
            // PyTorch redraws the last 16 uniforms and transforms them again, overlapping the previous block.
            int start = offset + length - 16;
            for (int i = 0; i < 16; i++) {
                dst[start + i] = uniformFloat(0f, 1f);
            }
            boxMuller16(dst, start, m, s);
        }
    }

    /** Eight Box-Muller pairs: uniforms at [0, 8) give the radii, those at [8, 16) the angles. */
    private void boxMuller16(float[] data, int at, float mean, float std) {
        for (int j = 0; j < 8; j++) {
            float u1 = 1f - data[at + j];
            float u2 = data[at + j + 8];
            float radius = (float) Math.sqrt(-2f * CephesFloatMath.log(u1));
            float theta = TWO_PI_FLOAT * u2;
            CephesFloatMath.sincos(theta, sinCos);
            data[at + j] = Math.fma(radius * sinCos[1], std, mean);
            data[at + j + 8] = Math.fma(radius * sinCos[0], std, mean);
        }
    }

    /** {@code torch.randint(low, high, ...)} element: uniform in [low, high). */
    long randint(long low, long high) {
        long range = high - low;
        if (range <= 0) {
            throw new IllegalArgumentException("randint: high (" + high + ") must be greater than low (" + low + ")");
        }
        long draw = range >= (1L << 32) ? random64() : random32();
        return Long.remainderUnsigned(draw, range) + low;
    }

    /** {@code torch.empty((), dtype=torch.int64).random_()}: uniform in [0, 2^63). */
    long randomInt64() {
        return random64() & Long.MAX_VALUE;
    }

    /** {@code torch.randperm(n)}: PyTorch's CPU shuffle (a swap with a uniform later position per index). */
    int[] randperm(int n) {
        int[] p = new int[n];
        for (int i = 0; i < n; i++) {
            p[i] = i;
        }
        for (int i = 0; i < n - 1; i++) {
            int z = (int) (random32() % (n - i));
            int t = p[i];
            p[i] = p[z + i];
            p[z + i] = t;
        }
        return p;
    }
}
