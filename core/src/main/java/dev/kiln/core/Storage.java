package dev.kiln.core;

import dev.kiln.backend.Buffer;

/**
 * A backend buffer shared by its owners: the tensor that created it, its views (reshape, flatten, detach) and the
 * autograd nodes that saved it for their backward. The buffer is released when the last owner lets go:
 * deterministic, never left to the garbage collector.
 */
final class Storage {

    private final Buffer buffer;
    private final TensorMemory memory;
    private final long bytes;
    private final ResourceLeaks.Tracker leak;
    private int references = 1;

    Storage(Buffer buffer, TensorMemory memory) {
        this.buffer = buffer;
        this.memory = memory;
        this.bytes = 4L * buffer.length();
        this.leak = ResourceLeaks.track(this, "tensor");
        memory.allocated(bytes);
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

    void release() {
        synchronized (this) {
            if (references == 0 || --references > 0) {
                return;
            }
        }
        memory.released(bytes);
        buffer.close();
        leak.close();
    }

    synchronized boolean isReleased() {
        return references == 0;
    }
}
