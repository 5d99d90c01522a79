package dev.kiln.testing;

import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.TestWatcher;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Prints on the console why tests were skipped: Maven's summary only counts them ("Skipped: 2"), and a skipped test
 * must never pass for a passed one unnoticed. One line per test class and reason, after the class has run
 * ({@code [SKIPPED] CudaLayersTest, 24 tests: no CUDA device: ...}), naming the test when it is a single one.
 * Registered for every test class through the {@code org.junit.jupiter.api.extension.Extension} service file (the
 * build turns on JUnit's extension autodetection).
 */
public final class SkipReasonReporter implements TestWatcher, AfterAllCallback {

    private static final ExtensionContext.Namespace NAMESPACE = ExtensionContext.Namespace.create(SkipReasonReporter.class);

    @Override
    public void testDisabled(ExtensionContext context, Optional<String> reason) {
        record(context, reason.orElse("disabled"));
    }

    @Override
    public void testAborted(ExtensionContext context, Throwable cause) {
        record(context, cause == null || cause.getMessage() == null ? "assumption not met" : cause.getMessage());
    }

    @SuppressWarnings("unchecked")
    private static void record(ExtensionContext context, String reason) {
        ExtensionContext classContext = context;
        while (classContext.getTestMethod().isPresent() && classContext.getParent().isPresent()) {
            classContext = classContext.getParent().get(); // past parameterised and repeated invocations
        }
        Map<String, List<String>> byReason = classContext.getStore(NAMESPACE)
                .getOrComputeIfAbsent("skipped", k -> new LinkedHashMap<String, List<String>>(), Map.class);
        byReason.computeIfAbsent(reason.replace("\n", " "), k -> new ArrayList<>())
                .add(context.getTestMethod().map(m -> m.getName()).orElse(context.getDisplayName()));
    }

    @Override
    @SuppressWarnings("unchecked")
    public void afterAll(ExtensionContext context) {
        Map<String, List<String>> byReason = context.getStore(NAMESPACE).get("skipped", Map.class);
        if (byReason == null) {
            return;
        }
        String testClass = context.getRequiredTestClass().getSimpleName();
        for (Map.Entry<String, List<String>> e : byReason.entrySet()) {
            List<String> tests = e.getValue();
            String which = tests.size() == 1 ? testClass + "." + tests.get(0) : testClass + ", " + tests.size() + " tests";
            System.out.println("[SKIPPED] " + which + ": " + e.getKey());
        }
    }
}
