package dev.kiln.data;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Reads IDX files (the MNIST format, also used by Fashion-MNIST, KMNIST, EMNIST...), gzip-compressed
 * or raw (detected from the first two bytes), streaming straight into the result array.
 *
 * <p>Everything is validated: magic, positive dimensions (and expected rows/cols when given), label
 * range, truncation and trailing bytes. Every failure is an {@link IdxFormatException} whose message
 * names the file, the field and expected versus found; a partial data set is never returned.
 */
public final class IdxReader {
    public static final int MAGIC_LABELS = 0x00000801;
    public static final int MAGIC_IMAGES = 0x00000803;
    /** Largest payload that fits in one Java array. */
    private static final long MAX_ARRAY = Integer.MAX_VALUE - 16;

    private IdxReader() {
    }

    /** Reads an image file, any dimensions. */
    public static IdxImages readImages(Path file) throws IOException {
        return readImages(file, 0, 0);
    }

    /**
     * Reads an image file.
     *
     * @param expectedRows required number of rows, or 0 for any
     * @param expectedCols required number of columns, or 0 for any
     */
    public static IdxImages readImages(Path file, int expectedRows, int expectedCols) throws IOException {
        long size = regularFileSize(file);
        try (InputStream in = Files.newInputStream(file)) {
            return readImages(in, fileName(file), expectedRows, expectedCols, size);
        }
    }

    /** Reads an image file from a stream; {@code name} is used in messages. Does not close {@code in}. */
    public static IdxImages readImages(InputStream in, String name, int expectedRows, int expectedCols) throws IOException {
        return readImages(in, name, expectedRows, expectedCols, -1);
    }

    private static IdxImages readImages(InputStream in, String name, int expectedRows, int expectedCols, long storedSize)
            throws IOException {
        IdxInput idx = new IdxInput(in, name);
        checkMagic(idx, MAGIC_IMAGES);
        int count = nonNegative(idx, "count", idx.readInt("count"));
        int rows = positive(idx, "rows", idx.readInt("rows"));
        int cols = positive(idx, "cols", idx.readInt("cols"));
        if (expectedRows > 0 && rows != expectedRows) {
            throw new IdxFormatException(name, "rows", Integer.toString(expectedRows), Integer.toString(rows));
        }
        if (expectedCols > 0 && cols != expectedCols) {
            throw new IdxFormatException(name, "cols", Integer.toString(expectedCols), Integer.toString(cols));
        }
        // rows*cols fits in a long; times count it may not, so compare by division before multiplying
        long pixelsPerImage = (long) rows * cols;
        long total = count == 0 ? 0 : count > MAX_ARRAY / pixelsPerImage ? Long.MAX_VALUE : count * pixelsPerImage;
        if (total > MAX_ARRAY) {
            throw new IdxFormatException(name, "count*rows*cols", "at most " + MAX_ARRAY + " bytes",
                    count + "*" + rows + "*" + cols + " = " + java.math.BigInteger.valueOf(count)
                            .multiply(java.math.BigInteger.valueOf(pixelsPerImage)));
        }
        checkDeclaredSize(idx, storedSize, 16, total, "count*rows*cols (" + count + "*" + rows + "*" + cols + ")");
        byte[] pixels = idx.readPayload((int) total, "pixel data");
        idx.expectEnd(16 + total);
        return new IdxImages(name, count, rows, cols, pixels, idx.md5Hex());
    }

    /** Reads a label file, any label values. */
    public static IdxLabels readLabels(Path file) throws IOException {
        return readLabels(file, 0);
    }

    /**
     * Reads a label file.
     *
     * @param numClasses when positive, every label must be in {@code 0..numClasses-1}
     */
    public static IdxLabels readLabels(Path file, int numClasses) throws IOException {
        long size = regularFileSize(file);
        try (InputStream in = Files.newInputStream(file)) {
            return readLabels(in, fileName(file), numClasses, size);
        }
    }

    /** Reads a label file from a stream; {@code name} is used in messages. Does not close {@code in}. */
    public static IdxLabels readLabels(InputStream in, String name, int numClasses) throws IOException {
        return readLabels(in, name, numClasses, -1);
    }

    private static IdxLabels readLabels(InputStream in, String name, int numClasses, long storedSize) throws IOException {
        IdxInput idx = new IdxInput(in, name);
        checkMagic(idx, MAGIC_LABELS);
        int count = nonNegative(idx, "count", idx.readInt("count"));
        checkDeclaredSize(idx, storedSize, 8, count, "count");
        byte[] labels = idx.readPayload(count, "label data");
        idx.expectEnd(8L + count);
        if (numClasses > 0) {
            for (int i = 0; i < count; i++) {
                int v = labels[i] & 0xff;
                if (v >= numClasses) {
                    throw new IdxFormatException(name, "label[" + i + "]", "0.." + (numClasses - 1), Integer.toString(v));
                }
            }
        }
        return new IdxLabels(name, count, labels, idx.md5Hex());
    }

    /** Human-readable magic, e.g. {@code 0x00000803 (images)}. */
    static String describeMagic(int magic) {
        String hex = String.format("0x%08x", magic);
        return switch (magic) {
            case MAGIC_IMAGES -> hex + " (images)";
            case MAGIC_LABELS -> hex + " (labels)";
            default -> hex;
        };
    }

    private static void checkMagic(IdxInput idx, int expected) throws IOException {
        int magic = idx.readInt("magic");
        if (magic != expected) {
            throw new IdxFormatException(idx.name(), "magic", describeMagic(expected), describeMagic(magic));
        }
    }

    private static int positive(IdxInput idx, String field, int v) throws IdxFormatException {
        if (v <= 0) {
            throw new IdxFormatException(idx.name(), field, "a positive number", Long.toString(v & 0xffffffffL));
        }
        return v;
    }

    private static int nonNegative(IdxInput idx, String field, int v) throws IdxFormatException {
        if (v < 0) {
            throw new IdxFormatException(idx.name(), field, "at most " + Integer.MAX_VALUE, Long.toString(v & 0xffffffffL));
        }
        return v;
    }

    /**
     * Before anything is allocated: a raw file must be exactly header + payload bytes long; a gzip file cannot
     * decompress to more than {@link IdxInput#MAX_DEFLATE_RATIO} times its size. Unknown sizes (streams) are
     * bounded by {@link IdxInput#readPayload} instead. Trailing bytes are reported after the payload is read.
     */
    private static void checkDeclaredSize(IdxInput idx, long storedSize, int headerBytes, long payload, String field)
            throws IdxFormatException {
        if (storedSize < 0) {
            return;
        }
        String what = headerBytes == 16 ? "pixel data" : "label data";
        if (!idx.gzip()) {
            if (storedSize < headerBytes + payload) {
                throw new IdxFormatException(idx.name(), what + " truncated", payload + " bytes",
                        Long.toString(Math.max(0, storedSize - headerBytes)));
            }
        } else if (payload + headerBytes > storedSize * IdxInput.MAX_DEFLATE_RATIO) {
            throw new IdxFormatException(idx.name(), what + " truncated (" + field + " too large for the file)",
                    "at most " + storedSize * IdxInput.MAX_DEFLATE_RATIO + " bytes from " + storedSize
                            + " compressed bytes", (headerBytes + payload) + " bytes declared by the header");
        }
    }

    /** The size of a regular file; a directory or other non-file is named as such before any reading. */
    private static long regularFileSize(Path file) throws IOException {
        if (Files.isDirectory(file)) {
            throw new java.nio.file.FileSystemException(file.toString(), null, "is a directory, not an IDX file");
        }
        return Files.size(file);
    }

    private static String fileName(Path file) {
        Path n = file.getFileName();
        return n == null ? file.toString() : n.toString();
    }
}
