package dev.kiln.data;

import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayInputStream;
import java.nio.file.FileSystemException;
import java.nio.file.Path;
import java.util.Arrays;

import static dev.kiln.data.IdxTestFiles.gzip;
import static dev.kiln.data.IdxTestFiles.images;
import static dev.kiln.data.IdxTestFiles.labels;
import static dev.kiln.data.IdxTestFiles.write;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Counts in IDX headers are believed only as far as the bytes behind them go: nothing is allocated on a lie. */
class IdxBoundsTest {

    @TempDir
    Path dir;

    @Test
    @DisplayName("an 18-byte label file claiming 2,000,000,000 labels fails as truncated, from a file and from a stream")
    void lyingLabelCount() throws Exception {
        byte[] l = labels(10, 10);
        l[4] = 0x77;
        l[5] = 0x35;
        l[6] = (byte) 0x94;
        l[7] = 0x00; // 2,000,000,000
        Path f = write(dir, "labels", l);
        IdxFormatException e = assertThrows(IdxFormatException.class, () -> IdxReader.readLabels(f, 10));
        assertEquals("labels: label data truncated: expected 2000000000 bytes, found 10", e.getMessage());
        e = assertThrows(IdxFormatException.class, () -> IdxReader.readLabels(new ByteArrayInputStream(l), "s", 10));
        assertEquals("s: label data truncated: expected 2000000000 bytes, found 10", e.getMessage());
        Path gz = write(dir, "labels.gz", gzip(l));
        e = assertThrows(IdxFormatException.class, () -> IdxReader.readLabels(gz, 10));
        assertTrue(e.getMessage().startsWith("labels.gz: label data truncated (count too large for the file)"), e.getMessage());
    }

    @Test
    @DisplayName("an image count of 2,000,000 in a 10-image file fails as truncated without allocating 1.5 GB")
    void lyingImageCount() throws Exception {
        byte[] img = images(10, 28, 28);
        img[4] = 0x00;
        img[5] = 0x1e;
        img[6] = (byte) 0x84;
        img[7] = (byte) 0x80; // 2,000,000
        Path raw = write(dir, "imgs", img);
        IdxFormatException e = assertThrows(IdxFormatException.class, () -> IdxReader.readImages(raw, 28, 28));
        assertEquals("imgs: pixel data truncated: expected 1568000000 bytes, found 7840", e.getMessage());
        // a stream has no size: the array grows only as bytes arrive
        e = assertThrows(IdxFormatException.class,
                () -> IdxReader.readImages(new ByteArrayInputStream(gzip(img)), "stream.gz", 28, 28));
        assertEquals("stream.gz: pixel data truncated: expected 1568000000 bytes, found 7840", e.getMessage());
    }

    @Test
    @DisplayName("dimensions whose product overflows a long are refused, not wrapped around")
    void overflowingDimensions() throws Exception {
        byte[] img = images(IdxReader.MAGIC_IMAGES, 0, 1, 1, 0);
        byte[] big = {0x7f, (byte) 0xff, (byte) 0xff, (byte) 0xff};
        System.arraycopy(big, 0, img, 4, 4);
        System.arraycopy(big, 0, img, 8, 4);
        System.arraycopy(big, 0, img, 12, 4);
        Path f = write(dir, "huge", img);
        IdxFormatException e = assertThrows(IdxFormatException.class, () -> IdxReader.readImages(f));
        assertTrue(e.getMessage().startsWith("huge: count*rows*cols: expected at most"), e.getMessage());
        assertTrue(e.getMessage().endsWith("= 9903520300447984150353281023"), e.getMessage());
    }

    @Test
    @DisplayName("a directory given as an IDX file is named as a directory")
    void directory() {
        FileSystemException e = assertThrows(FileSystemException.class, () -> IdxReader.readImages(dir));
        assertTrue(e.getMessage().contains(dir.toString()) && e.getMessage().contains("is a directory"), e.getMessage());
    }

    @Test
    @DisplayName("a valid file still reads (the size checks accept exact files)")
    void exact() throws Exception {
        Path f = write(dir, "ok", images(3, 2, 2));
        assertEquals(3, IdxReader.readImages(f).count());
        assertEquals(Arrays.toString(new int[]{3}), Arrays.toString(new int[]{IdxReader.readLabels(write(dir, "l", labels(3, 10))).count()}));
    }
}
