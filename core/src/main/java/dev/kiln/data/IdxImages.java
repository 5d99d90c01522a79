package dev.kiln.data;

/**
 * The content of an IDX image file (magic 0x00000803): {@code count} images of {@code rows x cols}
 * unsigned bytes, row-major, image after image.
 *
 * @param pixels {@code count * rows * cols} unsigned bytes (read with {@code b & 0xff}); not copied,
 *               callers must not modify it
 * @param md5    lower-case hex MD5 of the file's bytes as stored (compressed if it was gzip)
 */
public record IdxImages(String file, int count, int rows, int cols, byte[] pixels, String md5) {
    public IdxImages {
        if ((long) count * rows * cols != pixels.length) {
            throw new IllegalArgumentException("pixels.length " + pixels.length + " != " + count + "*" + rows + "*" + cols);
        }
    }

    /** Pixel value 0..255 of image {@code index} at ({@code row}, {@code col}). */
    public int pixel(int index, int row, int col) {
        return pixels[(index * rows + row) * cols + col] & 0xff;
    }
}
