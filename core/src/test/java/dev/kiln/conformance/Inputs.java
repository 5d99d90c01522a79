package dev.kiln.conformance;

import java.util.SplittableRandom;

/**
 * Seeded random test data. Every array is float32 (what a backend receives); the reference widens it exactly to
 * float64 with {@link #widen}. Seeds are fixed so a failure reproduces bit for bit.
 */
public final class Inputs {

    private final SplittableRandom rnd;

    public Inputs(long seed) {
        this.rnd = new SplittableRandom(seed);
    }

    /** Uniform in {@code [lo, hi)}, rounded to float32. */
    public float[] uniform(int n, double lo, double hi) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) (lo + (hi - lo) * rnd.nextDouble());
        }
        return a;
    }

    /** Uniform in {@code [lo, hi)} with a random sign (magnitudes bounded away from zero). */
    public float[] signedAwayFromZero(int n, double lo, double hi) {
        float[] a = uniform(n, lo, hi);
        for (int i = 0; i < n; i++) {
            if (rnd.nextBoolean()) {
                a[i] = -a[i];
            }
        }
        return a;
    }

    /**
     * Pairwise distinct values in {@code (-1, 1)} with gaps of at least {@code 1/(n+1)} between any two
     * (a shuffled grid plus a little jitter): no ties and no value near a kink of max or ReLU for a finite
     * difference step of 1e-6.
     */
    public float[] distinct(int n) {
        float[] a = new float[n];
        int[] perm = permutation(n);
        double step = 2.0 / (n + 1);
        for (int i = 0; i < n; i++) {
            double jitter = (rnd.nextDouble() - 0.5) * 0.2 * step;
            a[i] = (float) (-1.0 + step * (perm[i] + 1) + jitter);
        }
        return a;
    }

    /** Values drawn from a few levels, so ties are frequent. */
    public float[] fewLevels(int n, int levels) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = rnd.nextInt(levels) - levels / 2;
        }
        return a;
    }

    /** Class indices in {@code [0, classes)}, stored as floats. */
    public float[] classes(int n, int classes) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = rnd.nextInt(classes);
        }
        return a;
    }

    public int[] ints(int n, int bound) {
        int[] a = new int[n];
        for (int i = 0; i < n; i++) {
            a[i] = rnd.nextInt(bound);
        }
        return a;
    }

    public int[] permutation(int n) {
        int[] p = new int[n];
        for (int i = 0; i < n; i++) {
            p[i] = i;
        }
        for (int i = n - 1; i > 0; i--) {
            int j = rnd.nextInt(i + 1);
            int t = p[i];
            p[i] = p[j];
            p[j] = t;
        }
        return p;
    }

    /** At most {@code max} distinct indices in {@code [0, n)}, sorted; all of them when {@code n <= max}. */
    public int[] subset(int n, int max) {
        if (n <= max) {
            int[] all = new int[n];
            for (int i = 0; i < n; i++) {
                all[i] = i;
            }
            return all;
        }
        int[] p = permutation(n);
        int[] s = java.util.Arrays.copyOf(p, max);
        java.util.Arrays.sort(s);
        return s;
    }

    public double nextDouble() {
        return rnd.nextDouble();
    }

    public static double[] widen(float[] a) {
        double[] d = new double[a.length];
        for (int i = 0; i < a.length; i++) {
            d[i] = a[i];
        }
        return d;
    }

    public static float[] narrow(double[] a) {
        float[] f = new float[a.length];
        for (int i = 0; i < a.length; i++) {
            f[i] = (float) a[i];
        }
        return f;
    }

    public static float[] filled(int n, float v) {
        float[] a = new float[n];
        java.util.Arrays.fill(a, v);
        return a;
    }
}
