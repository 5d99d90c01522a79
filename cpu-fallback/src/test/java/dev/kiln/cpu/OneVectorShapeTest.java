package dev.kiln.cpu;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The SIMD kernels run vectors of one shape, the preferred one. Vectors of a second shape executing in the same JVM
 * spoil the JIT's type profiles of the Vector API's shared code, and kernels compiled afterwards can lose their
 * intrinsics: the 24-accumulator weight gradient ran 20-30x slower after 256-bit vectors had run (docs/performance.md,
 * "One vector shape"). So the backend's sources name no species of a fixed size other than 512 bits, and that one
 * only in {@link PhaseSplit}, which runs vectors only where the preferred shape is 512 bits.
 */
class OneVectorShapeTest {

    private static final Path SOURCES = Path.of("src/main/java/dev/kiln/cpu");
    private static final Pattern OTHER_SHAPE = Pattern.compile("SPECIES_(64|128|256|MAX)\\b");
    private static final Pattern FIXED_512 = Pattern.compile("SPECIES_512\\b");

    @Test
    void kernelsNameNoSpeciesOfAnotherShape() throws IOException {
        assertTrue(Files.isDirectory(SOURCES), "the backend's sources at " + SOURCES.toAbsolutePath());
        List<String> found = new ArrayList<>();
        int files = 0;
        try (Stream<Path> paths = Files.list(SOURCES)) {
            for (Path file : (Iterable<Path>) paths.filter(p -> p.toString().endsWith(".java")).sorted()::iterator) {
                files++;
                List<String> lines = Files.readAllLines(file);
                boolean fixed512Allowed = file.getFileName().toString().equals("PhaseSplit.java");
                for (int i = 0; i < lines.size(); i++) {
                    String line = lines.get(i);
                    if (OTHER_SHAPE.matcher(line).find() || !fixed512Allowed && FIXED_512.matcher(line).find()) {
                        found.add(file.getFileName() + ":" + (i + 1) + ": " + line.strip());
                    }
                }
            }
        }
        assertTrue(files > 20, "scanned " + files + " source files");
        assertEquals(List.of(), found, "species of a fixed shape in the backend's kernels");
    }
}
