package dev.kiln.spark;

import dev.kiln.core.Device;
import dev.kiln.cpu.CpuBackend;
import dev.kiln.inference.Predictor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.File;
import java.io.IOException;
import java.io.OutputStream;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.jar.JarEntry;
import java.util.jar.JarOutputStream;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Kiln as a Spark user jar: Spark and its dependencies in one class loader, Kiln (core, CPU backend, kiln-spark)
 * only in jars handed to Spark through {@code spark.jars}, which executors load in their own child loader. Scoring
 * and barrier training must work there, with the backend found by {@code ServiceLoader} in that loader.
 */
class ClassLoaderIsolationTest {

    @Test
    void kilnFromUserJarsScoresAndTrains(@TempDir Path dir) throws Exception {
        Set<String> kiln = Set.of(location(Predictor.class), location(CpuBackend.class), location(KilnScorer.class),
                location(IsolatedJob.class));
        List<URL> sparkSide = new ArrayList<>();
        String cp = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
        for (String entry : cp.split(File.pathSeparator)) {
            if (!entry.isBlank() && !kiln.contains(new File(entry).getAbsolutePath())) {
                sparkSide.add(new File(entry).toURI().toURL());
            }
        }
        List<String> jars = new ArrayList<>();
        for (String location : kiln) {
            jars.add(jarOf(Path.of(location), dir).toString());
        }
        URL[] kilnUrls = jars.stream().map(j -> {
            try {
                return Path.of(j).toUri().toURL();
            } catch (IOException e) {
                throw new IllegalStateException(e);
            }
        }).toArray(URL[]::new);

        ClassLoader previous = Thread.currentThread().getContextClassLoader();
        // Spark's loader stays open: Hadoop registers a JVM shutdown hook from it, which loads classes from it at exit
        URLClassLoader sparkLoader = new URLClassLoader("spark", sparkSide.toArray(URL[]::new),
                ClassLoader.getPlatformClassLoader());
        try (URLClassLoader userLoader = new URLClassLoader("user", kilnUrls, sparkLoader)) {
            assertThrowsClassNotFound(sparkLoader, Device.class.getName());
            Class<?> job = userLoader.loadClass(IsolatedJob.class.getName());
            assertEquals(userLoader, job.getClassLoader());
            Thread.currentThread().setContextClassLoader(userLoader);
            @SuppressWarnings("unchecked")
            List<String> lines = (List<String>) job.getMethod("run", String.class, ClassLoader.class)
                    .invoke(null, String.join(",", jars), sparkLoader);
            String all = String.join("\n", lines);
            assertEquals(4, lines.size(), all);
            for (String executor : lines.subList(0, 2)) {
                // Kiln's classes on the executor come from Spark's user-jar loader, not from the application loader
                assertTrue(executor.startsWith("executor: user context org.apache.spark"), all);
                assertTrue(executor.endsWith("device cpu"), all);
            }
            assertTrue(all.contains("scored 20 rows, 20 equal to the driver's predictor"), all);
            // 10 rows per task in batches of 4: 4, 4 and the last 2, no row left out
            assertTrue(all.contains("trained 3 steps"), all);
        } finally {
            Thread.currentThread().setContextClassLoader(previous);
        }
    }

    private static void assertThrowsClassNotFound(ClassLoader loader, String name) {
        try {
            loader.loadClass(name);
            throw new AssertionError(name + " is visible to Spark's loader: the test would not isolate Kiln");
        } catch (ClassNotFoundException expected) {
            // Kiln is not on Spark's side
        }
    }

    private static String location(Class<?> c) throws Exception {
        return new File(c.getProtectionDomain().getCodeSource().getLocation().toURI()).getAbsolutePath();
    }

    /** The location itself when it is a jar, else its classes packed into one. */
    private static Path jarOf(Path location, Path dir) throws IOException {
        if (Files.isRegularFile(location)) {
            return location;
        }
        Path jar = dir.resolve(location.getParent().getParent().getFileName() + "-" + location.getFileName() + ".jar");
        try (OutputStream os = Files.newOutputStream(jar); JarOutputStream out = new JarOutputStream(os);
             Stream<Path> files = Files.walk(location)) {
            for (Path f : (Iterable<Path>) files.filter(Files::isRegularFile)::iterator) {
                out.putNextEntry(new JarEntry(location.relativize(f).toString().replace(File.separatorChar, '/')));
                Files.copy(f, out);
                out.closeEntry();
            }
        }
        return jar;
    }
}
