package dev.kiln.cpu;

import dev.kiln.backend.Backend;
import dev.kiln.backend.BackendProvider;

import java.util.Map;
import java.util.Optional;

/**
 * Provider of the pure-Java backend: name "cpu", priority 0, always available. The thread count comes from the
 * {@code threads} option, else the system property {@code kiln.cpu.threads}, else the number of processors; the
 * array pool's bound from the {@code poolBytes} option, else {@code kiln.cpu.poolBytes}.
 */
public final class CpuBackendProvider implements BackendProvider {

    public static final String THREADS_OPTION = "threads";
    public static final String THREADS_PROPERTY = "kiln.cpu.threads";
    /** Bound of the backend's pool of reusable arrays in bytes (default: a quarter of the heap, at most 512 MiB). */
    public static final String POOL_BYTES_OPTION = "poolBytes";

    @Override
    public String name() {
        return "cpu";
    }

    @Override
    public int priority() {
        return 0;
    }

    @Override
    public Optional<String> unavailableReason() {
        return Optional.empty();
    }

    @Override
    public Backend create(Map<String, String> options) {
        String pool = options == null ? null : options.get(POOL_BYTES_OPTION);
        if (pool == null) {
            return new CpuBackend(resolveThreads(options));
        }
        long bytes;
        try {
            bytes = Long.parseLong(pool.trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("cpu backend: option '" + POOL_BYTES_OPTION
                    + "' must be a number of bytes, got '" + pool + "'", e);
        }
        if (bytes < 0) {
            throw new IllegalArgumentException("cpu backend: option '" + POOL_BYTES_OPTION + "' must be >= 0, got " + bytes);
        }
        return new CpuBackend(resolveThreads(options), bytes);
    }

    static int resolveThreads(Map<String, String> options) {
        String value = options == null ? null : options.get(THREADS_OPTION);
        String source = "option '" + THREADS_OPTION + "'";
        if (value == null) {
            value = System.getProperty(THREADS_PROPERTY);
            source = "system property " + THREADS_PROPERTY;
        }
        if (value == null || value.isBlank()) {
            return Runtime.getRuntime().availableProcessors();
        }
        int threads;
        try {
            threads = Integer.parseInt(value.trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("cpu backend: " + source + " must be a positive integer, got '" + value + "'", e);
        }
        if (threads < 1) {
            throw new IllegalArgumentException("cpu backend: " + source + " must be a positive integer, got " + threads);
        }
        return threads;
    }
}
