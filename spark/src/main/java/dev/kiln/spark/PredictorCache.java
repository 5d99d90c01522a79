package dev.kiln.spark;

import dev.kiln.core.Device;
import dev.kiln.inference.Predictor;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Supplier;

/**
 * One {@link Predictor} per model and device per executor JVM (per class loader, when Kiln is a user jar): the
 * first task that scores with a model builds it from the broadcast bytes, every later task on that executor
 * reuses it (predictors are thread-safe, so concurrent tasks share it). Entries live until {@link #evict} or the
 * JVM ends, as a Spark executor's broadcast variables do.
 */
public final class PredictorCache {

    private static final Logger LOG = LoggerFactory.getLogger(PredictorCache.class);
    private static final Map<String, Predictor> PREDICTORS = new ConcurrentHashMap<>();

    private PredictorCache() {
    }

    /** The content hash that names a model: SHA-256 of its bytes, hex. */
    public static String modelId(byte[] modelBytes) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(modelBytes));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is not available", e);
        }
    }

    /** The predictor for {@code modelId} on {@code deviceSpec}, built from {@code bytes} the first time. */
    public static Predictor get(String modelId, String deviceSpec, Supplier<byte[]> bytes) {
        return PREDICTORS.computeIfAbsent(modelId + "@" + deviceSpec, key -> {
            try {
                Device device = Device.of(deviceSpec);
                Predictor p = Predictor.load(bytes.get(), Predictor.Options.defaults().device(device));
                LOG.info("loaded model {} on {} for scoring ({} batch norms folded)", modelId.substring(0, 12),
                        device, p.foldedBatchNorms());
                return p;
            } catch (IOException e) {
                throw new UncheckedIOException("model " + modelId + ": cannot load the broadcast model bytes", e);
            }
        });
    }

    /** Number of predictors held by this JVM (this class loader). */
    public static int size() {
        return PREDICTORS.size();
    }

    /** Closes (after calls in flight) and forgets every predictor of {@code modelId}. */
    public static void evict(String modelId) {
        PREDICTORS.entrySet().removeIf(e -> {
            if (e.getKey().startsWith(modelId + "@")) {
                e.getValue().close();
                return true;
            }
            return false;
        });
    }
}
