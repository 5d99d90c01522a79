package dev.kiln.testing;

import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.TestWatcher;

import java.util.Optional;

/**
 * Prints every skipped test and why on the console: Maven's summary only counts them ("Skipped: 2"), and a skipped
 * test must never pass for a passed one unnoticed. Registered for all test classes through the
 * {@code org.junit.jupiter.api.extension.Extension} service file (the build turns on JUnit's extension autodetection).
 */
public final class SkipReasonReporter implements TestWatcher {

    @Override
    public void testDisabled(ExtensionContext context, Optional<String> reason) {
        report(context, reason.orElse("disabled"));
    }

    @Override
    public void testAborted(ExtensionContext context, Throwable cause) {
        report(context, cause == null || cause.getMessage() == null ? "assumption not met" : cause.getMessage());
    }

    private static void report(ExtensionContext context, String reason) {
        String test = context.getRequiredTestClass().getSimpleName()
                + context.getTestMethod().map(m -> "." + m.getName()).orElse("");
        System.out.println("[SKIPPED] " + test + ": " + reason.replace("\n", " "));
    }
}
