package dev.kiln.core;

import java.util.SplittableRandom;

/**
 * A seeded source of random numbers for initialisation, dropout and data order. Values are drawn on the host so a
 * seed gives the same numbers on every backend. Not thread-safe: give each thread its own.
 */
public final class Generator {

    private final long seed;
    private SplittableRandom random;

    public Generator(long seed) {
        this.seed = seed;
        this.random = new SplittableRandom(seed);
    }

    public long seed() {
        return seed;
    }

    /** Restarts the sequence from the seed. */
    public void reset() {
        random = new SplittableRandom(seed);
    }

    /** Uniform in [lo, hi). */
    public float uniform(float lo, float hi) {
        return (float) (lo + (hi - (double) lo) * random.nextDouble());
    }

    /** Standard normal (Box-Muller on two uniforms, so the sequence is portable). */
    public float normal() {
        double u1 = random.nextDouble();
        double u2 = random.nextDouble();
        if (u1 < 1e-300) {
            u1 = 1e-300;
        }
        return (float) (Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2));
    }

    public int nextInt(int bound) {
        return random.nextInt(bound);
    }

    public long nextLong() {
        return random.nextLong();
    }

    public void fillUniform(float[] dst, float lo, float hi) {
        for (int i = 0; i < dst.length; i++) {
            dst[i] = uniform(lo, hi);
        }
    }

    public void fillNormal(float[] dst, float mean, float std) {
        for (int i = 0; i < dst.length; i++) {
            dst[i] = mean + std * normal();
        }
    }
}
