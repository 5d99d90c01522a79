package dev.kiln.spark;

import dev.kiln.core.Device;
import dev.kiln.inference.Predictor;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

/**
 * The predictors of an executor JVM (of a class loader, when Kiln is a user jar), one per model and device: the
 * first task that scores with a model builds it from the broadcast bytes, every later task on that executor reuses
 * it (predictors are thread-safe, so concurrent tasks share it).
 * <p>
 * Bounded by count: at most {@link #maxEntries()} predictors (default 4, {@code -Dkiln.spark.predictorCache.maxEntries}
 * or {@link #setMaxEntries}); when a new one would exceed it, the least recently used is evicted. A task holds its
 * predictor through a {@link Lease}, and an evicted predictor is closed only when the last task using it has
 * closed its lease, so eviction never closes a model under a running task (the count may exceed the bound while
 * evicted predictors finish their tasks). Loading a model holds the cache's lock, so first loads on one executor
 * run one at a time.
 */
public final class PredictorCache {

    private static final Logger LOG = LoggerFactory.getLogger(PredictorCache.class);
    private static final Object LOCK = new Object();
    /** In access order: the first entry is the least recently used. Guarded by {@link #LOCK}. */
    private static final LinkedHashMap<String, Entry> ENTRIES = new LinkedHashMap<>(16, 0.75f, true);
    private static volatile int maxEntries = Math.max(1, Integer.getInteger("kiln.spark.predictorCache.maxEntries", 4));

    private PredictorCache() {
    }

    /** A predictor lent to one task; close it when the task is done with the predictor. */
    public static final class Lease implements AutoCloseable {
        private final Entry entry;
        private boolean released;

        private Lease(Entry entry) {
            this.entry = entry;
        }

        public Predictor predictor() {
            return entry.predictor;
        }

        @Override
        public void close() {
            if (!released) {
                released = true;
                entry.release();
            }
        }
    }

    private static final class Entry {
        final String key;
        final Predictor predictor;
        /** Guarded by {@link #LOCK}. */
        int users;
        /** Guarded by {@link #LOCK}. */
        boolean evicted;

        Entry(String key, Predictor predictor) {
            this.key = key;
            this.predictor = predictor;
        }

        void release() {
            boolean close;
            synchronized (LOCK) {
                users--;
                close = users == 0 && evicted;
            }
            if (close) {
                predictor.close();
            }
        }
    }

    /** The content hash that names a model: SHA-256 of its bytes, hex. */
    public static String modelId(byte[] modelBytes) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(modelBytes));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is not available", e);
        }
    }

    /** Lends the predictor for {@code modelId} on {@code deviceSpec}, built from {@code bytes} the first time. */
    public static Lease acquire(String modelId, String deviceSpec, Supplier<byte[]> bytes) {
        List<Predictor> toClose = new ArrayList<>();
        Lease lease;
        synchronized (LOCK) {
            String key = modelId + "@" + deviceSpec;
            Entry e = ENTRIES.get(key);
            if (e == null) {
                e = new Entry(key, load(modelId, deviceSpec, bytes));
                ENTRIES.put(key, e);
                evictBeyond(maxEntries, toClose);
            }
            e.users++;
            lease = new Lease(e);
        }
        toClose.forEach(Predictor::close);
        return lease;
    }

    private static Predictor load(String modelId, String deviceSpec, Supplier<byte[]> bytes) {
        try {
            Device device = Device.of(deviceSpec);
            Predictor p = Predictor.load(bytes.get(), Predictor.Options.defaults().device(device));
            LOG.info("loaded model {} on {} for scoring ({} batch norms folded)", modelId.substring(0, 12),
                    device, p.foldedBatchNorms());
            return p;
        } catch (IOException e) {
            throw new UncheckedIOException("model " + modelId + ": cannot load the broadcast model bytes", e);
        }
    }

    /** Evicts least recently used entries beyond {@code bound}; collects the predictors no task uses. */
    private static void evictBeyond(int bound, List<Predictor> toClose) {
        Iterator<Entry> it = ENTRIES.values().iterator();
        while (ENTRIES.size() > bound && it.hasNext()) {
            Entry eldest = it.next();
            it.remove();
            evict(eldest, toClose);
        }
    }

    private static void evict(Entry e, List<Predictor> toClose) {
        e.evicted = true;
        LOG.info("evicting model {} from the predictor cache{}", e.key.substring(0, Math.min(12, e.key.length())),
                e.users > 0 ? " (closed when its " + e.users + " task(s) finish)" : "");
        if (e.users == 0) {
            toClose.add(e.predictor);
        }
    }

    /** Most predictors kept; lowering it evicts at once. */
    public static void setMaxEntries(int max) {
        if (max < 1) {
            throw new IllegalArgumentException("maxEntries must be at least 1, got " + max);
        }
        List<Predictor> toClose = new ArrayList<>();
        synchronized (LOCK) {
            maxEntries = max;
            evictBeyond(max, toClose);
        }
        toClose.forEach(Predictor::close);
    }

    public static int maxEntries() {
        return maxEntries;
    }

    /** Number of predictors held by this JVM (this class loader), evicted ones still in use not counted. */
    public static int size() {
        synchronized (LOCK) {
            return ENTRIES.size();
        }
    }

    /** Evicts every predictor of {@code modelId}: closed now, or when the last task using it finishes. */
    public static void evict(String modelId) {
        List<Predictor> toClose = new ArrayList<>();
        synchronized (LOCK) {
            Iterator<Map.Entry<String, Entry>> it = ENTRIES.entrySet().iterator();
            while (it.hasNext()) {
                Map.Entry<String, Entry> e = it.next();
                if (e.getKey().startsWith(modelId + "@")) {
                    it.remove();
                    evict(e.getValue(), toClose);
                }
            }
        }
        toClose.forEach(Predictor::close);
    }
}
