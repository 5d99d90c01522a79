package dev.kiln.cpu;

import dev.kiln.backend.Backend;
import dev.kiln.backend.BackendProvider;

import java.util.Map;
import java.util.Optional;

/**
 * Provider of the pure-Java backend: name "cpu", priority 0, always available. The thread count comes from the
 * {@code threads} option, else the system property {@code kiln.cpu.threads}, else the number of processors.
 */
public final class CpuBackendProvider implements BackendProvider {

    public static final String THREADS_OPTION = "threads";
    public static final String THREADS_PROPERTY = "kiln.cpu.threads";

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
        return new CpuBackend(resolveThreads(options));
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
