package dev.kiln.cpu;

import org.junit.jupiter.api.Test;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ParallelTest {

    /** A way to run a loop over {@code [0, n)} on a {@link Parallel}. */
    private interface Loop {
        void run(Parallel p, int n, Parallel.RangeBody body);
    }

    private static void assertCoversEveryIndexExactlyOnce(Loop loop, int... sizes) {
        try (Parallel p = new Parallel(3)) {
            for (int n : sizes) {
                int[] hits = new int[n];
                loop.run(p, n, (lo, hi) -> {
                    for (int i = lo; i < hi; i++) {
                        hits[i]++;
                    }
                });
                for (int i = 0; i < n; i++) {
                    assertEquals(1, hits[i], "index " + i + " of " + n);
                }
            }
        }
    }

    @Test
    void coversEveryIndexExactlyOnce() {
        assertCoversEveryIndexExactlyOnce((p, n, body) -> p.parallelFor(n, 1, body), 0, 1, 2, 7, 100, 10007);
    }

    @Test
    void nestedLoopsRunInlineWithoutDeadlock() {
        try (Parallel p = new Parallel(2)) {
            AtomicLong sum = new AtomicLong();
            p.parallelFor(64, 1, (lo, hi) -> {
                for (int i = lo; i < hi; i++) {
                    p.parallelFor(100, 1, (a, b) -> sum.addAndGet(b - a));
                }
            });
            assertEquals(64 * 100, sum.get());
        }
    }

    @Test
    void concurrentCallersShareThePool() throws Exception {
        try (Parallel p = new Parallel(2)) {
            AtomicInteger total = new AtomicInteger();
            Thread[] ts = new Thread[4];
            for (int t = 0; t < ts.length; t++) {
                ts[t] = new Thread(() -> {
                    for (int rep = 0; rep < 200; rep++) {
                        p.parallelFor(50, 1, (lo, hi) -> total.addAndGet(hi - lo));
                    }
                });
                ts[t].start();
            }
            for (Thread t : ts) {
                t.join(30_000);
            }
            assertEquals(4 * 200 * 50, total.get());
        }
    }

    @Test
    void exceptionsReachTheCaller() {
        try (Parallel p = new Parallel(2)) {
            IllegalArgumentException e = new IllegalArgumentException("boom");
            assertSame(e, assertThrows(IllegalArgumentException.class,
                    () -> p.parallelFor(100, 1, (lo, hi) -> {
                        if (lo <= 50 && 50 < hi) {
                            throw e;
                        }
                    })));
        }
    }

    @Test
    void singleThreadAndAfterCloseRunInline() {
        Parallel p = new Parallel(1);
        Thread caller = Thread.currentThread();
        p.parallelFor(1000, 1, (lo, hi) -> assertSame(caller, Thread.currentThread()));
        p.close();
        Parallel q = new Parallel(2);
        q.close();
        AtomicInteger n = new AtomicInteger();
        q.parallelFor(1000, 1, (lo, hi) -> n.addAndGet(hi - lo));
        assertEquals(1000, n.get());
        assertTrue(q.inline());
    }

    @Test
    void loopsCompleteWhenWorkersParkAtOnce() {
        // spin 0: every loop finds the worker parked or about to park
        try (Parallel p = new Parallel(2, 0)) {
            AtomicLong total = new AtomicLong();
            org.junit.jupiter.api.Assertions.assertTimeoutPreemptively(java.time.Duration.ofSeconds(60), () -> {
                for (int rep = 0; rep < 20_000; rep++) {
                    p.parallelFor(8, 1, (lo, hi) -> total.addAndGet(hi - lo));
                }
            });
            assertEquals(20_000L * 8, total.get());
        }
    }

    @Test
    void idleWorkersStopSpinningAndPark() throws Exception {
        try (Parallel p = new Parallel(2, 200)) {
            p.parallelFor(100, 1, (lo, hi) -> { });
            Thread worker = null;
            for (Thread t : Thread.getAllStackTraces().keySet()) {
                if (p.owns(t) && t.isAlive()) {
                    worker = t;
                }
            }
            org.junit.jupiter.api.Assertions.assertNotNull(worker, "no worker thread");
            long deadline = System.nanoTime() + 5_000_000_000L;
            while (worker.getState() != Thread.State.WAITING && System.nanoTime() < deadline) {
                Thread.sleep(1);
            }
            assertEquals(Thread.State.WAITING, worker.getState(), "an idle worker should be parked, not spinning");
        }
    }

    @Test
    void closeEndsTheWorkers() throws Exception {
        Parallel p = new Parallel(3, 1_000_000);
        p.parallelFor(100, 1, (lo, hi) -> { });
        java.util.List<Thread> mine = new java.util.ArrayList<>();
        for (Thread t : Thread.getAllStackTraces().keySet()) {
            if (p.owns(t)) {
                mine.add(t);
            }
        }
        assertEquals(2, mine.size());
        p.close();
        for (Thread t : mine) {
            t.join(5000);
            assertTrue(!t.isAlive(), t.getName() + " still running after close()");
        }
    }

    @Test
    void negativeSpinIsRefused() {
        assertThrows(IllegalArgumentException.class, () -> new Parallel(2, -1));
    }

    @Test
    void guidedLoopsCoverEveryIndexExactlyOnce() {
        assertCoversEveryIndexExactlyOnce(Parallel::parallelForGuided, 0, 1, 2, 7, 128, 10007);
    }

    @Test
    void guidedChunksShrinkTowardsTheEnd() {
        for (int threads : new int[]{2, 3, 16}) {
            for (int n : new int[]{1, 5, 8, 12, 128, 1000, 1 << 20}) {
                int[] s = Parallel.guidedStarts(n, threads);
                String what = "n=" + n + " threads=" + threads;
                assertEquals(0, s[0], what);
                assertEquals(n, s[s.length - 1], what);
                long floor = Math.max(1, (n + 16L * threads - 1) / (16L * threads));
                for (int c = 0; c + 1 < s.length; c++) {
                    int size = s[c + 1] - s[c];
                    assertTrue(size >= 1, what);
                    // no chunk larger than the one before or than parallelFor's, none but the last under the floor
                    assertTrue(c == 0 || size <= s[c] - s[c - 1], what + ": chunk " + c + " grew");
                    assertTrue(size <= (n + 4L * threads - 1) / (4L * threads), what + ": chunk " + c + " has " + size);
                    assertTrue(c + 2 == s.length || size >= floor, what + ": chunk " + c + " has " + size);
                }
                if (n <= 4 * threads) {
                    assertEquals(n, s.length - 1, what + ": one index per chunk");
                } else {
                    // 4 * threads * ln 4 chunks while they shrink, then at most 4 * threads at the floor
                    assertTrue(s.length - 1 <= 10 * threads + 1, what + ": " + (s.length - 1) + " chunks");
                    assertTrue(s.length - 1 > 4 * threads, what + ": " + (s.length - 1) + " chunks do not shrink");
                }
            }
        }
    }
}
