package dev.kiln.backend;

/**
 * A capture in progress (see {@link Backend#beginCapture()}): the capturing thread calls {@link #recorder()} instead
 * of the backend, then {@link #end()} or, when the work cannot be captured, {@link #abort()}.
 */
public interface GraphCapture {

    /** The backend whose calls are recorded rather than run (may be the capturing backend itself). */
    Backend recorder();

    /** Stops recording and returns the replayable work. */
    RecordedWork end();

    /** Stops recording and discards everything recorded; memory reserved by the capture is returned. */
    void abort();
}
