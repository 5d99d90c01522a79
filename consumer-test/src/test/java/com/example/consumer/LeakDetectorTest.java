package com.example.consumer;

import dev.kiln.core.Device;
import dev.kiln.core.ResourceLeaks;
import dev.kiln.core.Tensor;
import dev.kiln.core.TensorScope;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertTrue;

class LeakDetectorTest {

    /** A request handler with a bug: it opens a scope per request and never closes it. */
    private static void handleRequestForgettingScope() {
        TensorScope.open();
        Tensor.zeros(Device.cpu(), 1, 28, 28).add(1f);
    }

    private static void handleRequestForgettingTensor() {
        Tensor.unscoped(Device.cpu(), new float[784], 1, 28, 28);
    }

    @Test
    @DisplayName("forgotten scopes on a pooled thread and an unclosed tensor are reported, naming the method that created them")
    void leaksAreReported() throws Exception {
        List<ResourceLeaks.LeakReport> reports = new CopyOnWriteArrayList<>();
        Consumer<ResourceLeaks.LeakReport> listener = reports::add;
        ResourceLeaks.Level level = ResourceLeaks.level();
        int maxScopes = ResourceLeaks.maxOpenScopes();
        ResourceLeaks.addCapturingListener(listener);
        ResourceLeaks.setLevel(ResourceLeaks.Level.PARANOID);
        ResourceLeaks.setMaxOpenScopes(16);
        ExecutorService requestPool = Executors.newSingleThreadExecutor();
        try {
            for (int i = 0; i < 20; i++) {
                requestPool.submit(LeakDetectorTest::handleRequestForgettingScope).get();
            }
            handleRequestForgettingTensor();
            for (int i = 0; i < 200 && reports.stream().noneMatch(r -> names(r, "handleRequestForgettingTensor")); i++) {
                System.gc();
                Thread.sleep(20);
            }
        } finally {
            requestPool.shutdownNow();
            requestPool.awaitTermination(10, TimeUnit.SECONDS);
            // the forgotten scopes' tensors are reported as the collector finds them: wait until none comes, so
            // that they are reported here and not in the log of a later test
            int seen = -1;
            for (int quiet = 0, i = 0; quiet < 10 && i < 300; i++) {
                System.gc();
                Thread.sleep(20);
                quiet = reports.size() == seen ? quiet + 1 : 0;
                seen = reports.size();
            }
            ResourceLeaks.removeListener(listener);
            ResourceLeaks.setLevel(level);
            ResourceLeaks.setMaxOpenScopes(maxScopes);
        }
        assertTrue(reports.stream().anyMatch(r -> r.kind().equals("TensorScope") && names(r, "handleRequestForgettingScope")),
                "scope leak reported: " + reports);
        assertTrue(reports.stream().anyMatch(r -> r.kind().equals("tensor") && names(r, "handleRequestForgettingTensor")),
                "tensor leak reported: " + reports);
    }

    private static boolean names(ResourceLeaks.LeakReport r, String method) {
        return r.createdAt() != null && Arrays.stream(r.createdAt()).anyMatch(e -> e.getMethodName().equals(method));
    }
}
