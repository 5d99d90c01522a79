package dev.kiln.data;

import static dev.kiln.data.IdxTestFiles.gzip;
import static dev.kiln.data.IdxTestFiles.images;
import static dev.kiln.data.IdxTestFiles.labels;
import static dev.kiln.data.IdxTestFiles.write;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class MnistDirectoryTest {
    @TempDir
    Path dir;

    @Test
    void readsValidNonCanonicalFilesAndSaysSo() throws Exception {
        IdxTestFiles.writeMnistLike(dir, 30, 12);
        ImageDataset ds = MnistDirectory.read(dir, "directory", false);
        assertEquals(30, ds.train().size());
        assertEquals(12, ds.test().size());
        assertEquals(28, ds.rows());
        assertEquals(4, ds.md5().size());
        assertEquals(Md5.of(dir.resolve("train-images-idx3-ubyte.gz")), ds.md5().get("train-images-idx3-ubyte.gz"));
        assertTrue(ds.source().contains("NOT canonical MNIST"), ds.source());
        // the cache accepts only canonical files
        MnistDataException e = assertThrows(MnistDataException.class, () -> MnistDirectory.read(dir, "cache", true));
        assertTrue(e.getMessage().contains("train-images-idx3-ubyte.gz: md5: expected f68b3c2dcbeaaa9fbdd348bbdeb94873"),
                e.getMessage());
    }

    @Test
    void acceptsUncompressedNames() throws Exception {
        write(dir, "train-images-idx3-ubyte", images(5, 28, 28));
        write(dir, "train-labels-idx1-ubyte", labels(5, 10));
        write(dir, "t10k-images-idx3-ubyte", images(3, 28, 28));
        write(dir, "t10k-labels-idx1-ubyte.gz", gzip(labels(3, 10)));
        ImageDataset ds = MnistDirectory.read(dir, "directory", false);
        assertEquals(5, ds.train().size());
        assertEquals(ds.train().label(3), 3);
        assertTrue(ds.md5().containsKey("train-images-idx3-ubyte"));
    }

    @Test
    void countMismatchBetweenImagesAndLabels() throws Exception {
        IdxTestFiles.writeMnistLike(dir, 30, 12);
        write(dir, "train-labels-idx1-ubyte.gz", gzip(labels(29, 10)));
        MnistDataException e = assertThrows(MnistDataException.class, () -> MnistDirectory.read(dir, "directory", false));
        assertTrue(e.getMessage().contains("train-labels-idx1-ubyte.gz: count: expected 30 (the number of images in "
                + "train-images-idx3-ubyte.gz), found 29"), e.getMessage());
    }

    @Test
    void reportsEveryMissingAndBadFileTogether() throws Exception {
        IdxTestFiles.writeMnistLike(dir, 30, 12);
        Files.delete(dir.resolve("t10k-images-idx3-ubyte.gz"));
        write(dir, "train-images-idx3-ubyte.gz", gzip(images(30, 32, 32)));
        MnistDataException e = assertThrows(MnistDataException.class, () -> MnistDirectory.read(dir, "--data directory", false));
        String m = e.getMessage();
        assertTrue(m.startsWith("MNIST --data directory " + dir.toAbsolutePath() + " is unusable"), m);
        assertTrue(m.contains("t10k-images-idx3-ubyte.gz (or uncompressed t10k-images-idx3-ubyte): missing"), m);
        assertTrue(m.contains("train-images-idx3-ubyte.gz: rows: expected 28, found 32"), m);
    }

    @Test
    void realMnistFromKilnMnistDir() throws Exception {
        Path real = IdxTestFiles.realMnistDirOrSkip();
        long t0 = System.nanoTime();
        ImageDataset ds = MnistDirectory.read(real, "directory", true);
        long ms = (System.nanoTime() - t0) / 1_000_000;
        assertEquals(60000, ds.train().size());
        assertEquals(10000, ds.test().size());
        assertEquals(28, ds.rows());
        assertEquals(28, ds.cols());
        assertTrue(ds.source().contains("canonical MNIST files"), ds.source());
        for (MnistFile f : MnistFile.values()) {
            assertEquals(f.gzMd5(), ds.md5().get(f.gzName()), f.gzName());
        }
        // well-known facts about MNIST: first training label is 5, first test label is 7
        assertEquals(5, ds.train().label(0));
        assertEquals(7, ds.test().label(0));
        int[] counts = new int[10];
        for (int i = 0; i < ds.train().size(); i++) {
            counts[ds.train().label(i)]++;
        }
        assertEquals(5923, counts[0]);
        assertEquals(6742, counts[1]);
        org.slf4j.LoggerFactory.getLogger(MnistDirectoryTest.class).info("Read real MNIST in {} ms", ms);
    }
}
