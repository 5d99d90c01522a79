package dev.kiln.core;

import java.util.concurrent.atomic.AtomicLong;

/**
 * Bytes of tensor storage held on one {@link Device} now and at most since the last {@link #resetPeak()}: every
 * storage counts once, from its allocation until its last owner (the tensor's handle, a view, the autograd graph)
 * lets it go. It measures what Kiln keeps alive, whatever the backend then caches for reuse (the CPU backend's array
 * pool, the CUDA caching allocator report their own figures).
 */
public final class TensorMemory {

    private final AtomicLong liveBytes = new AtomicLong();
    private final AtomicLong peakBytes = new AtomicLong();
    private final AtomicLong liveStorages = new AtomicLong();

    TensorMemory() {
    }

    void allocated(long bytes) {
        liveStorages.incrementAndGet();
        long now = liveBytes.addAndGet(bytes);
        long peak;
        while (now > (peak = peakBytes.get()) && !peakBytes.compareAndSet(peak, now)) {
            // another thread raised the peak; compare again
        }
    }

    void released(long bytes) {
        liveStorages.decrementAndGet();
        liveBytes.addAndGet(-bytes);
    }

    /** Bytes of tensor storage alive now. */
    public long liveBytes() {
        return liveBytes.get();
    }

    /** Number of tensor storages alive now (views and graph references of one storage count once). */
    public long liveStorages() {
        return liveStorages.get();
    }

    /** The most bytes alive at once since the device was created or {@link #resetPeak()} last ran. */
    public long peakBytes() {
        return peakBytes.get();
    }

    /** Starts a new high-water mark at the bytes alive now. */
    public void resetPeak() {
        peakBytes.set(liveBytes.get());
    }

    @Override
    public String toString() {
        return "tensor memory: " + liveBytes() + " B in " + liveStorages() + " storages, peak " + peakBytes() + " B";
    }
}
