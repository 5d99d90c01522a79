package dev.kiln.core;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A service leaking the same way many times logs one stack per allocation site, then counts (counted here through a
 * capturing listener, which keeps the lines off the build log). */
class LeakReportRateLimitTest {

    @Test
    void oneStackPerSiteThenCounts() {
        List<ResourceLeaks.LeakReport> seen = new CopyOnWriteArrayList<>();
        // only this test's reports: the cleaner thread may report other tests' tensors meanwhile
        Consumer<ResourceLeaks.LeakReport> listener = r -> {
            if ("test tensor".equals(r.kind())) {
                seen.add(r);
            }
        };
        ResourceLeaks.addCapturingListener(listener); // counted as if written, kept off the test log
        try {
            StackTraceElement[] site = {new StackTraceElement("app.Service", "handle", "Service.java", 42)};
            StackTraceElement[] other = {new StackTraceElement("app.Service", "warmUp", "Service.java", 7)};
            long before = ResourceLeaks.loggedLines("test tensor");
            long stacksBefore = ResourceLeaks.loggedStacks("test tensor");
            for (int i = 0; i < 10_000; i++) {
                ResourceLeaks.report(new ResourceLeaks.LeakReport("test tensor", "a test tensor leaked", site));
            }
            ResourceLeaks.report(new ResourceLeaks.LeakReport("test tensor", "a test tensor leaked", other));
            assertEquals(10_001, seen.size(), "listeners get every report");
            assertEquals(2, ResourceLeaks.loggedStacks("test tensor") - stacksBefore, "one stack per site");
            long lines = ResourceLeaks.loggedLines("test tensor") - before;
            // 2 stacks, then a counting line at 2, 4, ..., 8192 reports of the first site
            assertEquals(2 + 13, lines);
            assertTrue(lines < 20);
        } finally {
            ResourceLeaks.removeListener(listener);
        }
    }
}
