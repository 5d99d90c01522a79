package dev.kiln.io;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;

class AtomicFilesTest {

    @Test
    @DisplayName("a new file gets the umask's permissions like any other file (not owner-only 0600); a replaced file keeps its own; no temporary is left")
    void permissions(@TempDir Path dir) throws Exception {
        Assumptions.assumeTrue(Files.getFileStore(dir).supportsFileAttributeView("posix"), "POSIX file system");
        Path reference = Files.createFile(dir.resolve("reference"));
        Path written = dir.resolve("model.safetensors");
        AtomicFiles.writeString(written, "x");
        Set<PosixFilePermission> umaskDefault = Files.getPosixFilePermissions(reference);
        assertEquals(PosixFilePermissions.toString(umaskDefault), PosixFilePermissions.toString(Files.getPosixFilePermissions(written)));
        Files.setPosixFilePermissions(written, PosixFilePermissions.fromString("rw-r-----"));
        AtomicFiles.writeString(written, "y");
        assertEquals("rw-r-----", PosixFilePermissions.toString(Files.getPosixFilePermissions(written)));
        assertEquals("y", Files.readString(written));
        try (var files = Files.list(dir)) {
            assertEquals(2, files.count(), "only the reference and the written file");
        }
    }
}
