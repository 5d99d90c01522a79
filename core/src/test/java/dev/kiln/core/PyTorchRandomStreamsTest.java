package dev.kiln.core;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.kiln.data.EpochOrder;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * {@link Generator#pytorch} against what PyTorch 1.13 drew after {@code torch.manual_seed(seed)}
 * ({@code goldens/pytorch-random.json}, written by {@code tools/pytorch_goldens.py}). Every comparison is exact:
 * float bits, integers, or a SHA-256 of the float32 bytes.
 */
class PyTorchRandomStreamsTest {

    static JsonObject goldens() throws IOException {
        try (InputStream in = PyTorchRandomStreamsTest.class.getResourceAsStream("/goldens/pytorch-random.json")) {
            assertNotNull(in, "goldens/pytorch-random.json is missing from the test resources: run "
                    + "/usr/bin/python3 tools/pytorch_goldens.py and commit its output");
            return JsonParser.parseReader(new InputStreamReader(in, StandardCharsets.UTF_8)).getAsJsonObject();
        }
    }

    /** SHA-256 of float32 values, little-endian, as the goldens script hashes them. */
    private static String sha256(float[] values) {
        ByteBuffer b = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (float v : values) {
            b.putFloat(v);
        }
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b.array()));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private static float[] randn(Generator g, int n) {
        float[] v = new float[n];
        g.fillNormal(v, 0f, 1f);
        return v;
    }

    private static float[] rand(Generator g, int n) {
        float[] v = new float[n];
        g.fillUniform(v, 0f, 1f);
        return v;
    }

    private static float[] concat(float[]... parts) {
        int n = 0;
        for (float[] p : parts) {
            n += p.length;
        }
        float[] out = new float[n];
        int at = 0;
        for (float[] p : parts) {
            System.arraycopy(p, 0, out, at, p.length);
            at += p.length;
        }
        return out;
    }

    /** What Kiln draws for the named case, as PyTorch's script drew it. */
    private static Object draw(String name, Generator g) {
        if (name.startsWith("randn_") && name.chars().skip(6).allMatch(Character::isDigit)) {
            return randn(g, Integer.parseInt(name.substring(6)));
        }
        switch (name) {
            case "rand_5": return rand(g, 5);
            case "rand_3x7": return rand(g, 21);
            case "randn_3_then_randn_5_then_randn_20": return concat(randn(g, 3), randn(g, 5), randn(g, 20));
            case "randn_4x3_then_randn_4x2": return concat(randn(g, 12), randn(g, 8));
            case "normal_mean2_std3_40": {
                float[] v = new float[40];
                g.fillNormal(v, 2f, 3f);
                return v;
            }
            case "normal_mean2_std3_5": {
                float[] v = new float[5];
                g.fillNormal(v, 2f, 3f);
                return v;
            }
            case "uniform_minus0.2_0.3_50": {
                float[] v = new float[50];
                g.fillUniform(v, -0.2f, 0.3f);
                return v;
            }
            case "randint_0_10_x30": return longs(30, () -> g.randint(0, 10));
            case "randint_5_60000_x10": return longs(10, () -> g.randint(5, 60000));
            case "randperm_10": return ints(g.randperm(10));
            case "randperm_1000_head": return ints(java.util.Arrays.copyOf(g.randperm(1000), 50));
            case "random_int64_x3": return longs(3, g::nextNonNegativeLong);
            case "randn_100000_sha256": return sha256(randn(g, 100_000));
            default: throw new AssertionError("no Kiln counterpart for golden case " + name);
        }
    }

    private static List<Long> longs(int n, java.util.function.LongSupplier s) {
        List<Long> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            out.add(s.getAsLong());
        }
        return out;
    }

    private static List<Long> ints(int[] v) {
        List<Long> out = new ArrayList<>();
        for (int x : v) {
            out.add((long) x);
        }
        return out;
    }

    @Test
    @DisplayName("rand, randn (scalar and vectorised paths), normal_, uniform_, randint, randperm, random_: PyTorch's bits")
    void streamsMatchPyTorchBitForBit() throws IOException {
        int checked = 0;
        for (JsonElement e : goldens().getAsJsonArray("cases")) {
            JsonObject c = e.getAsJsonObject();
            String name = c.get("name").getAsString();
            Object got = draw(name, Generator.pytorch(c.get("seed").getAsLong()));
            JsonElement want = c.get("values");
            if (got instanceof float[] f) {
                JsonArray w = want.getAsJsonArray();
                assertEquals(w.size(), f.length, name + ": count");
                for (int i = 0; i < f.length; i++) {
                    float expected = w.get(i).getAsFloat();
                    if (Float.floatToRawIntBits(expected) != Float.floatToRawIntBits(f[i])) {
                        fail(name + "[" + i + "]: Kiln drew " + f[i] + ", PyTorch " + expected + " (bits "
                                + Integer.toHexString(Float.floatToRawIntBits(f[i])) + " vs "
                                + Integer.toHexString(Float.floatToRawIntBits(expected)) + ")");
                    }
                }
            } else if (got instanceof String hash) {
                assertEquals(want.getAsString(), hash, name + ": SHA-256 of the float32 values");
            } else {
                List<Long> w = new ArrayList<>();
                want.getAsJsonArray().forEach(x -> w.add(x.getAsLong()));
                assertEquals(w, got, name);
            }
            checked++;
        }
        assertEquals(goldens().getAsJsonArray("cases").size(), checked);
    }

    @Test
    @DisplayName("reset() is torch.manual_seed again, and Kiln's own stream is unchanged by the PyTorch mode")
    void resetAndStreamsAreIndependent() {
        Generator g = Generator.pytorch(3);
        float[] first = randn(g, 7);
        randn(g, 100);
        g.reset();
        assertEquals(sha256(first), sha256(randn(g, 7)));
        assertEquals(Generator.Stream.PYTORCH_CPU, g.stream());
        // Kiln's stream is SplittableRandom's: the value a seed gave before the PyTorch mode existed.
        assertEquals(new java.util.SplittableRandom(42).nextInt(10), new Generator(42).nextInt(10));
        assertEquals(Generator.Stream.KILN, new Generator(42).stream());
        assertThrows(IllegalArgumentException.class, () -> g.randint(5, 5));
        assertThrows(IllegalArgumentException.class, () -> g.nextInt(0));
    }

    @Test
    @DisplayName("data order: PyTorch's DataLoader(shuffle=True, generator=manual_seed(s)), epoch by epoch")
    void dataOrderMatchesPyTorchsDataLoader() throws IOException {
        for (Map.Entry<String, JsonElement> e : goldens().getAsJsonObject("data_order").entrySet()) {
            JsonObject c = e.getValue().getAsJsonObject();
            long seed = c.get("seed").getAsLong();
            int n = c.get("n").getAsInt();
            JsonArray epochs = c.getAsJsonArray("epochs");
            for (int epoch = 0; epoch < epochs.size(); epoch++) {
                JsonArray want = epochs.get(epoch).getAsJsonArray();
                int[] got = EpochOrder.pytorchPermutation(seed, epoch, n);
                for (int i = 0; i < n; i++) {
                    assertEquals(want.get(i).getAsInt(), got[i], e.getKey() + " epoch " + epoch + " position " + i);
                }
            }
        }
    }
}
