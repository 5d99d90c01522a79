package dev.kiln.data;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;

/**
 * The four canonical MNIST files, with the size and MD5 of the published {@code .gz} files and the
 * MD5 of their decompressed content (so uncompressed copies can be recognised as canonical too).
 */
public enum MnistFile {
    TRAIN_IMAGES("train-images-idx3-ubyte", 9912422L, "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            47040016L, "6bbc9ace898e44ae57da46a324031adb", 60000),
    TRAIN_LABELS("train-labels-idx1-ubyte", 28881L, "d53e105ee54ea40749a09fcbcd1e9432",
            60008L, "a25bea736e30d166cdddb491f175f624", 60000),
    TEST_IMAGES("t10k-images-idx3-ubyte", 1648877L, "9fb629c4189551a2d022fa330f9573f3",
            7840016L, "2646ac647ad5339dbf082846283269ea", 10000),
    TEST_LABELS("t10k-labels-idx1-ubyte", 4542L, "ec29112dd5afa0611ce80d1b7f02629c",
            10008L, "27ae3e4e09519cfbb04c329615203637", 10000);

    public static final int ROWS = 28;
    public static final int COLS = 28;
    public static final int NUM_CLASSES = 10;

    private final String rawName;
    private final long gzSize;
    private final String gzMd5;
    private final long rawSize;
    private final String rawMd5;
    private final int count;

    MnistFile(String rawName, long gzSize, String gzMd5, long rawSize, String rawMd5, int count) {
        this.rawName = rawName;
        this.gzSize = gzSize;
        this.gzMd5 = gzMd5;
        this.rawSize = rawSize;
        this.rawMd5 = rawMd5;
        this.count = count;
    }

    /** The published, gzip-compressed name, e.g. {@code train-images-idx3-ubyte.gz}. */
    public String gzName() {
        return rawName + ".gz";
    }

    /** The uncompressed name, e.g. {@code train-images-idx3-ubyte}. */
    public String rawName() {
        return rawName;
    }

    public long gzSize() {
        return gzSize;
    }

    public String gzMd5() {
        return gzMd5;
    }

    public long rawSize() {
        return rawSize;
    }

    public String rawMd5() {
        return rawMd5;
    }

    /** Number of images or labels in the canonical file. */
    public int count() {
        return count;
    }

    public boolean isImages() {
        return this == TRAIN_IMAGES || this == TEST_IMAGES;
    }

    public boolean isTrain() {
        return this == TRAIN_IMAGES || this == TRAIN_LABELS;
    }

    /** Whether a file of this name and MD5 is the canonical content (compressed or not). */
    public boolean isCanonical(String fileName, String md5) {
        return fileName.equals(gzName()) ? gzMd5.equals(md5) : fileName.equals(rawName) && rawMd5.equals(md5);
    }

    /** The file in {@code dir}: the {@code .gz} name if present, else the uncompressed name, else empty. */
    public Optional<Path> find(Path dir) {
        Path gz = dir.resolve(gzName());
        if (Files.isRegularFile(gz)) {
            return Optional.of(gz);
        }
        Path raw = dir.resolve(rawName);
        return Files.isRegularFile(raw) ? Optional.of(raw) : Optional.empty();
    }

    /** "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz". */
    public static String allGzNames() {
        StringBuilder sb = new StringBuilder();
        for (MnistFile f : values()) {
            if (sb.length() > 0) {
                sb.append(", ");
            }
            sb.append(f.gzName());
        }
        return sb.toString();
    }
}
