package dev.kiln.cuda;

import dev.kiln.backend.Backend;
import dev.kiln.backend.Buffer;
import dev.kiln.core.ResourceLeaks;
import jcuda.driver.CUdeviceptr;

/**
 * float32 device memory from a {@link CudaBackend}; {@link #close()} gives it back to the caching allocator at once.
 * A buffer that becomes unreachable without {@code close()} is given back by a {@link ResourceLeaks} cleaner (device
 * memory has no garbage collector of its own).
 */
final class CudaBuffer implements Buffer {

    private final CudaBackend backend;
    private final CUdeviceptr ptr;
    private final long length;
    private final ResourceLeaks.Tracker cleaner;
    private volatile boolean closed;

    CudaBuffer(CudaBackend backend, CUdeviceptr ptr, long length) {
        this.backend = backend;
        this.ptr = ptr;
        this.length = length;
        this.cleaner = ResourceLeaks.trackWithRelease(this, "cuda buffer", () -> backend.release(ptr, length));
    }

    /** The device address; throws if the buffer was closed. */
    CUdeviceptr ptr() {
        if (closed) {
            throw new IllegalStateException("cuda buffer of " + length + " floats used after close()");
        }
        return ptr;
    }

    /** The address of element {@code offset}. */
    CUdeviceptr at(long offset) {
        return offset == 0 ? ptr() : ptr().withByteOffset(offset * Float.BYTES);
    }

    @Override
    public long length() {
        return length;
    }

    @Override
    public Backend backend() {
        return backend;
    }

    @Override
    public boolean isClosed() {
        return closed;
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            backend.release(ptr, length);
            cleaner.close();
        }
    }

    @Override
    public String toString() {
        return "CudaBuffer[" + length + (closed ? ", closed]" : "]");
    }
}
