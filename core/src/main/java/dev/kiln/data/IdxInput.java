package dev.kiln.data;

import java.io.BufferedInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.security.DigestInputStream;
import java.security.MessageDigest;
import java.util.Arrays;
import java.util.zip.GZIPInputStream;
import java.util.zip.ZipException;

/**
 * One IDX stream being read: gzip detection, MD5 of the stored bytes, and reads that turn every
 * short read or corrupt gzip block into an {@link IdxFormatException} naming the file and field.
 * Package-private helper of {@link IdxReader}.
 */
final class IdxInput {
    private static final int BUFFER = 1 << 16;
    /** The most a payload array grows by before that many bytes have actually arrived. */
    private static final int GROWTH_STEP = 8 << 20;
    /**
     * Deflate cannot expand data by more than about 1032:1 (a 258-byte match in at most 2 bits of a block); a
     * declared size beyond this many times the compressed size cannot be in the file.
     */
    static final long MAX_DEFLATE_RATIO = 1100;

    private final String name;
    private final MessageDigest md5;
    private final BufferedInputStream raw;
    private final InputStream data;
    private final boolean gzip;
    private final byte[] header = new byte[4];

    IdxInput(InputStream in, String name) throws IOException {
        this.name = name;
        this.md5 = Md5.newDigest();
        this.raw = new BufferedInputStream(new DigestInputStream(in, md5), BUFFER);
        raw.mark(2);
        int b0 = raw.read();
        int b1 = raw.read();
        raw.reset();
        this.gzip = b0 == 0x1f && b1 == 0x8b;
        if (gzip) {
            try {
                this.data = new GZIPInputStream(raw, BUFFER);
            } catch (ZipException | EOFException e) {
                throw corrupt("gzip header", e);
            }
        } else {
            this.data = raw;
        }
    }

    String name() {
        return name;
    }

    boolean gzip() {
        return gzip;
    }

    /** Reads a big-endian 32-bit integer; {@code field} names it in error messages. */
    int readInt(String field) throws IOException {
        int n = readUpTo(header, 0, 4, field);
        if (n < 4) {
            throw new IdxFormatException(name, field + " truncated", "4 bytes", n + (n == 0 ? " (end of file)" : ""));
        }
        return ((header[0] & 0xff) << 24) | ((header[1] & 0xff) << 16) | ((header[2] & 0xff) << 8) | (header[3] & 0xff);
    }

    /**
     * Reads exactly {@code declared} bytes, straight from the (decompressing) stream, into an array that grows only
     * as bytes arrive (at most {@link #GROWTH_STEP} ahead of them): a header that claims more data than the stream
     * holds fails as truncated instead of allocating what it claims.
     */
    byte[] readPayload(int declared, String what) throws IOException {
        byte[] dst = new byte[Math.min(declared, GROWTH_STEP)];
        int filled = 0;
        while (true) {
            int n = readUpTo(dst, filled, dst.length - filled, what);
            filled += n;
            if (filled < dst.length) {
                throw new IdxFormatException(name, what + " truncated", declared + " bytes", Integer.toString(filled));
            }
            if (filled == declared) {
                return dst;
            }
            dst = Arrays.copyOf(dst, (int) Math.min(declared, (long) filled + Math.max(filled, GROWTH_STEP)));
        }
    }

    /** Fails if anything follows the payload; then drains the raw stream so the MD5 covers the whole file. */
    void expectEnd(long expectedBytes) throws IOException {
        byte[] skip = new byte[8192];
        long extra = 0;
        try {
            int r;
            while ((r = data.read(skip)) > 0) {
                extra += r;
                if (extra > (1 << 20)) {
                    break;
                }
            }
        } catch (ZipException | EOFException e) {
            throw corrupt("end of data", e);
        }
        if (extra > 0) {
            throw new IdxFormatException(name, "trailing data",
                    "end of " + (gzip ? "decompressed data" : "file") + " after " + expectedBytes + " bytes",
                    (extra > (1 << 20) ? "more than " : "") + extra + " more bytes");
        }
        while (raw.read(skip) >= 0) {
            // digest whatever the gzip reader left unread (e.g. padding after the last member)
        }
    }

    String md5Hex() {
        return Md5.hex(md5.digest());
    }

    private int readUpTo(byte[] dst, int off, int len, String field) throws IOException {
        int total = 0;
        try {
            while (total < len) {
                int r = data.read(dst, off + total, len - total);
                if (r < 0) {
                    break;
                }
                total += r;
            }
        } catch (EOFException e) {
            // GZIPInputStream: "Unexpected end of ZLIB input stream" -> the compressed file is cut short.
            return total;
        } catch (ZipException e) {
            throw corrupt(field, e);
        }
        return total;
    }

    private IdxFormatException corrupt(String field, IOException e) {
        return new IdxFormatException(name, "gzip stream (while reading " + field + ")", "valid gzip data",
                "corrupt data: " + e.getMessage(), e);
    }
}
