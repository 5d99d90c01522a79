package dev.kiln.datasets;

import dev.kiln.data.Md5;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.InterruptedIOException;
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
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class FileDownloaderTest {
    @TempDir
    Path dir;

    private HttpServer server;
    private final Map<String, byte[]> files = new ConcurrentHashMap<>();
    private final Map<String, Integer> hits = new ConcurrentHashMap<>();
    private final CountDownLatch release = new CountDownLatch(1);

    @BeforeEach
    void start() throws IOException {
        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        server.createContext("/", this::handle);
        server.setExecutor(java.util.concurrent.Executors.newCachedThreadPool(r -> {
            Thread t = new Thread(r, "test-http");
            t.setDaemon(true);
            return t;
        }));
        server.start();
    }

    @AfterEach
    void stop() {
        release.countDown();
        server.stop(0);
    }

    /** Paths: /good/NAME serves files; /missing/ 404s; /stall/NAME sends half then hangs. */
    private void handle(HttpExchange ex) throws IOException {
        String path = ex.getRequestURI().getPath();
        hits.merge(path, 1, Integer::sum);
        String name = path.substring(path.lastIndexOf('/') + 1);
        byte[] body = files.get(name);
        if (path.startsWith("/missing/") || body == null) {
            ex.sendResponseHeaders(404, -1);
            ex.close();
            return;
        }
        if (path.startsWith("/stall/")) {
            ex.sendResponseHeaders(200, body.length);
            OutputStream out = ex.getResponseBody();
            out.write(body, 0, body.length / 2);
            out.flush();
            try {
                release.await(20, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            ex.close();
            return;
        }
        ex.sendResponseHeaders(200, body.length);
        try (OutputStream out = ex.getResponseBody()) {
            out.write(body);
        }
    }

    private URI base(String prefix) {
        return URI.create("http://127.0.0.1:" + server.getAddress().getPort() + "/" + prefix + "/");
    }

    private static byte[] payload(int n) {
        byte[] b = new byte[n];
        for (int i = 0; i < n; i++) {
            b[i] = (byte) (i * 131 + (i >> 9));
        }
        return b;
    }

    private static String md5(byte[] b) {
        return Md5.hex(Md5.newDigest().digest(b));
    }

    private FileDownloader downloader(URI... mirrors) {
        return new FileDownloader(List.of(mirrors), Duration.ofSeconds(2), Duration.ofSeconds(2));
    }

    private List<Path> dirContents() throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.toList();
        }
    }

    @Test
    void downloadsAndVerifies() throws Exception {
        byte[] data = payload(300_000);
        files.put("a.gz", data);
        Path p = downloader(base("good")).download("a.gz", data.length, md5(data), dir);
        assertEquals(dir.resolve("a.gz"), p);
        assertArrayEquals(data, Files.readAllBytes(p));
        assertEquals(List.of(p), dirContents()); // no temp file left
    }

    @Test
    void corruptedFileIsRejectedAndLeavesNothing() throws Exception {
        byte[] data = payload(100_000);
        String goodMd5 = md5(data);
        byte[] bad = data.clone();
        bad[5000] ^= 1;
        files.put("a.gz", bad);
        IOException e = assertThrows(IOException.class,
                () -> downloader(base("good")).download("a.gz", data.length, goodMd5, dir));
        assertTrue(e.getMessage().contains("md5: expected " + goodMd5 + ", found " + md5(bad)), e.getMessage());
        assertEquals(List.of(), dirContents());
    }

    @Test
    void wrongSizeIsRejected() throws Exception {
        byte[] data = payload(1000);
        files.put("a.gz", data);
        IOException e = assertThrows(IOException.class,
                () -> downloader(base("good")).download("a.gz", 999, md5(data), dir));
        assertTrue(e.getMessage().contains("size: expected 999 bytes"), e.getMessage());
        assertEquals(List.of(), dirContents());
    }

    @Test
    void notFoundOnFirstMirrorUsesSecond() throws Exception {
        byte[] data = payload(5000);
        files.put("b.gz", data);
        Path p = downloader(base("missing"), base("good")).download("b.gz", data.length, md5(data), dir);
        assertArrayEquals(data, Files.readAllBytes(p));
        assertEquals(1, hits.get("/missing/b.gz"));
        assertEquals(1, hits.get("/good/b.gz"));
    }

    @Test
    void allMirrorsFailingNamesEach() throws Exception {
        files.put("c.gz", payload(10));
        URI dead = URI.create("http://127.0.0.1:1/nothing/"); // nothing listens on port 1
        IOException e = assertThrows(IOException.class,
                () -> downloader(base("missing"), dead).download("c.gz", 10, md5(payload(10)), dir));
        assertTrue(e.getMessage().contains("/missing/c.gz: HTTP 404"), e.getMessage());
        assertTrue(e.getMessage().contains("127.0.0.1:1/nothing/c.gz:"), e.getMessage());
        assertEquals(List.of(), dirContents());
    }

    @Test
    void stalledDownloadTimesOutAndLeavesNothing() throws Exception {
        byte[] data = payload(200_000);
        files.put("d.gz", data);
        FileDownloader dl = new FileDownloader(List.of(base("stall")), Duration.ofSeconds(2), Duration.ofMillis(500));
        IOException e = assertThrows(IOException.class, () -> dl.download("d.gz", data.length, md5(data), dir));
        assertTrue(e.getMessage().contains("read timed out"), e.getMessage());
        assertEquals(List.of(), dirContents());
    }

    @Test
    void interruptedDownloadLeavesNothing() throws Exception {
        byte[] data = payload(200_000);
        files.put("e.gz", data);
        FileDownloader dl = new FileDownloader(List.of(base("stall")), Duration.ofSeconds(2), Duration.ofSeconds(30));
        AtomicReference<Throwable> thrown = new AtomicReference<>();
        AtomicReference<Boolean> flag = new AtomicReference<>();
        Thread t = new Thread(() -> {
            try {
                dl.download("e.gz", data.length, md5(data), dir);
            } catch (Throwable x) {
                thrown.set(x);
                flag.set(Thread.currentThread().isInterrupted());
            }
        });
        t.start();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (hits.get("/stall/e.gz") == null && System.nanoTime() < deadline) {
            Thread.sleep(10);
        }
        Thread.sleep(200);
        t.interrupt();
        t.join(5000);
        assertTrue(thrown.get() instanceof InterruptedIOException, String.valueOf(thrown.get()));
        assertTrue(flag.get(), "interrupt flag kept");
        assertEquals(List.of(), dirContents());
    }
}
