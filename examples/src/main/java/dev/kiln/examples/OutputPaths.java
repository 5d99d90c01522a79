package dev.kiln.examples;

import java.io.IOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;

/**
 * Checks, before any work starts, that every file a command will write can be written: not a directory, its
 * directory exists (or can be created under a writable ancestor) and accepts a new file, and no two options name
 * the same file. The answer is the problem in words, naming the option, the path and the reason.
 */
final class OutputPaths {

    private final Map<Path, String> claimed = new LinkedHashMap<>();

    /** The problem with writing {@code file} for {@code option}, or empty when it can be written. */
    Optional<String> problem(String option, Path file) {
        Path abs = file.toAbsolutePath().normalize();
        String other = claimed.putIfAbsent(abs, option);
        if (other != null) {
            return Optional.of(option + " " + file + ": the same file as " + other + "; each output needs its own file");
        }
        if (Files.isDirectory(abs)) {
            return Optional.of(option + " " + file + ": is a directory; give a file name");
        }
        Path dir = abs.getParent();
        if (dir == null) {
            return Optional.of(option + " " + file + ": has no directory to write into");
        }
        Path existing = dir;
        while (existing != null && !Files.exists(existing)) {
            existing = existing.getParent();
        }
        if (existing == null) {
            return Optional.of(option + " " + file + ": no part of " + dir + " exists");
        }
        if (!Files.isDirectory(existing)) {
            return Optional.of(option + " " + file + ": cannot create directory " + dir + ": " + existing
                    + " is a file, not a directory");
        }
        try {
            // the real test: make (and remove) a file where the output will be renamed into place
            Path probe = Files.createTempFile(existing, ".kiln-write-check.", ".tmp");
            Files.delete(probe);
        } catch (java.nio.file.NoSuchFileException e) {
            return Optional.of(option + " " + file + ": cannot write in " + existing + ": files cannot be created there");
        } catch (AccessDeniedException e) {
            return Optional.of(option + " " + file + ": cannot write in " + existing + ": permission denied");
        } catch (FileSystemException e) {
            return Optional.of(option + " " + file + ": cannot write in " + existing + ": "
                    + (e.getReason() != null ? e.getReason() : e.getClass().getSimpleName()));
        } catch (IOException e) {
            return Optional.of(option + " " + file + ": cannot write in " + existing + ": " + e.getMessage());
        }
        return Optional.empty();
    }
}
