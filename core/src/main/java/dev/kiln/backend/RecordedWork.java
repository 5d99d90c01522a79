package dev.kiln.backend;

/**
 * Backend work recorded once by {@link Backend#beginCapture()} and run again, unchanged, by {@link #replay()}: a CUDA
 * graph on the GPU, a list of calls on the CPU. The buffers it reads and writes are fixed at capture; their memory
 * stays reserved until {@link #close()}.
 */
public interface RecordedWork extends AutoCloseable {

    /**
     * Queues the recorded work once more (asynchronously on an asynchronous backend). Throws
     * {@link GraphCaptureException} without running anything when a buffer the work uses was closed since the capture.
     */
    void replay();

    /** Number of recorded operations (kernel launches, library calls, copies), for logs. */
    int operations();

    /** Frees the recorded work and the memory reserved for it. Closing twice is harmless. */
    @Override
    void close();
}
