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
 * options (thread count, pool size, class loader) builds its own and closes it when done, or installs it as the
 * default ({@link #setDefaults}).
 * <p>
 * Discovery looks through the class loader that loaded Kiln as well as the given (or context) one, so Kiln loaded in
 * a child class loader (as Spark and Flink load user jars) finds the backends beside it, and a default registry that
 * found no backend is not kept: the next call looks again. {@link #releaseDefaults()} closes the default registry's
 * backends (threads, memory pools) for a service that stops using Kiln without stopping the JVM.
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
        Map<String, BackendProvider> found = new LinkedHashMap<>();
        discover(classLoader, found);
        discover(Devices.class.getClassLoader(), found);
        List<BackendProvider> sorted = new ArrayList<>(found.values());
        sorted.sort(Comparator.comparingInt(BackendProvider::priority).reversed());
        this.providers = List.copyOf(sorted);
        this.options = Map.copyOf(options);
    }

    /** Adds the providers {@code loader} sees and that implement this Kiln's SPI; the first of each name wins. */
    private static void discover(ClassLoader loader, Map<String, BackendProvider> found) {
        if (loader == null) {
            return;
        }
        java.util.Iterator<BackendProvider> it = ServiceLoader.load(BackendProvider.class, loader).iterator();
        while (true) {
            BackendProvider p;
            try {
                if (!it.hasNext()) {
                    return;
                }
                p = it.next();
            } catch (java.util.ServiceConfigurationError e) {
                // e.g. a provider of another copy of Kiln on a parent loader: not ours, skip it
                LOG.debug("skipping a backend provider: {}", e.getMessage());
                continue;
            }
            found.putIfAbsent(p.name(), p);
        }
    }

    /**
     * The process-wide registry, created on first use from the context class loader and Kiln's own, with the
     * options of {@link #setDefaults} or none. A registry that found no backend is not kept.
     */
    public static Devices defaults() {
        Devices d = defaults;
        if (d == null) {
            synchronized (Devices.class) {
                d = defaults;
                if (d == null) {
                    d = new Devices(Thread.currentThread().getContextClassLoader(), Map.of());
                    if (!d.providers.isEmpty()) {
                        defaults = d;
                    }
                }
            }
        }
        return d;
    }

    /**
     * Makes {@code registry} the default (for {@code Device.cpu()/auto()} and everything that uses them) and returns
     * the previous default, which the caller may close; null clears it.
     */
    public static Devices setDefaults(Devices registry) {
        synchronized (Devices.class) {
            Devices old = defaults;
            defaults = registry;
            return old;
        }
    }

    /**
     * Closes the default registry's backends (their threads and memory pools) and forgets it; the next use creates a
     * new one. Tensors and models on its devices must not be used afterwards.
     */
    public static void releaseDefaults() {
        Devices old;
        synchronized (Devices.class) {
            old = defaults;
            defaults = null;
        }
        if (old != null) {
            old.close();
        }
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
