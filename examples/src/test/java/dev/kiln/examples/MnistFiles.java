package dev.kiln.examples;

import dev.kiln.datasets.MnistLocator;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;

/** Where the tests find real MNIST: {@code KILN_MNIST_DIR} (CI sets it), else the user cache. */
final class MnistFiles {

    private MnistFiles() {
    }

    static Optional<Path> find() {
        String env = System.getenv(MnistLocator.ENV_DATA_DIR);
        if (env != null && !env.isBlank() && hasAll(Path.of(env))) {
            return Optional.of(Path.of(env));
        }
        Path cache = MnistLocator.defaultCacheDir(System::getenv);
        return hasAll(cache) ? Optional.of(cache) : Optional.empty();
    }

    private static boolean hasAll(Path dir) {
        for (String f : new String[]{"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"}) {
            if (!Files.isRegularFile(dir.resolve(f + ".gz")) && !Files.isRegularFile(dir.resolve(f))) {
                return false;
            }
        }
        return true;
    }

    static final String SKIP = "no MNIST files found: set KILN_MNIST_DIR to a directory with the four MNIST files"
            + " (CI sets it to ../shared/data/mnist)";
}
