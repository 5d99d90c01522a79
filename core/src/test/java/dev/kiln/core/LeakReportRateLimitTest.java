package dev.kiln.core;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A service leaking the same way many times logs one stack per allocation site, then counts. */
class LeakReportRateLimitTest {

    @Test
    void oneStackPerSiteThenCounts() {
        List<ResourceLeaks.LeakReport> seen = new CopyOnWriteArrayList<>();
        Consumer<ResourceLeaks.LeakReport> listener = seen::add;
        ResourceLeaks.addListener(listener);
        try {
            StackTraceElement[] site = {new StackTraceElement("app.Service", "handle", "Service.java", 42)};
            StackTraceElement[] other = {new StackTraceElement("app.Service", "warmUp", "Service.java", 7)};
            long before = ResourceLeaks.loggedLines();
            long stacksBefore = ResourceLeaks.loggedStacks();
            for (int i = 0; i < 10_000; i++) {
                ResourceLeaks.report(new ResourceLeaks.LeakReport("test tensor", "a test tensor leaked", site));
            }
            ResourceLeaks.report(new ResourceLeaks.LeakReport("test tensor", "a test tensor leaked", other));
            assertEquals(10_001, seen.size(), "listeners get every report");
            assertEquals(2, ResourceLeaks.loggedStacks() - stacksBefore, "one stack per site");
            long lines = ResourceLeaks.loggedLines() - before;
            // 2 stacks, then a counting line at 2, 4, ..., 8192 reports of the first site
            assertEquals(2 + 13, lines);
            assertTrue(lines < 20);
        } finally {
            ResourceLeaks.removeListener(listener);
        }
    }
}
