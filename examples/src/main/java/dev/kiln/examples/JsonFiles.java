package dev.kiln.examples;

import com.google.gson.GsonBuilder;
import dev.kiln.io.AtomicFiles;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;

/** The JSON the commands write (metrics, bench results): pretty-printed, written atomically. */
final class JsonFiles {

    private JsonFiles() {
    }

    static void write(Path path, Object document) {
        try {
            AtomicFiles.writeString(path, new GsonBuilder().setPrettyPrinting().create().toJson(document) + "\n");
        } catch (IOException e) {
            throw new UncheckedIOException("could not write " + path, e);
        }
    }
}
