package dev.kiln.datasets;

import dev.kiln.data.Md5;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.net.ConnectException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Downloads a file of known size and MD5 from the first mirror that serves it correctly, with
 * {@link HttpClient}, a connect timeout and an idle (read) timeout. The body is written to a temporary
 * file in the target directory, verified, then atomically moved into place: a failed, mismatched or
 * interrupted download never leaves a partial file behind.
 */
public final class FileDownloader {
    private static final Logger log = LoggerFactory.getLogger(FileDownloader.class);
    private static final long POLL_MILLIS = 100;

    private final List<URI> mirrors;
    private final Duration readTimeout;
    private final HttpClient client;

    /**
     * @param mirrors        base URLs, tried in order; the file name is appended (a missing trailing
     *                       slash is added)
     * @param connectTimeout TCP connect timeout
     * @param readTimeout    longest time without receiving any data (headers or body)
     */
    public FileDownloader(List<URI> mirrors, Duration connectTimeout, Duration readTimeout) {
        this.mirrors = List.copyOf(mirrors);
        this.readTimeout = Objects.requireNonNull(readTimeout, "readTimeout");
        this.client = HttpClient.newBuilder()
                .connectTimeout(Objects.requireNonNull(connectTimeout, "connectTimeout"))
                .followRedirects(HttpClient.Redirect.NORMAL)
                .build();
    }

    public List<URI> mirrors() {
        return mirrors;
    }

    /**
     * Downloads {@code name} into {@code dir} (replacing any file of that name) and returns its path.
     *
     * @throws InterruptedIOException if the thread was interrupted (the interrupt flag is kept)
     * @throws IOException            naming every mirror tried and why it failed
     */
    public Path download(String name, long expectedSize, String expectedMd5, Path dir) throws IOException {
        if (mirrors.isEmpty()) {
            throw new IOException(name + ": no download mirrors configured");
        }
        Files.createDirectories(dir);
        Path target = dir.resolve(name);
        List<String> failures = new ArrayList<>();
        for (URI base : mirrors) {
            URI uri = resolve(base, name);
            Path tmp = Files.createTempFile(dir, "." + name + ".", ".part");
            boolean moved = false;
            try {
                log.info("Downloading {} ({} bytes) from {}", name, expectedSize, uri);
                long t0 = System.nanoTime();
                fetch(uri, tmp, name, expectedSize, expectedMd5);
                try {
                    Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
                } catch (AtomicMoveNotSupportedException e) {
                    Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING);
                }
                moved = true;
                log.info("Downloaded {} in {} ms, md5 {} verified", target, (System.nanoTime() - t0) / 1_000_000, expectedMd5);
                return target;
            } catch (InterruptedIOException e) {
                throw e;
            } catch (IOException e) {
                String why = describe(e);
                log.warn("{}: {}", uri, why);
                failures.add(uri + ": " + why);
            } finally {
                if (!moved) {
                    Files.deleteIfExists(tmp);
                }
            }
        }
        throw new IOException(name + ": download failed from every mirror:\n    " + String.join("\n    ", failures));
    }

    private void fetch(URI uri, Path tmp, String name, long expectedSize, String expectedMd5) throws IOException {
        MessageDigest md = Md5.newDigest();
        try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
            Sink sink = new Sink(ch, md, expectedSize);
            HttpRequest request = HttpRequest.newBuilder(uri).timeout(readTimeout).GET().build();
            CompletableFuture<HttpResponse<Void>> future = client.sendAsync(request,
                    info -> info.statusCode() == 200
                            ? HttpResponse.BodySubscribers.ofByteArrayConsumer(sink)
                            : HttpResponse.BodySubscribers.replacing(null));
            HttpResponse<Void> response;
            try {
                response = await(future, sink);
            } finally {
                sink.abort(); // no write after this point, whatever the HTTP client still delivers
            }
            if (response.statusCode() != 200) {
                throw new IOException("HTTP " + response.statusCode());
            }
            if (sink.failure != null) {
                throw sink.failure;
            }
            if (sink.bytes != expectedSize) {
                throw new IOException("size: expected " + expectedSize + " bytes, found " + sink.bytes);
            }
            String md5 = Md5.hex(md.digest());
            if (!md5.equalsIgnoreCase(expectedMd5)) {
                throw new IOException("md5: expected " + expectedMd5 + ", found " + md5 + " (" + name + " corrupt; discarded)");
            }
            ch.force(true);
        }
    }

    private HttpResponse<Void> await(CompletableFuture<HttpResponse<Void>> future, Sink sink) throws IOException {
        try {
            while (true) {
                try {
                    return future.get(POLL_MILLIS, TimeUnit.MILLISECONDS);
                } catch (TimeoutException e) {
                    long idle = System.nanoTime() - sink.lastProgress;
                    if (idle > readTimeout.toNanos()) {
                        future.cancel(true);
                        throw new HttpTimeoutException("read timed out: no data for " + readTimeout.toMillis()
                                + " ms after " + sink.bytes + " bytes");
                    }
                }
            }
        } catch (InterruptedException e) {
            future.cancel(true);
            Thread.currentThread().interrupt();
            InterruptedIOException ie = new InterruptedIOException("download interrupted; partial file removed");
            ie.initCause(e);
            throw ie;
        } catch (ExecutionException e) {
            Throwable c = e.getCause();
            if (c instanceof IOException io) {
                throw io;
            }
            throw new IOException(String.valueOf(c), c);
        }
    }

    private static URI resolve(URI base, String name) {
        String s = base.toString();
        return URI.create(s.endsWith("/") ? s + name : s + "/" + name);
    }

    private static String describe(IOException e) {
        if (e instanceof ConnectException || e.getCause() instanceof ConnectException) {
            return "cannot connect (" + e + ")";
        }
        String msg = e.getMessage();
        return msg == null ? e.toString() : (e instanceof HttpTimeoutException || e.getClass() == IOException.class) ? msg : e.toString();
    }

    /** Receives body chunks on the HTTP client's threads; writes, digests and counts them. */
    private static final class Sink implements Consumer<Optional<byte[]>> {
        private final FileChannel channel;
        private final MessageDigest md;
        private final long expectedSize;
        volatile long lastProgress = System.nanoTime();
        volatile long bytes;
        volatile IOException failure;
        private boolean aborted;

        Sink(FileChannel channel, MessageDigest md, long expectedSize) {
            this.channel = channel;
            this.md = md;
            this.expectedSize = expectedSize;
        }

        @Override
        public synchronized void accept(Optional<byte[]> chunk) {
            lastProgress = System.nanoTime();
            if (aborted || failure != null || chunk.isEmpty()) {
                return;
            }
            byte[] b = chunk.get();
            if (bytes + b.length > expectedSize) {
                failure = new IOException("size: expected " + expectedSize + " bytes, found more than " + (bytes + b.length));
                return;
            }
            try {
                ByteBuffer buf = ByteBuffer.wrap(b);
                while (buf.hasRemaining()) {
                    channel.write(buf);
                }
                md.update(b);
                bytes += b.length;
            } catch (IOException e) {
                failure = e;
            }
        }

        synchronized void abort() {
            aborted = true;
        }
    }
}
