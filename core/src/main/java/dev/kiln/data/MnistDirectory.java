package dev.kiln.data;

import java.io.IOException;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Reads the four MNIST IDX files from one directory ({@code .gz} or uncompressed names), validating
 * each and their consistency (28x28, labels 0..9, matching image/label counts). All problems are
 * collected and reported together in one {@link MnistDataException}.
 */
public final class MnistDirectory {
    private static final Logger log = LoggerFactory.getLogger(MnistDirectory.class);

    private MnistDirectory() {
    }

    /**
     * Reads the directory.
     *
     * @param what             how to name the directory in messages, e.g. {@code "--data directory"}
     * @param requireCanonical if true, every file must be byte-identical to the canonical MNIST file
     *                         (used for the download cache); if false, any valid IDX files are accepted
     *                         and the source says whether they are canonical
     */
    public static ImageDataset read(Path dir, String what, boolean requireCanonical) throws MnistDataException {
        List<String> problems = new ArrayList<>();
        Map<MnistFile, Path> paths = new EnumMap<>(MnistFile.class);
        for (MnistFile f : MnistFile.values()) {
            Optional<Path> p = f.find(dir);
            if (p.isPresent()) {
                paths.put(f, p.get());
            } else {
                problems.add(f.gzName() + " (or uncompressed " + f.rawName() + "): missing");
            }
        }
        Map<MnistFile, IdxImages> images = new EnumMap<>(MnistFile.class);
        Map<MnistFile, IdxLabels> labels = new EnumMap<>(MnistFile.class);
        Map<String, String> md5 = new LinkedHashMap<>();
        List<String> nonCanonical = new ArrayList<>();
        for (Map.Entry<MnistFile, Path> e : paths.entrySet()) {
            MnistFile f = e.getKey();
            Path p = e.getValue();
            String name = p.getFileName().toString();
            try {
                String digest;
                if (f.isImages()) {
                    IdxImages im = IdxReader.readImages(p, MnistFile.ROWS, MnistFile.COLS);
                    images.put(f, im);
                    digest = im.md5();
                } else {
                    IdxLabels lb = IdxReader.readLabels(p, MnistFile.NUM_CLASSES);
                    labels.put(f, lb);
                    digest = lb.md5();
                }
                md5.put(name, digest);
                if (!f.isCanonical(name, digest)) {
                    String expected = name.endsWith(".gz") ? f.gzMd5() : f.rawMd5();
                    if (requireCanonical) {
                        problems.add(name + ": md5: expected " + expected + " (canonical MNIST), found " + digest);
                    } else {
                        nonCanonical.add(name);
                        log.debug("{}: md5 {} differs from canonical MNIST {}", p, digest, expected);
                    }
                }
            } catch (NoSuchFileException ex) {
                problems.add(name + ": missing");
            } catch (IdxFormatException ex) {
                problems.add(ex.getMessage());
            } catch (IOException ex) {
                problems.add(name + ": cannot read: " + ex);
            }
        }
        checkCounts(images.get(MnistFile.TRAIN_IMAGES), labels.get(MnistFile.TRAIN_LABELS), problems);
        checkCounts(images.get(MnistFile.TEST_IMAGES), labels.get(MnistFile.TEST_LABELS), problems);
        if (!problems.isEmpty()) {
            throw new MnistDataException("MNIST " + what + " " + dir.toAbsolutePath() + " is unusable:\n  - "
                    + String.join("\n  - ", problems));
        }
        if (!nonCanonical.isEmpty()) {
            log.warn("{}: not the canonical MNIST files (md5 differs: {}); using them as valid IDX files",
                    dir, String.join(", ", nonCanonical));
        }
        IdxImages trI = images.get(MnistFile.TRAIN_IMAGES);
        IdxImages teI = images.get(MnistFile.TEST_IMAGES);
        ImageSplit train = new ImageSplit(trI.count(), trI.rows(), trI.cols(), trI.pixels(),
                labels.get(MnistFile.TRAIN_LABELS).labels());
        ImageSplit test = new ImageSplit(teI.count(), teI.rows(), teI.cols(), teI.pixels(),
                labels.get(MnistFile.TEST_LABELS).labels());
        String kind = nonCanonical.isEmpty() ? "canonical MNIST files"
                : "IDX files, NOT canonical MNIST (md5 differs: " + String.join(", ", nonCanonical) + ")";
        String source = what + " " + dir.toAbsolutePath() + " (" + kind + ", " + train.size() + " train / "
                + test.size() + " test)";
        return new ImageDataset(train, test, MnistFile.NUM_CLASSES, source, md5);
    }

    private static void checkCounts(IdxImages im, IdxLabels lb, List<String> problems) {
        if (im == null || lb == null) {
            return;
        }
        if (im.count() != lb.count()) {
            problems.add(lb.file() + ": count: expected " + im.count() + " (the number of images in " + im.file()
                    + "), found " + lb.count());
        } else if (im.count() == 0) {
            problems.add(im.file() + ": count: expected a positive number, found 0");
        }
    }
}
