package dev.kiln.io;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.kiln.nn.StateDict;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SafeTensorsTest {

    private static StateDict sample() {
        StateDict sd = new StateDict();
        sd.put("conv1.weight", StateDict.Entry.of(new float[]{1.5f, -2f, 3.25f, 0f, 7f, -0.125f}, 2, 3));
        sd.put("bn1.running_mean", StateDict.Entry.of(new float[]{0.5f}, 1));
        sd.put("bn1.num_batches_tracked", StateDict.Entry.ofLong(123456789012L));
        return sd;
    }

    @Test
    @DisplayName("round trip keeps names, order, shapes, float bits and int64 counters")
    void roundTrip(@TempDir Path tmp) throws IOException {
        Path f = tmp.resolve("m.safetensors");
        SafeTensors.write(f, sample(), Map.of("format", "pt"));
        SafeTensors.Content c = SafeTensors.read(f);
        assertEquals(java.util.List.copyOf(sample().entries().keySet()), java.util.List.copyOf(c.tensors().entries().keySet()));
        assertArrayEquals(new int[]{2, 3}, c.tensors().get("conv1.weight").shape());
        assertArrayEquals(sample().get("conv1.weight").data(), c.tensors().get("conv1.weight").data());
        assertEquals(StateDict.DType.I64, c.tensors().get("bn1.num_batches_tracked").dtype());
        assertEquals(123456789012L, c.tensors().get("bn1.num_batches_tracked").longValue());
        assertEquals("pt", c.metadata().get("format"));
    }

    @Test
    @DisplayName("the bytes follow the safetensors layout: u64 LE header length, JSON header, LE data")
    void layout(@TempDir Path tmp) throws IOException {
        Path f = tmp.resolve("m.safetensors");
        SafeTensors.write(f, sample(), Map.of());
        byte[] bytes = Files.readAllBytes(f);
        long n = ByteBuffer.wrap(bytes, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        assertEquals(0, n % 8, "header padded to 8 bytes");
        JsonObject header = JsonParser.parseString(new String(bytes, 8, (int) n, StandardCharsets.UTF_8).trim()).getAsJsonObject();
        JsonObject w = header.getAsJsonObject("conv1.weight");
        assertEquals("F32", w.get("dtype").getAsString());
        assertEquals(0, w.getAsJsonArray("data_offsets").get(0).getAsInt());
        assertEquals(24, w.getAsJsonArray("data_offsets").get(1).getAsInt());
        float first = ByteBuffer.wrap(bytes, 8 + (int) n, 4).order(ByteOrder.LITTLE_ENDIAN).getFloat();
        assertEquals(1.5f, first);
        assertEquals(8 + n + 24 + 4 + 8, bytes.length);
    }

    @Test
    @DisplayName("truncated, corrupt and missing files give errors naming the file")
    void corrupt(@TempDir Path tmp) throws IOException {
        Path f = tmp.resolve("m.safetensors");
        SafeTensors.write(f, sample(), Map.of());
        byte[] bytes = Files.readAllBytes(f);
        Path cut = tmp.resolve("cut.safetensors");
        Files.write(cut, Arrays.copyOf(bytes, bytes.length - 5));
        IOException e = assertThrows(IOException.class, () -> SafeTensors.read(cut));
        assertTrue(e.getMessage().contains("cut.safetensors") && e.getMessage().contains("truncated"), e.getMessage());
        Path garbage = tmp.resolve("garbage.safetensors");
        Files.write(garbage, "hello, this is not a model".getBytes(StandardCharsets.UTF_8));
        e = assertThrows(IOException.class, () -> SafeTensors.read(garbage));
        assertTrue(e.getMessage().contains("garbage.safetensors"), e.getMessage());
        e = assertThrows(IOException.class, () -> SafeTensors.read(tmp.resolve("absent.safetensors")));
        assertTrue(e.getMessage().contains("absent.safetensors"), e.getMessage());
    }

    @Test
    @DisplayName("a failing write leaves the previous file intact and no temporary file behind")
    void atomicWrite(@TempDir Path tmp) throws IOException {
        Path f = tmp.resolve("keep.txt");
        AtomicFiles.writeString(f, "old");
        assertThrows(IOException.class, () -> AtomicFiles.write(f, out -> {
            out.write("partial".getBytes(StandardCharsets.UTF_8));
            throw new IOException("disk full");
        }));
        assertEquals("old", Files.readString(f));
        try (var files = Files.list(tmp)) {
            assertEquals(1, files.count(), "no temporary file left");
        }
    }
}
