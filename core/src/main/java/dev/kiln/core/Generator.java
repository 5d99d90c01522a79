package dev.kiln.core;

import java.util.SplittableRandom;

/**
 * A seeded source of random numbers for initialisation, dropout and data order. Values are drawn on the host so a
 * seed gives the same numbers on every backend. Not thread-safe: give each thread its own.
 *
 * <p>Two streams:
 * <ul>
 *   <li>{@link Stream#KILN} ({@code new Generator(seed)}): Kiln's own, from {@link SplittableRandom}; the stream
 *       earlier Kiln versions drew, so their seeds keep giving the same models.</li>
 *   <li>{@link Stream#PYTORCH_CPU} ({@link #pytorch(long)}): PyTorch's CPU generator after
 *       {@code torch.manual_seed(seed)}, bit for bit: the same calls in the same order ({@code rand},
 *       {@code randn}, {@code randint}, {@code randperm}, the default initialisation of {@code Linear} and
 *       {@code Conv2d}) give the same float32 values as PyTorch (checked against PyTorch 1.13 on x86-64 with AVX2,
 *       whose vectorised {@code randn} path for 16 and more elements this reproduces).</li>
 * </ul>
 * Each method names the PyTorch call it corresponds to in the PyTorch stream; one call draws one tensor, so
 * {@code fillNormal} on 20 values is {@code torch.randn(20)}, not twenty {@code torch.randn(1)}.
 */
public final class Generator {

    /** Which random stream a generator draws. */
    public enum Stream { KILN, PYTORCH_CPU }

    private final long seed;
    private final Stream stream;
    private SplittableRandom random;
    private PyTorchCpuRandom torch;

    /** Kiln's own stream. */
    public Generator(long seed) {
        this(seed, Stream.KILN);
    }

    public Generator(long seed, Stream stream) {
        if (stream == null) {
            throw new IllegalArgumentException("Generator: stream must not be null");
        }
        this.seed = seed;
        this.stream = stream;
        reset();
    }

    /** PyTorch's CPU stream as after {@code torch.manual_seed(seed)}. */
    public static Generator pytorch(long seed) {
        return new Generator(seed, Stream.PYTORCH_CPU);
    }

    public long seed() {
        return seed;
    }

    public Stream stream() {
        return stream;
    }

    /** Restarts the sequence from the seed (for the PyTorch stream: {@code torch.manual_seed(seed)} again). */
    public void reset() {
        if (stream == Stream.PYTORCH_CPU) {
            torch = new PyTorchCpuRandom(seed);
            random = null;
        } else {
            random = new SplittableRandom(seed);
            torch = null;
        }
    }

    /** Uniform in [lo, hi); PyTorch stream: one element of {@code uniform_(lo, hi)}. */
    public float uniform(float lo, float hi) {
        if (torch != null) {
            return torch.uniformFloat(lo, hi);
        }
        return (float) (lo + (hi - (double) lo) * random.nextDouble());
    }

    /**
     * Standard normal. Kiln stream: Box-Muller on two uniforms (portable). PyTorch stream: {@code torch.randn(1)}
     * (double Box-Muller whose second value the next call returns).
     */
    public float normal() {
        if (torch != null) {
            return (float) torch.normalDouble(0.0, 1.0);
        }
        double u1 = random.nextDouble();
        double u2 = random.nextDouble();
        if (u1 < 1e-300) {
            u1 = 1e-300;
        }
        return (float) (Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2));
    }

    /** Uniform in [0, bound); PyTorch stream: {@code torch.randint(0, bound, ())}. */
    public int nextInt(int bound) {
        if (bound <= 0) {
            throw new IllegalArgumentException("nextInt: bound must be positive, got " + bound);
        }
        if (torch != null) {
            return (int) torch.randint(0, bound);
        }
        return random.nextInt(bound);
    }

    /** PyTorch stream: {@code torch.randint(low, high, ())}; Kiln stream: uniform in [low, high). */
    public long randint(long low, long high) {
        if (high <= low) {
            throw new IllegalArgumentException("randint: high (" + high + ") must be greater than low (" + low + ")");
        }
        if (torch != null) {
            return torch.randint(low, high);
        }
        return random.nextLong(low, high);
    }

    /** 64 random bits; PyTorch stream: the engine's next 64-bit draw. */
    public long nextLong() {
        if (torch != null) {
            return torch.random64();
        }
        return random.nextLong();
    }

    /** Uniform in [0, 2^63); PyTorch stream: {@code torch.empty((), dtype=torch.int64).random_()}. */
    public long nextNonNegativeLong() {
        if (torch != null) {
            return torch.randomInt64();
        }
        return random.nextLong() & Long.MAX_VALUE;
    }

    /**
     * A uniformly random permutation of {@code 0..n-1}. PyTorch stream: {@code torch.randperm(n)}; Kiln stream: a
     * Fisher-Yates shuffle.
     */
    public int[] randperm(int n) {
        if (n < 0) {
            throw new IllegalArgumentException("randperm: n must be non-negative, got " + n);
        }
        if (torch != null) {
            return torch.randperm(n);
        }
        int[] p = new int[n];
        for (int i = 0; i < n; i++) {
            p[i] = i;
        }
        for (int i = n - 1; i > 0; i--) {
            int j = random.nextInt(i + 1);
            int t = p[i];
            p[i] = p[j];
            p[j] = t;
        }
        return p;
    }

    /** Uniform in [lo, hi); PyTorch stream: {@code torch.empty(dst.length).uniform_(lo, hi)}. */
    public void fillUniform(float[] dst, float lo, float hi) {
        if (torch != null) {
            torch.fillUniform(dst, 0, dst.length, lo, hi);
            return;
        }
        for (int i = 0; i < dst.length; i++) {
            dst[i] = uniform(lo, hi);
        }
    }

    /**
     * {@link #fillNormal(float[], float, float)} with the mean and standard deviation in double, as
     * {@code torch.nn.init} passes them: PyTorch's element-by-element path (under 16 values) computes in double, so
     * a std such as {@code sqrt(2 / fanIn)} must not be rounded to float first.
     */
    public void fillNormal(float[] dst, double mean, double std) {
        if (torch != null) {
            torch.fillNormal(dst, 0, dst.length, mean, std);
            return;
        }
        for (int i = 0; i < dst.length; i++) {
            dst[i] = (float) (mean + std * normal());
        }
    }

    /** Normal values; PyTorch stream: {@code torch.empty(dst.length).normal_(mean, std)}, i.e. {@code randn}. */
    public void fillNormal(float[] dst, float mean, float std) {
        if (torch != null) {
            torch.fillNormal(dst, 0, dst.length, mean, std);
            return;
        }
        for (int i = 0; i < dst.length; i++) {
            dst[i] = mean + std * normal();
        }
    }
}
