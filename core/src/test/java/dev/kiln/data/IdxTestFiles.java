package dev.kiln.data;

import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.zip.GZIPOutputStream;

/** Builds small IDX files for tests. */
public final class IdxTestFiles {
    private IdxTestFiles() {
    }

    /** Image file bytes (uncompressed): pixel i of the whole file is {@code (i * 7 + seed) & 0xff}. */
    public static byte[] images(int magic, int count, int rows, int cols, int seed) throws IOException {
        ByteArrayOutputStream bos = new ByteArrayOutputStream();
        DataOutputStream out = new DataOutputStream(bos);
        out.writeInt(magic);
        out.writeInt(count);
        out.writeInt(rows);
        out.writeInt(cols);
        for (int i = 0; i < count * rows * cols; i++) {
            out.writeByte((i * 7 + seed) & 0xff);
        }
        return bos.toByteArray();
    }

    public static byte[] images(int count, int rows, int cols) throws IOException {
        return images(IdxReader.MAGIC_IMAGES, count, rows, cols, 0);
    }

    /** Label file bytes (uncompressed): label i is {@code i % numClasses}. */
    public static byte[] labels(int count, int numClasses) throws IOException {
        ByteArrayOutputStream bos = new ByteArrayOutputStream();
        DataOutputStream out = new DataOutputStream(bos);
        out.writeInt(IdxReader.MAGIC_LABELS);
        out.writeInt(count);
        for (int i = 0; i < count; i++) {
            out.writeByte(i % numClasses);
        }
        return bos.toByteArray();
    }

    public static byte[] gzip(byte[] data) throws IOException {
        ByteArrayOutputStream bos = new ByteArrayOutputStream();
        try (OutputStream gz = new GZIPOutputStream(bos)) {
            gz.write(data);
        }
        return bos.toByteArray();
    }

    public static Path write(Path dir, String name, byte[] data) throws IOException {
        Path p = dir.resolve(name);
        Files.write(p, data);
        return p;
    }

    public static byte[] concat(byte[] a, byte[] b) {
        byte[] r = new byte[a.length + b.length];
        System.arraycopy(a, 0, r, 0, a.length);
        System.arraycopy(b, 0, r, a.length, b.length);
        return r;
    }

    /** Writes a complete, valid (non-canonical) 28x28 MNIST-named directory, gzip-compressed. */
    public static void writeMnistLike(Path dir, int train, int test) throws IOException {
        write(dir, "train-images-idx3-ubyte.gz", gzip(images(train, 28, 28)));
        write(dir, "train-labels-idx1-ubyte.gz", gzip(labels(train, 10)));
        write(dir, "t10k-images-idx3-ubyte.gz", gzip(images(test, 28, 28)));
        write(dir, "t10k-labels-idx1-ubyte.gz", gzip(labels(test, 10)));
    }

    /** Skips unless the real MNIST files are available through KILN_MNIST_DIR. */
    public static Path realMnistDirOrSkip() {
        String d = System.getenv("KILN_MNIST_DIR");
        org.junit.jupiter.api.Assumptions.assumeTrue(d != null && !d.isBlank(),
                "KILN_MNIST_DIR is not set: skipping the test on the real MNIST files");
        Path p = Path.of(d);
        org.junit.jupiter.api.Assumptions.assumeTrue(Files.isDirectory(p), "KILN_MNIST_DIR=" + d + " is not a directory");
        return p;
    }
}
