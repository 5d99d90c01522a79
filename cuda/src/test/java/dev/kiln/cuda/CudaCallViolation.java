package dev.kiln.cuda;

/**
 * A call the checking stand-in for the driver rejected: a pointer outside a live allocation, a launch that does not
 * fit its kernel, a descriptor that does not match its tensor, a leak. An {@link AssertionError}, so no
 * {@code catch (RuntimeException)} in the backend can swallow it.
 */
final class CudaCallViolation extends AssertionError {

    CudaCallViolation(String message) {
        super(message);
    }
}
