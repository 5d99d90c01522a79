package dev.kiln.data;

/**
 * The sample order of an epoch: a permutation of {@code 0..n-1} that depends only on
 * {@code (seed, epoch, n)}, so resuming at epoch {@code e} reproduces it. Uses its own SplitMix64
 * generator and a Fisher-Yates shuffle, so the order does not change with the JDK.
 */
public final class EpochOrder {
    private EpochOrder() {
    }

    public static int[] permutation(long seed, int epoch, int n) {
        int[] p = new int[n];
        fill(seed, epoch, p);
        return p;
    }

    /** Fills {@code dst} with the permutation of {@code 0..dst.length-1} for {@code (seed, epoch)}. */
    public static void fill(long seed, int epoch, int[] dst) {
        for (int i = 0; i < dst.length; i++) {
            dst[i] = i;
        }
        long state = mix(seed ^ mix(0x9E3779B97F4A7C15L * (epoch + 1L)));
        for (int i = dst.length - 1; i > 0; i--) {
            state += 0x9E3779B97F4A7C15L;
            long r = mix(state) >>> 32; // 32 uniform bits
            int j = (int) ((r * (i + 1)) >>> 32); // uniform in [0, i] (Lemire, bias < 2^-32 * n)
            int t = dst[i];
            dst[i] = dst[j];
            dst[j] = t;
        }
    }

    /** The SplitMix64 finaliser. */
    static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }
}
