package dev.kiln.examples;

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;

/** Bytes allocated on the Java heap by all live threads (HotSpot's per-thread counters), for benchmarks. */
final class AllocationMeter {

    private final com.sun.management.ThreadMXBean bean;

    AllocationMeter() {
        ThreadMXBean b = ManagementFactory.getThreadMXBean();
        this.bean = b instanceof com.sun.management.ThreadMXBean s && s.isThreadAllocatedMemorySupported() ? s : null;
        if (bean != null) {
            bean.setThreadAllocatedMemoryEnabled(true);
        }
    }

    boolean supported() {
        return bean != null;
    }

    /** Total bytes allocated so far by the threads alive now (threads that died are not counted). */
    long allocatedBytes() {
        if (bean == null) {
            return -1;
        }
        long total = 0;
        for (long v : bean.getThreadAllocatedBytes(bean.getAllThreadIds())) {
            if (v > 0) {
                total += v;
            }
        }
        return total;
    }
}
