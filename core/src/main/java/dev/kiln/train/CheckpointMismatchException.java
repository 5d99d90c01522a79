package dev.kiln.train;

import java.nio.file.Path;
import java.util.List;

/**
 * A checkpoint was written by a run with different settings than the one resuming it, so continuing would give a
 * model neither run describes. Lists every difference; nothing was restored.
 */
public class CheckpointMismatchException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;

    private final transient Path file;
    private final List<String> differences;

    public CheckpointMismatchException(Path file, List<String> differences) {
        super(file + " was written with different settings (" + differences.size() + "):\n  "
                + String.join("\n  ", differences));
        this.file = file;
        this.differences = List.copyOf(differences);
    }

    public Path file() {
        return file;
    }

    /** One line per setting: {@code name: checkpoint X, now Y}. */
    public List<String> differences() {
        return differences;
    }
}
