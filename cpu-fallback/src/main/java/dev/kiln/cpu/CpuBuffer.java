package dev.kiln.cpu;

import dev.kiln.backend.Backend;
import dev.kiln.backend.Buffer;

/** A buffer of the CPU backend: a plain {@code float[]} on the Java heap. */
public final class CpuBuffer implements Buffer {

    /** Largest length a Java array can safely have. */
    static final long MAX_LENGTH = Integer.MAX_VALUE - 8;

    private final CpuBackend owner;
    private final int length;
    private volatile float[] data;

    CpuBuffer(CpuBackend owner, float[] data) {
        this.owner = owner;
        this.data = data;
        this.length = data.length;
    }

    static int checkLength(long length) {
        if (length < 0) {
            throw new IllegalArgumentException("cpu buffer: length must be >= 0, got " + length);
        }
        if (length > MAX_LENGTH) {
            throw new IllegalArgumentException("cpu buffer: length " + length + " exceeds the CPU backend's limit of "
                    + MAX_LENGTH + " floats (one Java array)");
        }
        return (int) length;
    }

    @Override
    public long length() {
        return length;
    }

    @Override
    public Backend backend() {
        return owner;
    }

    @Override
    public boolean isClosed() {
        return data == null;
    }

    /** The backing array; throws if the buffer was closed. */
    float[] array() {
        float[] d = data;
        if (d == null) {
            throw new IllegalArgumentException("cpu buffer of length " + length + " is closed");
        }
        return d;
    }

    @Override
    public void close() {
        float[] d;
        synchronized (this) {
            d = data;
            data = null;
        }
        if (d != null) {
            owner.recycle(d);
        }
    }

    @Override
    public String toString() {
        return "CpuBuffer[" + length + (isClosed() ? ", closed]" : "]");
    }
}
