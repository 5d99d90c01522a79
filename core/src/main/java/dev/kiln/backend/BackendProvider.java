package dev.kiln.backend;

import java.util.Map;
import java.util.Optional;

/**
 * Found with {@link java.util.ServiceLoader}: a module that implements a backend lists its provider in
 * {@code META-INF/services/dev.kiln.backend.BackendProvider}. Probing must be cheap and must never crash the JVM
 * on a machine without the backend's hardware or native libraries.
 */
public interface BackendProvider {

    /** The name {@code Device} uses: "cpu", "cuda". */
    String name();

    /** Higher wins in {@code Device.auto()}. The CPU backend is 0. */
    int priority();

    /** Empty when the backend can be created here; otherwise why not, in one line ("no libcuda.so.1", ...). */
    Optional<String> unavailableReason();

    /**
     * Creates a backend. {@code options} carries settings such as {@code threads} for the CPU or {@code index}
     * for a GPU; unknown keys are ignored.
     */
    Backend create(Map<String, String> options);
}
