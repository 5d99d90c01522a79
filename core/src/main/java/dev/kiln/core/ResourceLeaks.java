package dev.kiln.core;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.lang.ref.Cleaner;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.Consumer;

/**
 * Leak detection in the spirit of Netty's {@code ResourceLeakDetector}: a sample of the resources Kiln hands out
 * (tensor storage, {@link TensorScope}s; every one at {@link Level#PARANOID}) remembers where it was created, and
 * when one is garbage-collected without being closed, or when a thread piles up scopes that were never closed, an
 * ERROR names the kind of resource and the creating stack. Device memory also gets a {@link Cleaner} as a last
 * resort: a GPU buffer that becomes unreachable without {@code close()} is given back to its backend (deterministic
 * release stays the rule; this only keeps a long-running service from running out).
 * <p>
 * Configured by {@code -Dkiln.leakDetection=disabled|sampled|paranoid} (default sampled),
 * {@code -Dkiln.leakDetection.samplingInterval=N} (one resource in N is tracked when sampled, default 128) and
 * {@code -Dkiln.leakDetection.maxOpenScopes=N} (open scopes on one thread before a report, default 64), or at run
 * time with the setters.
 */
public final class ResourceLeaks {

    private static final Logger LOG = LoggerFactory.getLogger(ResourceLeaks.class);

    /** How much is tracked. */
    public enum Level {
        /** Nothing is tracked (device memory still has its last-resort cleaner). */
        DISABLED,
        /** One resource in {@link #samplingInterval()} records where it was created. */
        SAMPLED,
        /** Every resource records where it was created: slow, for finding a leak. */
        PARANOID
    }

    /** One leak: what kind of resource, a description, and where it was created (null when not recorded). */
    public record LeakReport(String kind, String message, StackTraceElement[] createdAt) {
        @Override
        public String toString() {
            StringBuilder sb = new StringBuilder("LEAK: ").append(message);
            if (createdAt == null) {
                sb.append(" (run with -Dkiln.leakDetection=paranoid to see where it was created)");
            } else {
                sb.append(". Created at:");
                for (StackTraceElement e : createdAt) {
                    sb.append("\n\tat ").append(e);
                }
            }
            return sb.toString();
        }
    }

    /** The handle of a tracked resource; {@link #close()} when the resource is closed properly. */
    public interface Tracker {
        void close();

        /** Where the resource was created, or null when it was not sampled. */
        StackTraceElement[] createdAt();
    }

    private static final Tracker UNTRACKED = new Tracker() {
        @Override
        public void close() {
        }

        @Override
        public StackTraceElement[] createdAt() {
            return null;
        }
    };

    private static volatile Level level = parseLevel(System.getProperty("kiln.leakDetection"));
    private static volatile int samplingInterval = intProperty("kiln.leakDetection.samplingInterval", 128);
    private static volatile int maxOpenScopes = intProperty("kiln.leakDetection.maxOpenScopes", 64);
    private static final List<Consumer<LeakReport>> LISTENERS = new CopyOnWriteArrayList<>();
    /** Listeners that take the reports instead of the ERROR log (code that leaks on purpose and checks it). */
    private static final java.util.Set<Consumer<LeakReport>> CAPTURING = java.util.concurrent.ConcurrentHashMap.newKeySet();

    /** Created on first use; its daemon thread keeps no context class loader. */
    private static final class CleanerHolder {
        static final Cleaner CLEANER = Cleaner.create(r -> {
            Thread t = new Thread(r, "kiln-resource-cleaner");
            t.setDaemon(true);
            t.setContextClassLoader(null);
            return t;
        });
    }

    private ResourceLeaks() {
    }

    public static Level level() {
        return level;
    }

    public static void setLevel(Level l) {
        level = java.util.Objects.requireNonNull(l, "level");
    }

    public static int samplingInterval() {
        return samplingInterval;
    }

    public static void setSamplingInterval(int n) {
        if (n < 1) {
            throw new IllegalArgumentException("sampling interval must be >= 1, got " + n);
        }
        samplingInterval = n;
    }

    public static int maxOpenScopes() {
        return maxOpenScopes;
    }

    public static void setMaxOpenScopes(int n) {
        if (n < 1) {
            throw new IllegalArgumentException("maxOpenScopes must be >= 1, got " + n);
        }
        maxOpenScopes = n;
    }

    /** Receives every report (besides the ERROR log line), e.g. to count leaks in a health check. */
    public static void addListener(Consumer<LeakReport> listener) {
        LISTENERS.add(java.util.Objects.requireNonNull(listener));
    }

    /**
     * Like {@link #addListener}, but while any such listener is registered the reports go to the listeners only, not
     * to the ERROR log: for code that leaks on purpose and checks the reports itself (tests of the detector).
     */
    public static void addCapturingListener(Consumer<LeakReport> listener) {
        addListener(listener);
        CAPTURING.add(listener);
    }

    public static void removeListener(Consumer<LeakReport> listener) {
        CAPTURING.remove(listener);
        LISTENERS.remove(listener);
    }

    /**
     * Tracks {@code resource} when it is sampled: reported if it is garbage-collected before {@link Tracker#close()}.
     */
    public static Tracker track(Object resource, String kind) {
        return track(resource, kind, sampledTrace());
    }

    /** Tracks {@code resource} with a trace already taken by {@link #sampledTrace()} (untracked when null). */
    static Tracker track(Object resource, String kind, StackTraceElement[] trace) {
        if (trace == null) {
            return UNTRACKED;
        }
        return register(resource, new State(kind, trace, null));
    }

    /**
     * Always registers {@code release} to run if {@code resource} is garbage-collected before {@link Tracker#close()}
     * (native memory's last resort); a sampled resource is also reported. {@code release} must not refer to
     * {@code resource}, or it would never become unreachable.
     */
    public static Tracker trackWithRelease(Object resource, String kind, Runnable release) {
        return register(resource, new State(kind, sampledTrace(), java.util.Objects.requireNonNull(release)));
    }

    /** A creation trace when this resource is sampled, else null. */
    static StackTraceElement[] sampledTrace() {
        Level l = level;
        if (l == Level.DISABLED) {
            return null;
        }
        if (l == Level.SAMPLED && ThreadLocalRandom.current().nextInt(samplingInterval) != 0) {
            return null;
        }
        StackTraceElement[] full = new Throwable().getStackTrace();
        // drop the frames inside this class
        int skip = 0;
        while (skip < full.length && full[skip].getClassName().equals(ResourceLeaks.class.getName())) {
            skip++;
        }
        return Arrays.copyOfRange(full, skip, full.length);
    }

    static void report(LeakReport r) {
        if (CAPTURING.isEmpty()) {
            LOG.error("{}", r);
        }
        for (Consumer<LeakReport> l : LISTENERS) {
            try {
                l.accept(r);
            } catch (RuntimeException e) {
                LOG.warn("leak listener failed: {}", e.toString());
            }
        }
    }

    private static Tracker register(Object resource, State state) {
        Cleaner.Cleanable cleanable = CleanerHolder.CLEANER.register(resource, state);
        return new Tracker() {
            @Override
            public void close() {
                state.closed = true;
                cleanable.clean();
            }

            @Override
            public StackTraceElement[] createdAt() {
                return state.trace;
            }
        };
    }

    /** The cleaning action: refers to nothing of the resource itself. */
    private static final class State implements Runnable {
        final String kind;
        final StackTraceElement[] trace;
        final Runnable release;
        volatile boolean closed;

        State(String kind, StackTraceElement[] trace, Runnable release) {
            this.kind = kind;
            this.trace = trace;
            this.release = release;
        }

        @Override
        public void run() {
            if (closed) {
                return;
            }
            if (trace != null) {
                report(new LeakReport(kind, "a " + kind + " was garbage-collected without close()"
                        + (release != null ? "; its memory was released by the cleaner" : ""), trace));
            }
            if (release != null) {
                try {
                    release.run();
                } catch (RuntimeException e) {
                    LOG.warn("releasing an unclosed {} failed: {}", kind, e.toString());
                }
            }
        }
    }

    private static Level parseLevel(String s) {
        if (s == null || s.isBlank()) {
            return Level.SAMPLED;
        }
        try {
            return Level.valueOf(s.trim().toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            LOG.warn("ignoring kiln.leakDetection={} (expected disabled, sampled or paranoid)", s);
            return Level.SAMPLED;
        }
    }

    private static int intProperty(String name, int fallback) {
        String s = System.getProperty(name);
        if (s == null || s.isBlank()) {
            return fallback;
        }
        try {
            int v = Integer.parseInt(s.trim());
            if (v >= 1) {
                return v;
            }
        } catch (NumberFormatException ignored) {
            // reported below
        }
        LOG.warn("ignoring {}={} (expected a positive integer)", name, s);
        return fallback;
    }
}
