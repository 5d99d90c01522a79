package dev.kiln.data;

/**
 * The content of an IDX label file (magic 0x00000801): {@code count} unsigned bytes.
 *
 * @param labels not copied, callers must not modify it
 * @param md5    lower-case hex MD5 of the file's bytes as stored (compressed if it was gzip)
 */
public record IdxLabels(String file, int count, byte[] labels, String md5) {
    public IdxLabels {
        if (count != labels.length) {
            throw new IllegalArgumentException("labels.length " + labels.length + " != count " + count);
        }
    }

    /** Label {@code index} as 0..255. */
    public int label(int index) {
        return labels[index] & 0xff;
    }
}
