package dev.kiln.examples;

import java.lang.management.CompilationMXBean;
import java.lang.management.ManagementFactory;

/**
 * A benchmark's warm-up that lasts until the JVM's JIT compilers have gone quiet: the requested calls, then more until
 * the compilers' total time (HotSpot's {@link CompilationMXBean}) has not grown for {@link #QUIET_NANOS}, within a cap.
 * Timing while C2 still compiles measures code that is not yet the final one and loses a core to the compiler threads:
 * on a 2-core machine the ResNet's training rate at batch 32 read 12-15% lower after 10 warm-up steps than after 60.
 * Where the JVM does not report compilation time, the warm-up is the requested calls alone.
 */
final class JitWarmup {

    /** How long the compilers must have been idle. */
    static final long QUIET_NANOS = 300_000_000L;

    private JitWarmup() {
    }

    /**
     * Runs {@code call} at least {@code minCalls} times and for at least {@code minNanos}, then until the JIT has been
     * quiet for {@link #QUIET_NANOS} or {@code maxNanos} have passed in all; returns the calls made.
     */
    static int run(Runnable call, int minCalls, long minNanos, long maxNanos) {
        CompilationMXBean jit = ManagementFactory.getCompilationMXBean();
        boolean watched = jit != null && jit.isCompilationTimeMonitoringSupported();
        long start = System.nanoTime();
        long lastCompile = start;
        long compiled = watched ? jit.getTotalCompilationTime() : 0;
        int calls = 0;
        while (true) {
            call.run();
            calls++;
            long now = System.nanoTime();
            if (watched) {
                long total = jit.getTotalCompilationTime();
                if (total != compiled) {
                    compiled = total;
                    lastCompile = now;
                }
            }
            boolean asked = calls >= minCalls && now - start >= minNanos;
            boolean quiet = !watched || now - lastCompile >= QUIET_NANOS;
            if (asked && quiet || asked && now - start >= maxNanos) {
                return calls;
            }
        }
    }
}
