package dev.kiln.testing;

import org.junit.platform.engine.TestExecutionResult;
import org.junit.platform.engine.TestSource;
import org.junit.platform.engine.support.descriptor.ClassSource;
import org.junit.platform.engine.support.descriptor.MethodSource;
import org.junit.platform.launcher.TestExecutionListener;
import org.junit.platform.launcher.TestIdentifier;
import org.junit.platform.launcher.TestPlan;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;

/**
 * What Maven's console does not say, printed once per test run of a module (a surefire execution):
 * <ul>
 *   <li>why tests were skipped, one line per reason, naming the suites: {@code [SKIPPED] cuda: 2076 tests in 40
 *   suites: no CUDA device (...): CudaLayersTest, ...}. Maven only counts them, and a skipped test must never pass
 *   for a passed one unnoticed;</li>
 *   <li>the cases of each parameterized class (a {@code @ParameterizedClass} suite run against every backend), which
 *   surefire's per-class line reports as "Tests run: 0" because it counts the class template, not its
 *   invocations.</li>
 * </ul>
 * Registered through the {@code org.junit.platform.launcher.TestExecutionListener} service file of core's
 * test-jar, so every module whose tests have that jar prints it.
 */
public final class ModuleTestSummary implements TestExecutionListener {

    /** Lists longer than this name the first suites and count the rest. */
    static final int MAX_NAMES = 8;

    private final PrintStream out;
    private final String module;
    private TestPlan plan;
    private final Map<String, Set<String>> suitesBySkipReason = new ConcurrentHashMap<>();
    private final Map<String, Integer> testsBySkipReason = new ConcurrentHashMap<>();
    private final Map<String, Integer> parameterizedCases = new ConcurrentHashMap<>();
    private final Map<String, Integer> parameterizedSkipped = new ConcurrentHashMap<>();

    public ModuleTestSummary() {
        this(System.out, Path.of(System.getProperty("user.dir")).getFileName().toString());
    }

    ModuleTestSummary(PrintStream out, String module) {
        this.out = out;
        this.module = module;
    }

    @Override
    public void testPlanExecutionStarted(TestPlan testPlan) {
        plan = testPlan;
    }

    @Override
    public void executionSkipped(TestIdentifier id, String reason) {
        skipped(id, reason == null || reason.isBlank() ? "disabled" : reason, countTests(id));
    }

    @Override
    public void executionFinished(TestIdentifier id, TestExecutionResult result) {
        if (result.getStatus() == TestExecutionResult.Status.ABORTED) {
            // an assumption not met, in a test or in a suite's @BeforeAll (then every test of it is skipped)
            String reason = result.getThrowable().map(t -> t.getMessage() == null ? "assumption not met" : t.getMessage())
                    .orElse("aborted");
            skipped(id, reason, id.isTest() ? 1 : countTests(id));
        }
        if (id.isTest()) {
            boolean skipped = result.getStatus() == TestExecutionResult.Status.ABORTED;
            suiteOf(id).filter(suite -> isParameterizedCase(id, suite)).ifPresent(suite -> {
                parameterizedCases.merge(suite, 1, Integer::sum);
                if (skipped) {
                    parameterizedSkipped.merge(suite, 1, Integer::sum);
                }
            });
        }
    }

    private void skipped(TestIdentifier id, String reason, int tests) {
        String key = reason.replace('\n', ' ').strip();
        if (key.startsWith("Assumption failed: ")) { // JUnit's prefix for assumeTrue(condition, message)
            key = key.substring("Assumption failed: ".length());
        }
        String suite = suiteOf(id).orElse(id.getDisplayName());
        suitesBySkipReason.computeIfAbsent(key, k -> ConcurrentHashMap.newKeySet()).add(suite);
        testsBySkipReason.merge(key, Math.max(1, tests), Integer::sum);
    }

    @Override
    public void testPlanExecutionFinished(TestPlan testPlan) {
        for (String line : lines()) {
            out.println(line);
        }
        out.flush();
    }

    /** The summary's lines, skip reasons first (sorted, so that runs compare). */
    List<String> lines() {
        List<String> lines = new ArrayList<>();
        for (Map.Entry<String, Set<String>> e : new TreeMap<>(suitesBySkipReason).entrySet()) {
            int tests = testsBySkipReason.getOrDefault(e.getKey(), 0);
            lines.add("[SKIPPED] " + module + ": " + tests + (tests == 1 ? " test" : " tests") + " in "
                    + e.getValue().size() + (e.getValue().size() == 1 ? " suite" : " suites") + ": " + e.getKey()
                    + ": " + names(new TreeSet<>(e.getValue())));
        }
        if (!parameterizedCases.isEmpty()) {
            List<String> counts = new ArrayList<>();
            int total = 0;
            for (Map.Entry<String, Integer> e : new TreeMap<>(parameterizedCases).entrySet()) {
                int skipped = parameterizedSkipped.getOrDefault(e.getKey(), 0);
                counts.add(e.getKey() + " " + e.getValue() + (skipped == 0 ? "" : " (" + skipped + " skipped)"));
                total += e.getValue();
            }
            lines.add("[TESTS] " + module + ": " + total + " tests in " + counts.size() + " parameterized suites"
                    + " (surefire's per-class line shows 0 for these): " + String.join(", ", counts));
        }
        return lines;
    }

    private static String names(Set<String> suites) {
        List<String> all = new ArrayList<>(suites);
        if (all.size() <= MAX_NAMES) {
            return String.join(", ", all);
        }
        return String.join(", ", all.subList(0, MAX_NAMES)) + " and " + (all.size() - MAX_NAMES) + " more";
    }

    /** Tests under {@code id} in the plan (1 for a test; 0 when the plan does not know them yet). */
    private int countTests(TestIdentifier id) {
        if (id.isTest()) {
            return 1;
        }
        if (plan == null) {
            return 0;
        }
        int n = 0;
        for (TestIdentifier child : plan.getDescendants(id)) {
            n += child.isTest() ? 1 : 0;
        }
        return n;
    }

    /** The simple name of the outermost test class above {@code id}. */
    private Optional<String> suiteOf(TestIdentifier id) {
        String suite = className(id.getSource());
        TestIdentifier at = id;
        while (plan != null) {
            Optional<TestIdentifier> parent = plan.getParent(at);
            if (parent.isEmpty()) {
                break;
            }
            at = parent.get();
            String c = className(at.getSource());
            if (c != null) {
                suite = c;
            }
        }
        return Optional.ofNullable(suite).map(c -> c.substring(c.lastIndexOf('.') + 1));
    }

    /** Whether the class appears twice above the test: the class, then one of its parameterized invocations. */
    private boolean isParameterizedCase(TestIdentifier test, String suite) {
        int seen = 0;
        TestIdentifier at = test;
        while (plan != null) {
            Optional<TestIdentifier> parent = plan.getParent(at);
            if (parent.isEmpty()) {
                break;
            }
            at = parent.get();
            String c = className(at.getSource());
            if (c != null && c.endsWith(suite) && at.getSource().get() instanceof ClassSource) {
                seen++;
            }
        }
        return seen >= 2;
    }

    private static String className(Optional<TestSource> source) {
        if (source.isEmpty()) {
            return null;
        }
        if (source.get() instanceof ClassSource c) {
            return c.getClassName();
        }
        if (source.get() instanceof MethodSource m) {
            return m.getClassName();
        }
        return null;
    }
}
