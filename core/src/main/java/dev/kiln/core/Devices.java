package dev.kiln.core;

import dev.kiln.backend.Backend;
import dev.kiln.backend.BackendProvider;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.ServiceLoader;

/**
 * A registry of backends discovered with {@link ServiceLoader}, creating each device's backend once. The default
 * registry ({@link #defaults()}) serves {@code Device.cpu()/cuda()/auto()}; an embedding application that wants other
 * options (thread count, class loader) builds its own and closes it when done.
 */
public final class Devices implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(Devices.class);
    private static volatile Devices defaults;

    private final List<BackendProvider> providers;
    private final Map<String, String> options;
    private final Map<String, Device> created = new HashMap<>();

    /**
     * @param classLoader where to look for {@code META-INF/services/dev.kiln.backend.BackendProvider}
     * @param options     passed to every provider's {@code create} (e.g. {@code threads=4} for the CPU)
     */
    public Devices(ClassLoader classLoader, Map<String, String> options) {
        List<BackendProvider> found = new ArrayList<>();
        for (BackendProvider p : ServiceLoader.load(BackendProvider.class, classLoader)) {
            found.add(p);
        }
        found.sort(Comparator.comparingInt(BackendProvider::priority).reversed());
        this.providers = List.copyOf(found);
        this.options = Map.copyOf(options);
    }

    /** The process-wide registry, created on first use from the context class loader with no options. */
    public static Devices defaults() {
        Devices d = defaults;
        if (d == null) {
            synchronized (Devices.class) {
                d = defaults;
                if (d == null) {
                    ClassLoader cl = Thread.currentThread().getContextClassLoader();
                    d = new Devices(cl != null ? cl : Devices.class.getClassLoader(), Map.of());
                    defaults = d;
                }
            }
        }
        return d;
    }

    /** Names of the backends found, highest priority first. */
    public List<String> backendNames() {
        return providers.stream().map(BackendProvider::name).toList();
    }

    /** For each backend found: empty if usable here, otherwise why not. */
    public Map<String, Optional<String>> availability() {
        Map<String, Optional<String>> out = new LinkedHashMap<>();
        for (BackendProvider p : providers) {
            out.put(p.name(), safeReason(p));
        }
        return out;
    }

    /** "cpu", "cuda", "cuda:N" or "auto" (honouring {@code kiln.device} / {@code KILN_DEVICE}). */
    public synchronized Device get(String spec) {
        String s = spec.trim().toLowerCase(Locale.ROOT);
        if (s.equals("auto")) {
            String override = System.getProperty("kiln.device");
            if (override == null || override.isBlank()) {
                override = System.getenv("KILN_DEVICE");
            }
            if (override != null && !override.isBlank() && !override.trim().equalsIgnoreCase("auto")) {
                return get(override);
            }
            return autoSelect();
        }
        Device existing = created.get(s);
        if (existing != null) {
            return existing;
        }
        String type = s;
        String index = null;
        int colon = s.indexOf(':');
        if (colon >= 0) {
            type = s.substring(0, colon);
            index = s.substring(colon + 1);
        }
        BackendProvider provider = find(type);
        Optional<String> reason = safeReason(provider);
        if (reason.isPresent()) {
            throw new IllegalStateException("device '" + spec + "' is not available: " + reason.get());
        }
        Map<String, String> opts = new HashMap<>(options);
        if (index != null) {
            opts.put("index", index);
        }
        Backend backend = provider.create(opts);
        Device device = Device.of(s, backend);
        created.put(s, device);
        LOG.debug("created device {}: {}", s, backend.description());
        return device;
    }

    private Device autoSelect() {
        List<String> why = new ArrayList<>();
        for (BackendProvider p : providers) {
            Optional<String> reason = safeReason(p);
            if (reason.isEmpty()) {
                try {
                    Device d = get(p.name());
                    if (!why.isEmpty()) {
                        LOG.info("using device {}: {}", d.name(), String.join("; ", why));
                    }
                    return d;
                } catch (RuntimeException | LinkageError e) {
                    why.add(p.name() + " failed to start (" + e.getMessage() + ")");
                }
            } else {
                why.add(p.name() + " unavailable (" + reason.get() + ")");
            }
        }
        throw new IllegalStateException("no backend is available: " + (why.isEmpty()
                ? "none found on the class path (add kiln-cpu-fallback)" : String.join("; ", why)));
    }

    private BackendProvider find(String type) {
        for (BackendProvider p : providers) {
            if (p.name().equals(type)) {
                return p;
            }
        }
        throw new IllegalArgumentException("unknown device '" + type + "': backends on the class path are "
                + backendNames() + (type.equals("cuda") ? " (add the kiln-cuda module for GPUs)" : ""));
    }

    private static Optional<String> safeReason(BackendProvider p) {
        try {
            return p.unavailableReason();
        } catch (RuntimeException | LinkageError e) {
            return Optional.of("probe failed: " + e);
        }
    }

    /** Closes every backend this registry created. */
    @Override
    public synchronized void close() {
        for (Device d : created.values()) {
            d.backend().close();
        }
        created.clear();
    }
}
