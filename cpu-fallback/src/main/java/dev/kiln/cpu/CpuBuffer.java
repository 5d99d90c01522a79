package dev.kiln.cpu;

import dev.kiln.backend.Backend;
import dev.kiln.backend.Buffer;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/** A buffer of the CPU backend: a plain {@code float[]} on the Java heap. */
public final class CpuBuffer implements Buffer {

    /** Largest length a Java array can safely have. */
    static final long MAX_LENGTH = Integer.MAX_VALUE - 8;

    private final CpuBackend owner;
    private final int length;
    /** The capture this buffer was allocated in, if any: its array stays reserved for that recording. */
    private final CaptureReservation allocatedDuring;
    /** A recorded graph's handle on another buffer's array: closing it frees nothing (the reservation does). */
    private final boolean alias;
    private volatile float[] data;

    private static final VarHandle DATA;

    static {
        try {
            DATA = MethodHandles.lookup().findVarHandle(CpuBuffer.class, "data", float[].class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    CpuBuffer(CpuBackend owner, float[] data, CaptureReservation allocatedDuring) {
        this(owner, data, allocatedDuring, false);
    }

    private CpuBuffer(CpuBackend owner, float[] data, CaptureReservation allocatedDuring, boolean alias) {
        this.owner = owner;
        this.allocatedDuring = allocatedDuring;
        this.alias = alias;
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

    /** A buffer over the same array for a recorded graph, usable after this one is closed. */
    CpuBuffer alias() {
        return new CpuBuffer(owner, array(), null, true);
    }

    @Override
    public void close() {
        if (alias) {
            return;
        }
        // exactly one close gets the array, and the buffer forgets it before the pool can hand it out again
        float[] d = (float[]) DATA.getAndSet(this, (float[]) null);
        if (d != null) {
            owner.release(d, allocatedDuring);
        }
    }

    @Override
    public String toString() {
        return "CpuBuffer[" + length + (isClosed() ? ", closed]" : "]");
    }
}
