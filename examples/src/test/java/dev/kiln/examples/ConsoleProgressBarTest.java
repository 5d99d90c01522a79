package dev.kiln.examples;

import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ConsoleProgressBarTest {

    private static final long MS = 1_000_000L;

    @Test
    @DisplayName("the ETA follows the last seconds' pace: a slow start (JIT warm-up) does not inflate it")
    void etaFromRecentPace() {
        AtomicLong now = new AtomicLong();
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        ConsoleProgressBar bar = new ConsoleProgressBar(new PrintStream(bytes, true, StandardCharsets.UTF_8), now::get);
        bar.onEpochStart(0, 1, 1000);
        bar.onBatch(0, 0, 1000, 2.3, 10);
        assertEquals("?", bar.eta(999), "no pace measured yet");
        // 10 slow batches over the first 2 s (200 ms each), then 190 fast ones at 5 ms each: 0.95 s more
        for (int b = 1; b < 10; b++) {
            now.addAndGet(200 * MS);
            bar.onBatch(0, b, 1000, 2.0, 100);
        }
        now.addAndGet(200 * MS);
        bar.onBatch(0, 10, 1000, 2.0, 100); // closes the first window: 2 s for 10 batches
        for (int b = 11; b < 600; b++) {
            now.addAndGet(5 * MS);
            bar.onBatch(0, b, 1000, 0.5, 10_000);
        }
        // the last window ran at 5 ms per batch: 400 batches left take 2 s, where the epoch's average says 21 s
        assertEquals("2s", bar.eta(400));
        assertTrue(bytes.toString(StandardCharsets.UTF_8).contains("ETA 2s"), bytes.toString(StandardCharsets.UTF_8));
    }

    @Test
    @DisplayName("breakLine ends an open bar line once, so that an interrupt message gets a line of its own")
    void breakLine() {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        ConsoleProgressBar bar = new ConsoleProgressBar(new PrintStream(bytes, true, StandardCharsets.UTF_8), () -> 0L);
        bar.breakLine();
        assertEquals("", bytes.toString(StandardCharsets.UTF_8), "no bar drawn: nothing to end");
        bar.onEpochStart(0, 1, 10);
        bar.onBatch(0, 0, 10, 1.0, 1.0);
        String drawn = bytes.toString(StandardCharsets.UTF_8);
        assertTrue(drawn.startsWith("\repoch 1/1") && !drawn.endsWith("\n"), drawn);
        bar.breakLine();
        bar.breakLine();
        assertEquals(drawn + System.lineSeparator(), bytes.toString(StandardCharsets.UTF_8));
    }
}
