package dev.kiln.cpu;

import java.util.concurrent.ExecutorService;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;

/**
 * Fork-join helper owned by one backend instance. {@code threads - 1} daemon workers plus the calling thread share
 * the chunks of a {@link #parallelFor}: chunks are claimed from an atomic counter, so the caller never waits for a
 * chunk nobody has started (no deadlock even when the pool is busy with other callers' work), and a loop called from
 * any worker thread runs inline (no nested parallelism, no oversubscription).
 */
final class Parallel implements AutoCloseable {

    /** Body of a parallel loop over the index range {@code [lo, hi)}. */
    @FunctionalInterface
    interface RangeBody {
        void run(int lo, int hi);
    }

    /** Worker threads of every {@code Parallel}; a loop started on one runs inline. */
    static final class Worker extends Thread {
        Worker(Runnable r, String name) {
            super(r, name);
            setDaemon(true);
        }
    }

    private static final AtomicInteger POOL_IDS = new AtomicInteger();

    private final int threads;
    private final ThreadPoolExecutor pool;
    private volatile boolean closed;

    Parallel(int threads) {
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be >= 1, got " + threads);
        }
        this.threads = threads;
        if (threads > 1) {
            int id = POOL_IDS.incrementAndGet();
            AtomicInteger n = new AtomicInteger();
            this.pool = new ThreadPoolExecutor(threads - 1, threads - 1, 0L, TimeUnit.MILLISECONDS,
                    new LinkedBlockingQueue<>(), r -> new Worker(r, "kiln-cpu-" + id + "-" + n.incrementAndGet()));
        } else {
            this.pool = null;
        }
    }

    int threads() {
        return threads;
    }

    /** Whether a loop started on the current thread would run inline. */
    boolean inline() {
        return pool == null || closed || Thread.currentThread() instanceof Worker;
    }

    /**
     * Runs {@code body} over {@code [0, n)} split into chunks of at least {@code grain} indices. Runs inline when the
     * range is a single chunk, when this helper has one thread, or when called from a worker thread.
     */
    void parallelFor(int n, int grain, RangeBody body) {
        if (n <= 0) {
            return;
        }
        int g = Math.max(1, grain);
        if (n <= g || inline()) {
            body.run(0, n);
            return;
        }
        int chunks = (int) Math.min((n + (long) g - 1) / g, 4L * threads);
        if (chunks <= 1) {
            body.run(0, n);
            return;
        }
        int per = n / chunks;
        int extra = n % chunks;
        // chunk c covers [start(c), start(c+1)): the first `extra` chunks get one more index
        Job job = new Job(chunks, Thread.currentThread()) {
            @Override
            void runChunk(int c) {
                int lo = c * per + Math.min(c, extra);
                int hi = lo + per + (c < extra ? 1 : 0);
                body.run(lo, hi);
            }
        };
        int helpers = Math.min(threads - 1, chunks - 1);
        try {
            for (int i = 0; i < helpers; i++) {
                pool.execute(job);
            }
        } catch (RejectedExecutionException e) {
            // closed concurrently: the caller runs the remaining chunks itself
        }
        job.run();
        job.await();
    }

    /** Runs {@code body(i)} for each {@code i < n}, one index per chunk (for coarse tasks such as images). */
    void parallelForEach(int n, java.util.function.IntConsumer body) {
        parallelFor(n, 1, (lo, hi) -> {
            for (int i = lo; i < hi; i++) {
                body.accept(i);
            }
        });
    }

    private abstract static class Job implements Runnable {
        private final int chunks;
        private final Thread caller;
        private final AtomicInteger next = new AtomicInteger();
        private final AtomicInteger done = new AtomicInteger();
        private final AtomicReference<Throwable> failure = new AtomicReference<>();

        Job(int chunks, Thread caller) {
            this.chunks = chunks;
            this.caller = caller;
        }

        abstract void runChunk(int c);

        @Override
        public final void run() {
            int c;
            while ((c = next.getAndIncrement()) < chunks) {
                try {
                    runChunk(c);
                } catch (Throwable t) {
                    failure.compareAndSet(null, t);
                }
                if (done.incrementAndGet() == chunks && Thread.currentThread() != caller) {
                    LockSupport.unpark(caller);
                }
            }
        }

        void await() {
            int spins = 0;
            while (done.get() < chunks) {
                if (spins < 2000) {
                    spins++;
                    Thread.onSpinWait();
                } else {
                    LockSupport.parkNanos(this, 100_000L);
                }
            }
            Throwable t = failure.get();
            if (t instanceof RuntimeException re) {
                throw re;
            }
            if (t instanceof Error err) {
                throw err;
            }
            if (t != null) {
                throw new IllegalStateException(t);
            }
        }
    }

    @Override
    public void close() {
        closed = true;
        if (pool != null) {
            pool.shutdown();
            try {
                pool.awaitTermination(1, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }
}
