package dev.kiln.io;

import java.io.IOException;

/**
 * A file read from outside (IDX data, a safetensors model or checkpoint, provenance JSON) does not hold what its
 * format promises, or holds a valid variant Kiln cannot use (a dtype it has no place for, a checkpoint from another
 * model). The one exception Kiln's readers throw for bad bytes, whatever they are: the message starts with
 * the file and says what was wrong, e.g. {@code model.safetensors: tensor fc1.weight: data_offsets [0, 400) overlap
 * the previous tensor's [0, 800)}. Never thrown for a file that could not be opened (that is the platform's
 * {@link java.nio.file.NoSuchFileException} or {@link java.nio.file.FileSystemException}, naming the path).
 *
 * <p>Checked, and an {@link IOException}, because a caller already handles I/O failures where it reads files, and a
 * bad file is one of them: a service can reject the file and go on. Subclasses add fields ({@code IdxFormatException}).
 */
public class KilnFormatException extends IOException {
    private static final long serialVersionUID = 1L;

    private final String file;
    private final String problem;

    public KilnFormatException(String file, String problem) {
        this(file, problem, null);
    }

    public KilnFormatException(String file, String problem, Throwable cause) {
        super(file + ": " + problem, cause);
        this.file = file;
        this.problem = problem;
    }

    /**
     * A name or value taken from a file, fit for a message: control characters escaped, cut after 80 characters (a
     * hostile file's names can be megabytes long).
     */
    public static String printable(CharSequence fromFile) {
        return SafeTensorsHeader.printable(fromFile);
    }

    /** The file as the caller named it (a path or, for streams, the name given to the reader). */
    public String file() {
        return file;
    }

    /** What was wrong, without the file name. */
    public String problem() {
        return problem;
    }
}
