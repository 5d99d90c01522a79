package dev.kiln.core;

/**
 * Whether operations record the autograd graph, per thread (so a service can run no-grad inference on some threads
 * while others train). Use {@code try (var g = GradMode.noGrad()) { ... }}.
 */
public final class GradMode implements AutoCloseable {

    private static final ThreadLocal<Boolean> ENABLED = ThreadLocal.withInitial(() -> Boolean.TRUE);

    private final boolean previous;

    private GradMode(boolean enabled) {
        previous = ENABLED.get();
        ENABLED.set(enabled);
    }

    /** Disables graph recording on this thread until the returned scope is closed. */
    public static GradMode noGrad() {
        return new GradMode(false);
    }

    /** Re-enables graph recording on this thread until the returned scope is closed. */
    public static GradMode enableGrad() {
        return new GradMode(true);
    }

    public static boolean isEnabled() {
        return ENABLED.get();
    }

    @Override
    public void close() {
        ENABLED.set(previous);
    }
}
