package dev.kiln.suites;

import dev.kiln.core.Generator;
import dev.kiln.data.Normalization;
import dev.kiln.inference.HotSwapPredictor;
import dev.kiln.inference.Predictor;
import dev.kiln.inference.PredictorClosedException;
import dev.kiln.models.LeNet5;
import dev.kiln.train.ModelFiles;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@link HotSwapPredictor}'s life cycle: close is final, and no predictor is left open behind it. */
public class HotSwapLifecycleSuite extends DeviceSuite {

    private byte[] model;

    private Predictor predictor() throws IOException {
        if (model == null) {
            try (LeNet5 m = new LeNet5(device(), new Generator(5))) {
                model = ModelFiles.toBytes(m, Normalization.MNIST);
            }
        }
        return Predictor.load(model, Predictor.Options.defaults().device(device()));
    }

    @Test
    @DisplayName("after close, swap is refused and closes the predictor it was given; a closed predictor is never swapped in")
    void closeIsFinal() throws IOException {
        Predictor first = predictor();
        HotSwapPredictor service = new HotSwapPredictor(first);
        Predictor second = predictor();
        service.swap(second);
        assertTrue(first.isClosed());
        Predictor closed = predictor();
        closed.close();
        assertThrows(IllegalArgumentException.class, () -> service.swap(closed));
        assertEquals(second, service.current(), "a refused swap changes nothing");
        service.close();
        assertTrue(second.isClosed() && service.isClosed());
        Predictor late = predictor();
        assertThrows(PredictorClosedException.class, () -> service.swap(late));
        assertTrue(late.isClosed(), "the predictor of a refused swap is closed");
        assertThrows(PredictorClosedException.class, () -> service.classes(new byte[1][784]));
        service.close();   // idempotent
        assertThrows(IllegalArgumentException.class, () -> new HotSwapPredictor(closed));
    }

    @Test
    @DisplayName("close and swap racing, 200 times: every predictor ends closed")
    void concurrentCloseAndSwap() throws Exception {
        ExecutorService threads = Executors.newFixedThreadPool(2);
        try {
            int refused = 0;
            for (int trial = 0; trial < 200; trial++) {
                Predictor a = predictor();
                Predictor b = predictor();
                HotSwapPredictor service = new HotSwapPredictor(a);
                CyclicBarrier start = new CyclicBarrier(2);
                Future<Boolean> swap = threads.submit(() -> {
                    start.await();
                    try {
                        service.swap(b);
                        return true;
                    } catch (PredictorClosedException e) {
                        return false;
                    }
                });
                Future<?> close = threads.submit(() -> {
                    start.await();
                    service.close();
                    return null;
                });
                refused += swap.get(60, TimeUnit.SECONDS) ? 0 : 1;
                close.get(60, TimeUnit.SECONDS);
                assertTrue(a.isClosed() && b.isClosed(), "trial " + trial + ": a predictor was left open");
            }
            assertTrue(refused >= 0 && refused <= 200);
        } finally {
            threads.shutdownNow();
        }
    }
}
