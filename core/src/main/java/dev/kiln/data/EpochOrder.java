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

    /**
     * The order PyTorch's {@code DataLoader(dataset, shuffle=True, generator=torch.Generator().manual_seed(seed))}
     * gives in epoch {@code epoch} (0-based) for {@code n} samples (PyTorch 1.13): each epoch draws one 64-bit base
     * seed, then {@code torch.randperm(n)}, then a second {@code randperm(n)} that its {@code RandomSampler} computes
     * for the empty remainder ({@code num_samples % n}) when the epoch runs out, all from that generator. Replays the
     * epochs before, so it too depends only on {@code (seed, epoch, n)} and a resumed run gets the same order.
     */
    public static int[] pytorchPermutation(long seed, int epoch, int n) {
        if (epoch < 0) {
            throw new IllegalArgumentException("epoch must be >= 0, got " + epoch);
        }
        dev.kiln.core.Generator gen = dev.kiln.core.Generator.pytorch(seed);
        int[] p = null;
        for (int e = 0; e <= epoch; e++) {
            gen.nextLong(); // the loader iterator's base seed for worker processes
            p = gen.randperm(n);
            gen.randperm(n); // drawn and sliced to nothing at the end of the epoch
        }
        return p;
    }

    /** The SplitMix64 finaliser. */
    static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }
}
