package dev.kiln.backend;

/**
 * Something that cannot be part of a captured graph was attempted while capturing (reading data back to the host,
 * uploading from the host, a per-step host value baked into the work), or a replay found its buffers closed. Callers
 * that capture opportunistically catch it and run eagerly.
 */
public class GraphCaptureException extends IllegalStateException {

    public GraphCaptureException(String message) {
        super(message);
    }

    public GraphCaptureException(String message, Throwable cause) {
        super(message, cause);
    }
}
