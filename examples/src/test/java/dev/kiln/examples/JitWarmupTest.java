package dev.kiln.examples;

import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class JitWarmupTest {

    @Test
    @DisplayName("a warm-up capped at zero makes exactly the calls asked for")
    void capZeroStopsAtTheCallsAskedFor() {
        AtomicInteger calls = new AtomicInteger();
        assertEquals(7, JitWarmup.run(calls::incrementAndGet, 7, 0L, 0L));
        assertEquals(7, calls.get());
    }

    @Test
    @DisplayName("a warm-up lasts at least its minimum time and calls, and no longer than its cap past them")
    void minimumTimeAndCap() {
        AtomicInteger calls = new AtomicInteger();
        long t0 = System.nanoTime();
        int made = JitWarmup.run(() -> {
            calls.incrementAndGet();
            long until = System.nanoTime() + 1_000_000L;
            while (System.nanoTime() < until) {
                Thread.onSpinWait();
            }
        }, 3, 50_000_000L, 2_000_000_000L);
        long elapsed = System.nanoTime() - t0;
        assertEquals(calls.get(), made);
        assertTrue(made >= 3, "calls: " + made);
        assertTrue(elapsed >= 50_000_000L, "the warm-up took " + elapsed + " ns, under its 50 ms minimum");
        // the cap bounds the wait for an idle JIT; one call of 1 ms may finish past it
        assertTrue(elapsed < 2_500_000_000L, "the warm-up took " + elapsed + " ns, past its 2 s cap");
    }
}
