package dev.kiln.spark;

import dev.kiln.core.Device;
import dev.kiln.core.Generator;
import dev.kiln.data.Normalization;
import dev.kiln.models.LeNet5;
import dev.kiln.train.ModelFiles;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The executor-side cache: bounded by count, least recently used first, never closing a predictor in use. */
class PredictorCacheTest {

    private static byte[] model(long seed) {
        try (LeNet5 m = new LeNet5(Device.cpu(), new Generator(seed))) {
            return ModelFiles.toBytes(m, Normalization.MNIST);
        }
    }

    @AfterEach
    void restore() {
        PredictorCache.setMaxEntries(4);
    }

    @Test
    @DisplayName("bounded: the least recently used model is evicted and closed; one still leased stays open until released")
    void boundedLruWithLeases() {
        PredictorCache.setMaxEntries(2);
        List<byte[]> models = new ArrayList<>();
        List<String> ids = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            models.add(model(100 + i));
            ids.add(PredictorCache.modelId(models.get(i)));
        }
        PredictorCache.Lease a = PredictorCache.acquire(ids.get(0), "cpu", () -> models.get(0));
        PredictorCache.Lease b = PredictorCache.acquire(ids.get(1), "cpu", () -> models.get(1));
        b.close();
        // a used again: b is now the least recently used
        try (PredictorCache.Lease again = PredictorCache.acquire(ids.get(0), "cpu", () -> {
            throw new AssertionError("a cached model is not loaded again");
        })) {
            assertSame(a.predictor(), again.predictor());
        }
        PredictorCache.Lease c = PredictorCache.acquire(ids.get(2), "cpu", () -> models.get(2));
        assertEquals(2, PredictorCache.size());
        assertTrue(b.predictor().isClosed(), "the least recently used, unused predictor is closed on eviction");
        assertFalse(a.predictor().isClosed());
        // a is evicted while a task still holds it: it stays open and usable until that task's lease closes
        PredictorCache.setMaxEntries(1);
        assertEquals(1, PredictorCache.size());
        assertFalse(a.predictor().isClosed(), "evicted but still leased");
        assertEquals(1, a.predictor().classes(new byte[1][784]).length);
        a.close();
        assertTrue(a.predictor().isClosed(), "closed when its last lease is released");
        a.close();   // a second close of a lease changes nothing
        assertFalse(c.predictor().isClosed());
        c.close();
        PredictorCache.evict(ids.get(2));
        assertTrue(c.predictor().isClosed());
        assertEquals(0, PredictorCache.size());
    }
}
