package dev.kiln.cpu;

import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Recycles the float arrays of closed buffers by exact length. A training step closes its tensors (TensorScope) and
 * the next step asks for the same lengths again, so after the first step almost nothing is allocated on the Java
 * heap. Bounded in bytes; arrays beyond the bound are left to the garbage collector. Thread-safe.
 */
final class ArrayPool {

    private final long capacityBytes;
    private final AtomicLong pooledBytes = new AtomicLong();
    private final ConcurrentHashMap<Integer, ArrayDeque<float[]>> free = new ConcurrentHashMap<>();

    ArrayPool(long capacityBytes) {
        this.capacityBytes = capacityBytes;
    }

    /** A zero-filled array of exactly {@code length} floats. */
    float[] take(int length) {
        float[] a = poll(length);
        if (a == null) {
            return new float[length];
        }
        Arrays.fill(a, 0f);
        return a;
    }

    /** An array of exactly {@code length} floats with unspecified contents (the caller overwrites all of it). */
    float[] takeDirty(int length) {
        float[] a = poll(length);
        return a != null ? a : new float[length];
    }

    private float[] poll(int length) {
        if (length == 0) {
            return null;
        }
        ArrayDeque<float[]> q = free.get(length);
        if (q == null) {
            return null;
        }
        float[] a;
        synchronized (q) {
            a = q.pollFirst();
        }
        if (a != null) {
            pooledBytes.addAndGet(-4L * length);
        }
        return a;
    }

    /** Returns an array no buffer references any more. */
    void give(float[] a) {
        int length = a.length;
        if (length == 0 || pooledBytes.get() + 4L * length > capacityBytes) {
            return;
        }
        ArrayDeque<float[]> q = free.computeIfAbsent(length, k -> new ArrayDeque<>());
        synchronized (q) {
            q.addFirst(a);
        }
        pooledBytes.addAndGet(4L * length);
    }

    long pooledBytes() {
        return pooledBytes.get();
    }

    void clear() {
        free.clear();
        pooledBytes.set(0);
    }
}
