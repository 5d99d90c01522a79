package dev.kiln.data;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * An image classification data set with a train and a test split (MNIST and look-alikes) and its
 * provenance.
 *
 * @param source     one line saying where the data came from, e.g.
 *                   {@code directory /data/mnist (canonical MNIST files)}
 * @param md5        file name to MD5 (lower-case hex) of each file actually read, in reading order
 */
public record ImageDataset(ImageSplit train, ImageSplit test, int numClasses, String source, Map<String, String> md5) {
    public ImageDataset {
        Objects.requireNonNull(train, "train");
        Objects.requireNonNull(test, "test");
        Objects.requireNonNull(source, "source");
        if (train.rows() != test.rows() || train.cols() != test.cols()) {
            throw new IllegalArgumentException("train is " + train.rows() + "x" + train.cols()
                    + " but test is " + test.rows() + "x" + test.cols());
        }
        md5 = Collections.unmodifiableMap(new LinkedHashMap<>(md5));
    }

    public int rows() {
        return train.rows();
    }

    public int cols() {
        return train.cols();
    }

    @Override
    public String toString() {
        return "ImageDataset[" + train.size() + " train + " + test.size() + " test, " + rows() + "x" + cols()
                + ", " + numClasses + " classes, source: " + source + "]";
    }
}
