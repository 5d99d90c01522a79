package dev.kiln.core;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.lang.ref.PhantomReference;
import java.lang.ref.Reference;
import java.lang.ref.ReferenceQueue;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.Consumer;

/**
 * Leak detection in the spirit of Netty's {@code ResourceLeakDetector}: a sample of the resources Kiln hands out
 * (tensor storage, {@link TensorScope}s; every one at {@link Level#PARANOID}) remembers where it was created, and
 * when one is garbage-collected without being closed, or when a thread piles up scopes that were never closed, an
 * ERROR names the kind of resource and the creating stack (once per allocation site, then counted). Device memory
 * also gets a phantom-reference cleaner as a last
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

    /**
     * Unclosed resources are found through phantom references on this queue, drained by a daemon thread that runs
     * only while something is registered: it ends once every registered resource has been closed or cleaned (after
     * {@link #REAPER_LINGER_MS} idle) and a later registration starts a new one. A thread made by a class pins its
     * class loader while it runs (the access-control context it inherits names the loader), so a thread that lived
     * for ever would keep an unloaded Kiln in memory: this one holds nothing once the application has closed what it
     * opened. It inherits no thread locals and no context class loader.
     */
    private static final ReferenceQueue<Object> QUEUE = new ReferenceQueue<>();
    private static final Set<Registration> LIVE = ConcurrentHashMap.newKeySet();
    private static final Object REAPER_LOCK = new Object();
    private static final long REAPER_LINGER_MS = 500;
    private static volatile Thread reaper;

    /** Reports per allocation site: the first with its stack, later ones counted. */
    private static final Map<String, AtomicLong> SITES = new ConcurrentHashMap<>();
    /** Distinct sites remembered; beyond this every site's reports are only counted, in one line. */
    private static final int MAX_SITES = 1024;
    private static final AtomicLong UNSITED = new AtomicLong();
    private static final AtomicLong LOGGED_LINES = new AtomicLong();
    private static final AtomicLong LOGGED_STACKS = new AtomicLong();

    /** Log lines written (or, with a capturing listener, that would have been written) for leak reports so far. */
    static long loggedLines() {
        return LOGGED_LINES.get();
    }

    private static final Map<String, AtomicLong> LINES_BY_KIND = new ConcurrentHashMap<>();
    private static final Map<String, AtomicLong> STACKS_BY_KIND = new ConcurrentHashMap<>();

    /** {@link #loggedLines()} for reports of one kind. */
    static long loggedLines(String kind) {
        AtomicLong n = LINES_BY_KIND.get(kind);
        return n == null ? 0 : n.get();
    }

    /** {@link #loggedStacks()} for reports of one kind. */
    static long loggedStacks(String kind) {
        AtomicLong n = STACKS_BY_KIND.get(kind);
        return n == null ? 0 : n.get();
    }

    /** Reports logged with their stack so far (one per allocation site). */
    static long loggedStacks() {
        return LOGGED_STACKS.get();
    }

    /**
     * Loaded with this class: the cleaner may report after the application closed Kiln's class loader, which can
     * then load nothing more.
     */
    private static final Class<?> REPORT_CLASS = LeakReport.class;

    private static final class Registration extends PhantomReference<Object> {
        final State state;

        Registration(Object resource, State state) {
            super(resource, QUEUE);
            this.state = state;
        }
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

    /**
     * Logs {@code r} rate-limited: the first report from an allocation site (kind and creation stack) is logged in
     * full, later ones from that site as one counting line each time the count reaches a power of two; listeners get
     * every report. So a service that leaks the same way a million times logs a few kilobytes.
     */
    static void report(LeakReport r) {
        // the rate limit counts the same with or without a capturing listener; only the writing is skipped then
        boolean write = CAPTURING.isEmpty();
        String site = r.kind() + (r.createdAt() == null ? "" : Arrays.toString(r.createdAt()));
        AtomicLong count = SITES.get(site);
        if (count == null && SITES.size() < MAX_SITES) {
            count = SITES.computeIfAbsent(site, k -> new AtomicLong());
        }
        long n = count == null ? UNSITED.incrementAndGet() : count.incrementAndGet();
        if (count != null && n == 1) {
            LOGGED_STACKS.incrementAndGet();
            LOGGED_LINES.incrementAndGet();
            STACKS_BY_KIND.computeIfAbsent(r.kind(), k -> new AtomicLong()).incrementAndGet();
            LINES_BY_KIND.computeIfAbsent(r.kind(), k -> new AtomicLong()).incrementAndGet();
            if (write) {
                LOG.error("{}", r);
            }
        } else if (Long.bitCount(n) == 1) {
            LOGGED_LINES.incrementAndGet();
            LINES_BY_KIND.computeIfAbsent(r.kind(), k -> new AtomicLong()).incrementAndGet();
            if (write) {
                LOG.error("LEAK: {} reports of a {} {} (stack logged with the first report; further ones counted)", n,
                        r.kind(), count == null ? "from sites beyond the first " + MAX_SITES : "from the same site");
            }
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
        Registration registration = new Registration(resource, state);
        LIVE.add(registration);
        if (reaper == null) {
            startReaper();
        }
        return new Tracker() {
            @Override
            public void close() {
                state.closed = true;
                if (LIVE.remove(registration)) {
                    registration.clear();
                }
            }

            @Override
            public StackTraceElement[] createdAt() {
                return state.trace;
            }
        };
    }

    private static void startReaper() {
        synchronized (REAPER_LOCK) {
            if (reaper != null) {
                return;
            }
            Thread t = new Thread(null, ResourceLeaks::reap, "kiln-resource-cleaner", 0, false);
            t.setDaemon(true);
            t.setContextClassLoader(null);
            reaper = t;
            t.start();
        }
    }

    private static void reap() {
        while (true) {
            Reference<?> ref;
            try {
                ref = QUEUE.remove(REAPER_LINGER_MS);
            } catch (InterruptedException e) {
                ref = null;
            }
            if (ref instanceof Registration r) {
                if (LIVE.remove(r)) {
                    r.state.run();
                }
                continue;
            }
            synchronized (REAPER_LOCK) {
                // cleared before the check: a registration after it sees null and starts a new reaper
                reaper = null;
                if (LIVE.isEmpty()) {
                    return;
                }
                reaper = Thread.currentThread();
            }
        }
    }

    /** Whether the cleaner thread is running (it runs only while resources are registered). */
    static boolean cleanerRunning() {
        return reaper != null;
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
