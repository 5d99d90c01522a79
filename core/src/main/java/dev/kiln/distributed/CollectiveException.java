package dev.kiln.distributed;

/** A collective exchange failed: a member died, timed out, or sent data that does not fit. */
public class CollectiveException extends RuntimeException {

    public CollectiveException(String message) {
        super(message);
    }

    public CollectiveException(String message, Throwable cause) {
        super(message, cause);
    }
}
