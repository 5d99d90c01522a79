package dev.kiln.spark;

import org.junit.jupiter.api.Test;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A killed barrier task stops at once: its connections are closed and its training thread interrupted. */
class WatchdogTest {

    @Test
    void aKilledTaskHasItsConnectionsClosedAndItsThreadInterrupted() throws Exception {
        AtomicBoolean killed = new AtomicBoolean();
        CountDownLatch closed = new CountDownLatch(1);
        try (TrainPartition.Watchdog ignored = TrainPartition.Watchdog.start("task 1", killed::get,
                () -> "another task failed", closed::countDown)) {
            Thread.sleep(600);
            assertFalse(Thread.currentThread().isInterrupted(), "nothing happens while the task lives");
            assertTrue(closed.getCount() == 1, "connections stay open while the task lives");
            killed.set(true);
            long t0 = System.nanoTime();
            boolean interrupted = false;
            try {
                Thread.sleep(10_000);
            } catch (InterruptedException e) {
                interrupted = true;
            }
            double seconds = (System.nanoTime() - t0) / 1e9;
            assertTrue(interrupted, "the training thread was interrupted");
            assertTrue(seconds < 5, "within " + seconds + " s");
            assertTrue(closed.await(1, TimeUnit.SECONDS), "the connections were closed");
        } finally {
            Thread.interrupted();
        }
    }
}
