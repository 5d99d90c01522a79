package dev.kiln.cuda;

import dev.kiln.backend.Activation;
import dev.kiln.backend.BinaryOp;
import dev.kiln.backend.ScalarOp;
import dev.kiln.backend.UnaryOp;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The operation codes are declared once, in Java ({@code code()} of {@link UnaryOp}, {@link ScalarOp},
 * {@link BinaryOp}, {@link Activation}); the CUDA sources mirror them as {@code KILN_<KIND>_<NAME>} constants. This
 * test parses the sources and fails on any difference, on a switch that misses a constant or uses a bare number, and
 * on a switch whose default computes something instead of reporting the unknown code.
 */
class OpCodesTest {

    private static final Pattern DEFINE = Pattern.compile("#define\\s+KILN_(UNARY|SCALAR|BINARY|ACT)_(\\w+)\\s+(-?\\d+)");
    private static final Pattern SWITCH = Pattern.compile("switch\\s*\\([^)]*\\)\\s*\\{");
    private static final Pattern CASE = Pattern.compile("case\\s+([^:]+):");

    private static String sources;

    @BeforeAll
    static void read() throws IOException {
        ToolSupport.requireSources();
        StringBuilder all = new StringBuilder();
        try (Stream<Path> files = Files.list(ToolSupport.ROOT.resolve("cuda/src/main/cuda"))) {
            for (Path p : files.sorted().toList()) {
                if (p.toString().endsWith(".cu") || p.toString().endsWith(".cuh")) {
                    all.append(Files.readString(p)).append('\n');
                }
            }
        }
        // comments may name codes; only code counts
        sources = all.toString().replaceAll("(?s)/\\*.*?\\*/", "").replaceAll("//[^\\n]*", "");
    }

    private static Map<String, Integer> java(Enum<?>[] values) {
        Map<String, Integer> m = new TreeMap<>();
        for (Enum<?> e : values) {
            int code;
            if (e instanceof UnaryOp u) {
                code = u.code();
            } else if (e instanceof ScalarOp s) {
                code = s.code();
            } else if (e instanceof BinaryOp b) {
                code = b.code();
            } else {
                code = ((Activation) e).code();
            }
            m.put(e.name(), code);
        }
        return m;
    }

    private static Map<String, Map<String, Integer>> cuda() {
        Map<String, Map<String, Integer>> m = new TreeMap<>();
        Matcher d = DEFINE.matcher(sources);
        while (d.find()) {
            Integer previous = m.computeIfAbsent(d.group(1), k -> new TreeMap<>()).put(d.group(2), Integer.parseInt(d.group(3)));
            assertEquals(null, previous, "KILN_" + d.group(1) + "_" + d.group(2) + " is defined twice");
        }
        return m;
    }

    @Test
    @DisplayName("every Java op code has the same KILN_* constant in the CUDA sources, and nothing else is there")
    void codesMatch() {
        Map<String, Map<String, Integer>> cuda = cuda();
        assertEquals(java(UnaryOp.values()), cuda.get("UNARY"), "UnaryOp vs KILN_UNARY_*");
        assertEquals(java(ScalarOp.values()), cuda.get("SCALAR"), "ScalarOp vs KILN_SCALAR_*");
        assertEquals(java(BinaryOp.values()), cuda.get("BINARY"), "BinaryOp vs KILN_BINARY_*");
        assertEquals(java(Activation.values()), cuda.get("ACT"), "Activation vs KILN_ACT_*");
        for (Enum<?>[] kind : List.<Enum<?>[]>of(UnaryOp.values(), ScalarOp.values(), BinaryOp.values(), Activation.values())) {
            Map<String, Integer> codes = java(kind);
            assertEquals(codes.size(), new TreeSet<>(codes.values()).size(), "codes are unique: " + codes);
        }
    }

    @Test
    @DisplayName("every switch names each constant of one kind and reports an unknown code in its default")
    void switchesAreCompleteAndTrap() {
        Map<String, Map<String, Integer>> cuda = cuda();
        List<String> bodies = switchBodies();
        assertFalse(bodies.isEmpty(), "no switch found in the CUDA sources");
        for (String body : bodies) {
            Matcher c = CASE.matcher(body);
            TreeSet<String> labels = new TreeSet<>();
            String kind = null;
            while (c.find()) {
                String label = c.group(1).trim();
                Matcher named = Pattern.compile("KILN_(UNARY|SCALAR|BINARY|ACT)_(\\w+)").matcher(label);
                assertTrue(named.matches(), "case label '" + label + "' is not a KILN_* op constant in: " + body);
                assertTrue(kind == null || kind.equals(named.group(1)), "one switch mixes kinds: " + body);
                kind = named.group(1);
                labels.add(named.group(2));
            }
            assertEquals(new TreeSet<>(cuda.get(kind).keySet()), labels, "a KILN_" + kind + "_* switch misses a case");
            int at = body.indexOf("default:");
            assertTrue(at >= 0, "switch without default: " + body);
            assertTrue(body.substring(at).contains("kiln_unknown_op("), "the default of a switch must report the code"
                    + " through kiln_unknown_op, not compute: " + body);
        }
    }

    /** The text between the braces of every switch, nested braces included. */
    private static List<String> switchBodies() {
        List<String> out = new ArrayList<>();
        Matcher m = SWITCH.matcher(sources);
        while (m.find()) {
            int depth = 1;
            int i = m.end();
            while (depth > 0) {
                char ch = sources.charAt(i++);
                depth += ch == '{' ? 1 : ch == '}' ? -1 : 0;
            }
            out.add(sources.substring(m.end(), i - 1));
        }
        return out;
    }
}
