package dev.kiln.cpu;

import dev.kiln.core.Device;
import dev.kiln.core.ResourceLeaks;
import dev.kiln.core.Tensor;
import dev.kiln.core.TensorScope;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The leak detector names where a forgotten tensor or scope was created; the cleaner releases what it guards. */
class LeakDetectionTest {

    private final List<ResourceLeaks.LeakReport> reports = new CopyOnWriteArrayList<>();
    private final Consumer<ResourceLeaks.LeakReport> listener = reports::add;
    private ResourceLeaks.Level level;
    private int maxScopes;

    @BeforeEach
    void paranoid() {
        level = ResourceLeaks.level();
        maxScopes = ResourceLeaks.maxOpenScopes();
        ResourceLeaks.setLevel(ResourceLeaks.Level.PARANOID);
        ResourceLeaks.addCapturingListener(listener);
    }

    @AfterEach
    void restore() {
        ResourceLeaks.removeListener(listener);
        ResourceLeaks.setLevel(level);
        ResourceLeaks.setMaxOpenScopes(maxScopes);
    }

    private static boolean mentions(ResourceLeaks.LeakReport r, String method) {
        return r.createdAt() != null && Arrays.stream(r.createdAt()).anyMatch(e -> e.getMethodName().equals(method));
    }

    private static void leakATensor() {
        Tensor.unscoped(Device.cpu(), new float[64], 64);   // never closed
    }

    private void awaitReport(String method) throws InterruptedException {
        for (int i = 0; i < 200 && reports.stream().noneMatch(r -> mentions(r, method)); i++) {
            System.gc();
            Thread.sleep(20);
        }
    }

    @Test
    @DisplayName("a tensor garbage-collected without close() is reported with the method that created it")
    void unclosedTensor() throws Exception {
        leakATensor();
        awaitReport("leakATensor");
        ResourceLeaks.LeakReport r = reports.stream().filter(x -> mentions(x, "leakATensor")).findFirst()
                .orElseThrow(() -> new AssertionError("no leak report naming leakATensor: " + reports));
        assertEquals("tensor", r.kind());
        assertTrue(r.toString().startsWith("LEAK: "), r.toString());
    }

    @Test
    @DisplayName("closed tensors are never reported")
    void closedTensorIsQuiet() throws Exception {
        for (int i = 0; i < 50; i++) {
            Tensor.unscoped(Device.cpu(), new float[64], 64).close();
            try (TensorScope s = TensorScope.open()) {
                Tensor.zeros(Device.cpu(), 8).add(1f);
            }
        }
        for (int i = 0; i < 5; i++) {
            System.gc();
            Thread.sleep(20);
        }
        assertTrue(reports.stream().noneMatch(r -> mentions(r, "closedTensorIsQuiet")), reports.toString());
    }

    private static void forgetScopes(int n) {
        for (int i = 0; i < n; i++) {
            TensorScope.open();   // a request handler that forgets to close its scope
            Tensor.zeros(Device.cpu(), 16);
        }
    }

    @Test
    @DisplayName("a pooled thread piling up unclosed TensorScopes is reported, naming where the oldest was opened")
    void forgottenScopes() throws Exception {
        ResourceLeaks.setMaxOpenScopes(8);
        Thread worker = new Thread(() -> forgetScopes(9), "request-thread");
        worker.start();
        worker.join();
        ResourceLeaks.LeakReport r = reports.stream().filter(x -> x.kind().equals("TensorScope")).findFirst()
                .orElseThrow(() -> new AssertionError("no TensorScope report: " + reports));
        assertTrue(r.message().contains("9 TensorScopes are open on thread 'request-thread'"), r.message());
        assertTrue(mentions(r, "forgetScopes"), r.toString());
    }

    @Test
    @DisplayName("the last-resort cleaner releases what an unreachable resource guarded, once; a closed one never")
    void cleanerReleases() throws Exception {
        AtomicInteger released = new AtomicInteger();
        registerAndDrop(released);
        ResourceLeaks.Tracker closed = ResourceLeaks.trackWithRelease(new Object(), "test buffer", released::incrementAndGet);
        closed.close();
        for (int i = 0; i < 200 && released.get() == 0; i++) {
            System.gc();
            Thread.sleep(20);
        }
        assertEquals(1, released.get());
    }

    private static void registerAndDrop(AtomicInteger released) {
        ResourceLeaks.trackWithRelease(new Object(), "test buffer", released::incrementAndGet);
    }
}
