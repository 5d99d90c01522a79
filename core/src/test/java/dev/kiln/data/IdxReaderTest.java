package dev.kiln.data;

import static dev.kiln.data.IdxTestFiles.concat;
import static dev.kiln.data.IdxTestFiles.gzip;
import static dev.kiln.data.IdxTestFiles.images;
import static dev.kiln.data.IdxTestFiles.labels;
import static dev.kiln.data.IdxTestFiles.write;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class IdxReaderTest {
    @TempDir
    Path dir;

    @Test
    void readsRawAndGzipIdentically() throws Exception {
        byte[] raw = images(3, 4, 5);
        Path rawFile = write(dir, "x-images", raw);
        Path gzFile = write(dir, "x-images.gz", gzip(raw));
        IdxImages a = IdxReader.readImages(rawFile, 4, 5);
        IdxImages b = IdxReader.readImages(gzFile);
        assertEquals(3, a.count());
        assertEquals(4, a.rows());
        assertEquals(5, a.cols());
        assertArrayEquals(Arrays.copyOfRange(raw, 16, raw.length), a.pixels());
        assertArrayEquals(a.pixels(), b.pixels());
        assertEquals((1 * 20 + 2 * 5 + 3) * 7 & 0xff, a.pixel(1, 2, 3));
        // md5 is of the file as stored
        assertEquals(Md5.of(rawFile), a.md5());
        assertEquals(Md5.of(gzFile), b.md5());
    }

    @Test
    void readsLabels() throws Exception {
        Path f = write(dir, "l.gz", gzip(labels(25, 10)));
        IdxLabels l = IdxReader.readLabels(f, 10);
        assertEquals(25, l.count());
        assertEquals(7, l.label(17));
        assertEquals(Md5.of(f), l.md5());
    }

    @Test
    void wrongMagicNamesFileAndBothMagics() throws Exception {
        Path f = write(dir, "t10k-labels-idx1-ubyte.gz", gzip(images(1, 2, 2)));
        IdxFormatException e = assertThrows(IdxFormatException.class, () -> IdxReader.readLabels(f, 10));
        assertEquals("t10k-labels-idx1-ubyte.gz: magic: expected 0x00000801 (labels), found 0x00000803 (images)",
                e.getMessage());
        assertEquals("magic", e.field());
    }

    @Test
    void truncatedPixelsGzipAndRaw() throws Exception {
        byte[] full = images(10, 28, 28);
        byte[] cut = Arrays.copyOf(full, 16 + 1024);
        Path gz = write(dir, "train-images-idx3-ubyte.gz", gzip(cut));
        IdxFormatException e = assertThrows(IdxFormatException.class, () -> IdxReader.readImages(gz, 28, 28));
        assertEquals("train-images-idx3-ubyte.gz: pixel data truncated: expected 7840 bytes, found 1024", e.getMessage());
        Path raw = write(dir, "train-images-idx3-ubyte", cut);
        e = assertThrows(IdxFormatException.class, () -> IdxReader.readImages(raw));
        assertEquals("train-images-idx3-ubyte: pixel data truncated: expected 7840 bytes, found 1024", e.getMessage());
    }

    @Test
    void truncatedCompressedStream() throws Exception {
        byte[] gz = gzip(images(50, 28, 28));
        Path f = write(dir, "cut.gz", Arrays.copyOf(gz, gz.length / 2));
        IdxFormatException e = assertThrows(IdxFormatException.class, () -> IdxReader.readImages(f));
        assertTrue(e.getMessage().startsWith("cut.gz: "), e.getMessage());
        assertTrue(e.getMessage().contains("truncated") || e.getMessage().contains("gzip"), e.getMessage());
    }

    @Test
    void truncatedHeaderAndEmptyFile() throws Exception {
        Path f = write(dir, "h", Arrays.copyOf(images(1, 2, 2), 10));
        IdxFormatException e = assertThrows(IdxFormatException.class, () -> IdxReader.readImages(f));
        assertEquals("h: rows truncated: expected 4 bytes, found 2", e.getMessage());
        Path empty = write(dir, "empty", new byte[0]);
        e = assertThrows(IdxFormatException.class, () -> IdxReader.readLabels(empty));
        assertEquals("empty: magic truncated: expected 4 bytes, found 0 (end of file)", e.getMessage());
    }

    @Test
    void wrongAndNonPositiveDimensions() throws Exception {
        Path f = write(dir, "imgs.gz", gzip(images(2, 32, 28)));
        IdxFormatException e = assertThrows(IdxFormatException.class, () -> IdxReader.readImages(f, 28, 28));
        assertEquals("imgs.gz: rows: expected 28, found 32", e.getMessage());
        Path z = write(dir, "zero", images(IdxReader.MAGIC_IMAGES, 2, 0, 28, 0));
        e = assertThrows(IdxFormatException.class, () -> IdxReader.readImages(z));
        assertEquals("zero: rows: expected a positive number, found 0", e.getMessage());
        // the header claims 2^20 images of 1024x1024 (2^40 bytes): rejected before allocating anything
        byte[] hdr = images(IdxReader.MAGIC_IMAGES, 0, 1024, 1024, 0);
        hdr[5] = 0x10; // count = 0x00100000
        Path big = write(dir, "big", hdr);
        e = assertThrows(IdxFormatException.class, () -> IdxReader.readImages(big));
        assertTrue(e.getMessage().startsWith("big: count*rows*cols: expected at most"), e.getMessage());
    }

    @Test
    void labelOutOfRange() throws Exception {
        byte[] l = labels(5, 10);
        l[8 + 3] = 12;
        Path f = write(dir, "train-labels-idx1-ubyte.gz", gzip(l));
        IdxFormatException e = assertThrows(IdxFormatException.class, () -> IdxReader.readLabels(f, 10));
        assertEquals("train-labels-idx1-ubyte.gz: label[3]: expected 0..9, found 12", e.getMessage());
        assertEquals(12, IdxReader.readLabels(f).label(3)); // without numClasses any byte is fine
    }

    @Test
    void garbageGzip() throws Exception {
        byte[] garbage = new byte[200];
        garbage[0] = 0x1f;
        garbage[1] = (byte) 0x8b;
        for (int i = 2; i < garbage.length; i++) {
            garbage[i] = (byte) (i * 31);
        }
        Path f = write(dir, "garbage.gz", garbage);
        IdxFormatException e = assertThrows(IdxFormatException.class, () -> IdxReader.readImages(f));
        assertTrue(e.getMessage().startsWith("garbage.gz: gzip stream"), e.getMessage());
        assertTrue(e.getMessage().contains("corrupt"), e.getMessage());
        // corrupt deflate data after a valid header
        byte[] good = gzip(images(20, 28, 28));
        for (int i = 20; i < good.length - 8; i += 3) {
            good[i] ^= 0x5a;
        }
        Path g = write(dir, "flipped.gz", good);
        e = assertThrows(IdxFormatException.class, () -> IdxReader.readImages(g));
        assertTrue(e.getMessage().startsWith("flipped.gz: "), e.getMessage());
    }

    @Test
    void trailingBytes() throws Exception {
        byte[] withTail = concat(labels(4, 10), new byte[] {1, 2, 3});
        Path raw = write(dir, "l", withTail);
        IdxFormatException e = assertThrows(IdxFormatException.class, () -> IdxReader.readLabels(raw, 10));
        assertEquals("l: trailing data: expected end of file after 12 bytes, found 3 more bytes", e.getMessage());
        Path gz = write(dir, "l.gz", gzip(withTail));
        e = assertThrows(IdxFormatException.class, () -> IdxReader.readLabels(gz, 10));
        assertEquals("l.gz: trailing data: expected end of decompressed data after 12 bytes, found 3 more bytes",
                e.getMessage());
    }
}
