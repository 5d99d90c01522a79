package dev.kiln.core;

import dev.kiln.backend.Buffer;

/**
 * A backend buffer shared by a tensor and its views (reshape, flatten). The buffer is released when the last tensor
 * that references it is closed: deterministic, never left to the garbage collector.
 */
final class Storage {

    private final Buffer buffer;
    private final ResourceLeaks.Tracker leak;
    private int references = 1;

    Storage(Buffer buffer) {
        this.buffer = buffer;
        this.leak = ResourceLeaks.track(this, "tensor");
    }

    Buffer buffer() {
        return buffer;
    }

    synchronized Storage retain() {
        if (references == 0) {
            throw new IllegalStateException("tensor storage already released");
        }
        references++;
        return this;
    }

    synchronized void release() {
        if (references > 0 && --references == 0) {
            buffer.close();
            leak.close();
        }
    }

    synchronized boolean isReleased() {
        return references == 0;
    }
}
