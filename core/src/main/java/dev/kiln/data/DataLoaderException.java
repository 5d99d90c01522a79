package dev.kiln.data;

/** Decoding a batch failed (in the background thread or not); the cause is what the data set threw. */
public class DataLoaderException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public DataLoaderException(String message, Throwable cause) {
        super(message, cause);
    }
}
