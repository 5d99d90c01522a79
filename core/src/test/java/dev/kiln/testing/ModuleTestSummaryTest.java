package dev.kiln.testing;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Disabled;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.Parameter;
import org.junit.jupiter.params.ParameterizedClass;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.platform.launcher.LauncherDiscoveryRequest;
import org.junit.platform.launcher.core.LauncherConfig;
import org.junit.platform.launcher.core.LauncherFactory;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.platform.engine.discovery.DiscoverySelectors.selectClass;
import static org.junit.platform.launcher.core.LauncherDiscoveryRequestBuilder.request;

/** The per-module summary, from a run of the fixture classes below through JUnit's launcher. */
class ModuleTestSummaryTest {

    /** Run against three backends, as the generic suites are; one test skipped on one of them. */
    @ParameterizedClass
    @ValueSource(strings = {"cpu", "cuda", "other"})
    static class PerBackendFixture {
        @Parameter
        String backend;

        @Test
        void one() {
        }

        @Test
        void two() {
            Assumptions.assumeTrue(!backend.equals("cuda"), "no CUDA device");
        }
    }

    static class SkippedSuiteFixture {
        @Test
        @Disabled("needs KILN_MNIST_DIR")
        void mnist() {
        }
    }

    static class AbortedSuiteFixture {
        @org.junit.jupiter.api.BeforeAll
        static void noDevice() {
            Assumptions.assumeTrue(false, "no CUDA device");
        }

        @Test
        void a() {
        }

        @Test
        void b() {
        }
    }

    @Test
    void oneLinePerSkipReasonAndTheCasesOfParameterizedSuites() {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        ModuleTestSummary summary = new ModuleTestSummary(new PrintStream(bytes, true, StandardCharsets.UTF_8), "core");
        LauncherDiscoveryRequest request = request().selectors(selectClass(PerBackendFixture.class),
                selectClass(SkippedSuiteFixture.class), selectClass(AbortedSuiteFixture.class)).build();
        LauncherFactory.create(LauncherConfig.builder().enableTestExecutionListenerAutoRegistration(false).build())
                .execute(request, summary);
        List<String> lines = bytes.toString(StandardCharsets.UTF_8).lines().toList();
        assertEquals(List.of(
                "[SKIPPED] core: 1 test in 1 suite: needs KILN_MNIST_DIR: ModuleTestSummaryTest$SkippedSuiteFixture",
                "[SKIPPED] core: 3 tests in 2 suites: no CUDA device: ModuleTestSummaryTest$AbortedSuiteFixture, "
                        + "ModuleTestSummaryTest$PerBackendFixture",
                "[TESTS] core: 6 tests in 1 parameterized suites (surefire's per-class line shows 0 for these): "
                        + "ModuleTestSummaryTest$PerBackendFixture 6 (1 skipped)"), lines);
    }
}
