package dev.kiln.cuda;

/** Device memory ran out even after the allocator's cache was freed. */
public final class CudaOutOfMemoryException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    public CudaOutOfMemoryException(long requested, long free, long total, long heldByKiln) {
        super("CUDA out of memory: requested " + requested + " bytes (" + mib(requested) + " MiB), free " + free
                + " of " + total + " bytes (" + mib(free) + " / " + mib(total) + " MiB); Kiln's open buffers hold "
                + heldByKiln + " bytes");
    }

    private static String mib(long b) {
        return String.format(java.util.Locale.ROOT, "%.1f", b / 1048576.0);
    }
}
