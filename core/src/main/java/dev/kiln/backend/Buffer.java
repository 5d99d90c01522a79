package dev.kiln.backend;

/**
 * A block of float32 memory owned by one {@link Backend}. Host code never reads a buffer directly:
 * it goes through {@link Backend#download}. Closing returns the memory to its backend at once
 * (device memory is never left to the garbage collector); closing twice is harmless.
 */
public interface Buffer extends AutoCloseable {

    /** Number of float32 elements. */
    long length();

    /** The backend that allocated this buffer; only that backend may operate on it. */
    Backend backend();

    /** Whether {@link #close()} has been called. */
    boolean isClosed();

    @Override
    void close();
}
