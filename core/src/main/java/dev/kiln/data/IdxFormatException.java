package dev.kiln.data;

import dev.kiln.io.KilnFormatException;

/**
 * An IDX file (or a set of them) is malformed. The message always names the file, the field and what
 * was expected versus found, e.g. {@code t10k-labels-idx1-ubyte.gz: magic: expected 0x00000801 (labels),
 * found 0x00000803 (images)}. A {@link KilnFormatException}, like every reader's bad-bytes failure.
 */
public class IdxFormatException extends KilnFormatException {
    private static final long serialVersionUID = 1L;

    private final String file;
    private final String field;
    private final String expected;
    private final String found;

    public IdxFormatException(String file, String field, String expected, String found) {
        this(file, field, expected, found, null);
    }

    public IdxFormatException(String file, String field, String expected, String found, Throwable cause) {
        super(file, field + ": expected " + expected + ", found " + found, cause);
        this.file = file;
        this.field = field;
        this.expected = expected;
        this.found = found;
    }

    /** The file name (not the full path) the problem was found in. */
    public String file() {
        return file;
    }

    /** The field or section of the file, e.g. {@code magic}, {@code rows}, {@code pixel data truncated}. */
    public String field() {
        return field;
    }

    public String expected() {
        return expected;
    }

    public String found() {
        return found;
    }
}
