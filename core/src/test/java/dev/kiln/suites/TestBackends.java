package dev.kiln.suites;

import dev.kiln.backend.Backend;
import dev.kiln.backend.BackendProvider;
import dev.kiln.core.Device;
import dev.kiln.core.Devices;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.ServiceLoader;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The backends the generic suites run on: every {@link BackendProvider} on the class path, or those named in the
 * system property {@code kiln.test.backends} (comma-separated; each backend module's build names its own, so a module
 * that has another backend on its test class path does not test that one again). A backend that cannot run here
 * (no GPU) still gets its run, whose tests are skipped with the provider's reason: never silently absent.
 */
public final class TestBackends {

    private TestBackends() {
    }

    /** The method source of every generic suite: one class run per backend name. */
    public static List<String> names() {
        String wanted = System.getProperty("kiln.test.backends", "").trim();
        if (!wanted.isEmpty()) {
            return Arrays.stream(wanted.split(",")).map(String::trim).filter(s -> !s.isEmpty()).toList();
        }
        return Devices.defaults().backendNames();
    }

    private static BackendProvider provider(String name) {
        for (BackendProvider p : ServiceLoader.load(BackendProvider.class)) {
            if (p.name().equals(name)) {
                return p;
            }
        }
        throw new IllegalStateException("backend '" + name + "' is not on the test class path");
    }

    /** Aborts the calling test, naming why, when backend {@code name} cannot run on this machine. */
    public static void require(String name) {
        Optional<String> reason = provider(name).unavailableReason();
        assumeTrue(reason.isEmpty(), () -> name + " is not available here: " + reason.orElse(""));
    }

    /** The default registry's device for {@code name}, after {@link #require}. */
    public static Device device(String name) {
        require(name);
        return Devices.defaults().get(name);
    }

    /** A new backend instance of {@code name} (the caller closes it), after {@link #require}. */
    public static Backend newBackend(String name) {
        require(name);
        return provider(name).create(Map.of());
    }
}
