package dev.kiln.examples;

import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import java.util.zip.GZIPOutputStream;

/** A small MNIST-shaped directory (four gzip IDX files, 28x28, labels 0..9) for command-line tests without MNIST. */
final class SyntheticMnist {

    private SyntheticMnist() {
    }

    static Path write(Path dir, int train, int test) throws IOException {
        Files.createDirectories(dir);
        Random r = new Random(7);
        split(dir, "train", train, r);
        split(dir, "t10k", test, r);
        return dir;
    }

    private static void split(Path dir, String prefix, int n, Random r) throws IOException {
        byte[] labels = new byte[n];
        byte[] pixels = new byte[n * 784];
        for (int i = 0; i < n; i++) {
            int label = r.nextInt(10);
            labels[i] = (byte) label;
            for (int p = 0; p < 784; p++) {
                // a bright band whose row depends on the label, plus noise: learnable, not trivial
                int row = p / 28;
                int v = (row / 3 == label ? 200 : 0) + r.nextInt(40);
                pixels[i * 784 + p] = (byte) Math.min(255, v);
            }
        }
        write(dir.resolve(prefix + "-images-idx3-ubyte.gz"), 0x803, new int[]{n, 28, 28}, pixels);
        write(dir.resolve(prefix + "-labels-idx1-ubyte.gz"), 0x801, new int[]{n}, labels);
    }

    private static void write(Path file, int magic, int[] dims, byte[] payload) throws IOException {
        ByteArrayOutputStream bos = new ByteArrayOutputStream();
        try (OutputStream gz = new GZIPOutputStream(bos); DataOutputStream out = new DataOutputStream(gz)) {
            out.writeInt(magic);
            for (int d : dims) {
                out.writeInt(d);
            }
            out.write(payload);
        }
        Files.write(file, bos.toByteArray());
    }
}
