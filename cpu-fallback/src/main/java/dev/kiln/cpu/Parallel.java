package dev.kiln.cpu;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.Arrays;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;

/**
 * Fork-join helper owned by one backend instance. {@code threads - 1} daemon workers plus the calling thread share
 * the chunks of a {@link #parallelFor}: chunks are claimed from an atomic counter, so the caller never waits for a
 * chunk nobody has started (no deadlock even when the pool is busy with other callers' work), and a loop called from
 * any worker thread runs inline (no nested parallelism, no oversubscription).
 *
 * <p>A worker that runs out of work spins for {@link #spinNanos} before it parks ({@code -Dkiln.cpu.spinMicros},
 * default 100, 0 parks at once): a training step at batch 64 is a chain of ~150 loops of 5-500 microseconds, and
 * waking a parked thread costs 10-50 microseconds on a virtual machine when it has just parked and 60-300 once it
 * has been parked for milliseconds (a 2-core VM, against 1.5 for a spinning worker to take a job); the spin keeps the
 * worker ready for the next loop and gives the CPU back once the caller has gone quiet (a service between requests, a
 * finished job). {@link #parallelFor}'s chunks are equal; {@link #parallelForGuided}'s shrink towards the end of the
 * loop, for loops of long indices, where the thread finishing first would otherwise wait up to a whole chunk for the
 * other (docs/performance.md, "Two threads").
 */
final class Parallel implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(Parallel.class);

    /** Body of a parallel loop over the index range {@code [lo, hi)}. */
    @FunctionalInterface
    interface RangeBody {
        void run(int lo, int hi);
    }

    /** Worker threads of every {@code Parallel}; a loop started on one runs inline. */
    static final class Worker extends Thread {
        volatile boolean parked;

        Worker(Runnable r, String name) {
            super(r, name);
            setDaemon(true);
        }
    }

    private static final AtomicInteger POOL_IDS = new AtomicInteger();

    static final String SPIN_PROPERTY = "kiln.cpu.spinMicros";

    private final int threads;
    private final Worker[] workers;
    private final ConcurrentLinkedQueue<Job> queue = new ConcurrentLinkedQueue<>();
    private final long spinNanos;
    private volatile boolean closed;

    Parallel(int threads) {
        this(threads, defaultSpinMicros());
    }

    Parallel(int threads, long spinMicros) {
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be >= 1, got " + threads);
        }
        if (spinMicros < 0) {
            throw new IllegalArgumentException("spinMicros must be >= 0, got " + spinMicros);
        }
        this.threads = threads;
        this.spinNanos = spinMicros * 1000L;
        this.workers = new Worker[threads - 1];
        int id = POOL_IDS.incrementAndGet();
        for (int i = 0; i < workers.length; i++) {
            workers[i] = new Worker(this::workLoop, "kiln-cpu-" + id + "-" + (i + 1));
            workers[i].start();
        }
    }

    static long defaultSpinMicros() {
        String p = System.getProperty(SPIN_PROPERTY);
        if (p != null) {
            try {
                long v = Long.parseLong(p.trim());
                if (v >= 0) {
                    return v;
                }
            } catch (NumberFormatException ignored) {
                // warned below
            }
            LOG.warn("ignoring {}={} (not a number >= 0)", SPIN_PROPERTY, p);
        }
        return 100;
    }

    private void workLoop() {
        Worker self = (Worker) Thread.currentThread();
        long idleSince = System.nanoTime();
        while (!closed) {
            Job job = queue.poll();
            if (job != null) {
                job.run();
                idleSince = System.nanoTime();
                continue;
            }
            if (System.nanoTime() - idleSince < spinNanos) {
                Thread.onSpinWait();
                continue;
            }
            self.parked = true;
            // a job posted before this check is seen here; one posted after it sees parked and unparks this thread
            if (queue.isEmpty() && !closed) {
                LockSupport.park(this);
            }
            self.parked = false;
            idleSince = System.nanoTime();
        }
    }

    /** Whether {@code t} is one of this helper's workers. */
    boolean owns(Thread t) {
        for (Worker w : workers) {
            if (w == t) {
                return true;
            }
        }
        return false;
    }

    int threads() {
        return threads;
    }

    /** Whether a loop started on the current thread would run inline. */
    boolean inline() {
        return workers.length == 0 || closed || Thread.currentThread() instanceof Worker;
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
        run(new Job(chunks, Thread.currentThread()) {
            @Override
            void runChunk(int c) {
                int lo = c * per + Math.min(c, extra);
                int hi = lo + per + (c < extra ? 1 : 0);
                body.run(lo, hi);
            }
        });
    }

    /**
     * {@link #parallelFor} with grain 1 for loops whose every index takes long (an image of a large convolution: tens
     * of microseconds): the chunks shrink towards the end of the range ({@link #guidedStarts}), so the threads finish
     * within a small chunk of each other. Equal chunks of such a loop leave the thread that finishes first waiting up
     * to a whole chunk (16 images of a ResNet convolution at batch 128, ~350 microseconds); in loops of short indices
     * the extra chunk claims cost more than that wait saves (LeNet's loops of 30-90 microseconds), so those keep
     * {@link #parallelFor}.
     */
    void parallelForGuided(int n, RangeBody body) {
        if (n <= 0) {
            return;
        }
        if (n == 1 || inline()) {
            body.run(0, n);
            return;
        }
        int[] starts = guidedStarts(n, threads);
        run(new Job(starts.length - 1, Thread.currentThread()) {
            @Override
            void runChunk(int c) {
                body.run(starts[c], starts[c + 1]);
            }
        });
    }

    /**
     * Where each chunk of {@code [0, n)} starts, then {@code n}: each chunk takes a {@code 1 / (4 * threads)} share of
     * the indices left, but at least one index and a {@code 1 / (16 * threads)} share of the range; the first chunk is
     * as large as {@link #parallelFor}'s, a loop makes at most about {@code 10 * threads} chunks, and a range of up to
     * {@code 4 * threads} indices one index per chunk.
     */
    static int[] guidedStarts(int n, int threads) {
        int[] starts = new int[16];
        int count = 0;
        long share = 4L * threads;
        long smallest = Math.max(1, (n + 4 * share - 1) / (4 * share));
        for (int lo = 0; lo < n; ) {
            if (count + 2 > starts.length) {
                starts = Arrays.copyOf(starts, starts.length * 2);
            }
            starts[count++] = lo;
            lo = (int) Math.min(n, lo + Math.max(smallest, (n - lo + share - 1) / share));
        }
        starts[count++] = n;
        return Arrays.copyOf(starts, count);
    }

    private void run(Job job) {
        int chunks = job.chunks;
        int helpers = Math.min(threads - 1, chunks - 1);
        for (int i = 0; i < helpers; i++) {
            queue.offer(job);
        }
        for (Worker w : workers) {
            if (w.parked) {
                LockSupport.unpark(w);
            }
        }
        // after close() no worker takes the job: the caller runs every chunk itself
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
        for (Worker w : workers) {
            LockSupport.unpark(w);
        }
        for (Worker w : workers) {
            try {
                w.join(1000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }
}
