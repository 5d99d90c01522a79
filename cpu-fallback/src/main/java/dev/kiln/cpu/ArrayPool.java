package dev.kiln.cpu;

import java.util.Arrays;

/**
 * A bounded, size-keyed pool of {@code float[]} arrays for one backend instance, so a training step that allocates
 * the same tensors every step stops allocating once warm. Arrays (never {@link CpuBuffer} objects) are pooled: a
 * closed buffer drops its reference before its array is returned, so a stale buffer can never see new data.
 * Arrays handed out are zero-filled (as {@code allocate} promises).
 *
 * <p>Bounded in bytes ({@code maxBytes}) and in distinct lengths; what does not fit is left to the garbage
 * collector. Thread-safe (one lock; the critical sections are a few array operations).
 */
final class ArrayPool {

    /** Arrays shorter than this are not worth pooling (allocation is a bump of a pointer). */
    static final int MIN_LENGTH = 16;
    private static final int MAX_SIZES = 128;
    private static final int MAX_PER_SIZE = 64;

    private final long maxBytes;
    private final int[] lengths = new int[MAX_SIZES];
    private final float[][][] stacks = new float[MAX_SIZES][][];
    private final int[] counts = new int[MAX_SIZES];
    private int sizes;
    private long pooledBytes;
    private long hits, misses;

    ArrayPool(long maxBytes) {
        this.maxBytes = maxBytes;
    }

    /** A zero-filled array of exactly {@code length} floats, reused when one is pooled. */
    float[] take(int length) {
        float[] a = takeDirty(length);
        if (a != null) {
            Arrays.fill(a, 0f);
            return a;
        }
        return new float[length];
    }

    /** A pooled array of exactly {@code length} floats with arbitrary content, or null. */
    float[] takeDirty(int length) {
        if (length < MIN_LENGTH) {
            return null;
        }
        synchronized (this) {
            int s = find(length);
            if (s >= 0 && counts[s] > 0) {
                float[][] st = stacks[s];
                float[] a = st[--counts[s]];
                st[counts[s]] = null;
                pooledBytes -= 4L * length;
                hits++;
                return a;
            }
            misses++;
            return null;
        }
    }

    /** Gives {@code a} back; the caller must hold no other reference to it. */
    void give(float[] a) {
        int length = a.length;
        if (length < MIN_LENGTH || 4L * length > maxBytes) {
            return;
        }
        synchronized (this) {
            if (pooledBytes + 4L * length > maxBytes) {
                return;
            }
            int s = find(length);
            if (s < 0) {
                if (sizes == MAX_SIZES) {
                    return;
                }
                s = sizes++;
                lengths[s] = length;
                stacks[s] = new float[4][];
            }
            if (counts[s] == MAX_PER_SIZE) {
                return;
            }
            if (counts[s] == stacks[s].length) {
                stacks[s] = Arrays.copyOf(stacks[s], Math.min(MAX_PER_SIZE, 2 * counts[s]));
            }
            stacks[s][counts[s]++] = a;
            pooledBytes += 4L * length;
        }
    }

    private int find(int length) {
        for (int i = 0; i < sizes; i++) {
            if (lengths[i] == length) {
                return i;
            }
        }
        return -1;
    }

    synchronized void clear() {
        for (int i = 0; i < sizes; i++) {
            stacks[i] = null;
            counts[i] = 0;
        }
        sizes = 0;
        pooledBytes = 0;
    }

    synchronized long pooledBytes() {
        return pooledBytes;
    }

    synchronized String stats() {
        return "pool: " + sizes + " lengths, " + pooledBytes / 1024 + " KiB held, " + hits + " hits, " + misses + " misses";
    }
}
