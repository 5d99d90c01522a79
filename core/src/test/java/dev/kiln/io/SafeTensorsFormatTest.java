package dev.kiln.io;

import dev.kiln.nn.StateDict;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The format's rules, one file per rule, each refused with a {@link KilnFormatException} naming file and cause. */
class SafeTensorsFormatTest {

    /** A safetensors file with {@code header} as given (not re-serialised) and {@code data} after it. */
    static byte[] file(String header, byte[] data) {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(h.length).array());
        out.writeBytes(h);
        out.writeBytes(data);
        return out.toByteArray();
    }

    static byte[] floats(float... v) {
        ByteBuffer b = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
        for (float f : v) {
            b.putFloat(f);
        }
        return b.array();
    }

    private static String refused(byte[] bytes) {
        KilnFormatException e = assertThrows(KilnFormatException.class, () -> SafeTensors.read("m.safetensors", bytes));
        assertTrue(e.getMessage().startsWith("m.safetensors: "), e.getMessage());
        assertEquals("m.safetensors", e.file());
        return e.getMessage();
    }

    private static final String TWO = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
            + "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}";

    @Test
    @DisplayName("a well-formed file with tensors in any header order reads")
    void wellFormed() throws IOException {
        String swapped = "{\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]},"
                + "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
        SafeTensors.Content c = SafeTensors.read("m", file(swapped, floats(1, 2, 3)));
        assertArrayEquals(new float[]{1, 2}, c.tensors().get("a").data());
        assertArrayEquals(new float[]{3}, c.tensors().get("b").data());
        assertTrue(SafeTensors.read("m", file(TWO + "   ", floats(1, 2, 3))).tensors().size() == 2, "space padding");
    }

    @Test
    @DisplayName("byte ranges: overlap, gap, trailing bytes, truncation, shape inconsistent with the range")
    void layout() {
        String overlap = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}";
        assertTrue(refused(file(overlap, floats(1, 2))).contains("tensor b: data_offsets [4, 8) overlap a's bytes"),
                refused(file(overlap, floats(1, 2))));
        String gap = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}";
        assertTrue(refused(file(gap, floats(1, 2))).contains("leave a gap after byte 0"));
        assertTrue(refused(file(TWO, floats(1, 2, 3, 4))).contains("4 trailing byte(s) after the last tensor"));
        assertTrue(refused(file(TWO, floats(1, 2))).contains(
                "truncated: tensor b: data_offsets end at byte 12 of the data section, the file holds 8 data bytes"));
        String shape263 = "{\"a\":{\"dtype\":\"F32\",\"shape\":[9223372036854775808],\"data_offsets\":[0,8]}}";
        assertTrue(refused(file(shape263, floats(1, 2))).contains(
                "bad header: tensor a: shape entry 9223372036854775808 is not a non-negative integer below 2^63"),
                refused(file(shape263, floats(1, 2))));
        String wrongShape = "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}";
        assertTrue(refused(file(wrongShape, floats(1, 2))).contains("shape [3] F32 needs 12 bytes, data_offsets [0, 8) hold 8"));
        String huge = "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}";
        assertTrue(refused(file(huge, floats(1, 2))).contains("needs more than 2^63 bytes"));
        String backwards = "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}";
        assertTrue(refused(file(backwards, floats(1, 2))).contains("end before they begin"));
    }

    @Test
    @DisplayName("header: size limit, length beyond the file, first byte, UTF-8, strict JSON without lenient advice")
    void header() {
        byte[] big = new byte[16];
        ByteBuffer.wrap(big).order(ByteOrder.LITTLE_ENDIAN).putLong(200_000_000L);
        assertTrue(refused(big).contains("exceeds the format's limit of 100000000 bytes"));
        byte[] beyond = new byte[16];
        ByteBuffer.wrap(beyond).order(ByteOrder.LITTLE_ENDIAN).putLong(1000);
        assertTrue(refused(beyond).contains("header length 1000 exceeds the file (16 bytes)"));
        assertTrue(refused(new byte[3]).contains("too short for the 8-byte header length"));
        assertTrue(refused(file(" {}", new byte[0])).contains("does not start with '{'"));
        byte[] badUtf8 = file("{\"a\":1}", new byte[0]);
        badUtf8[9] = (byte) 0xff;
        assertTrue(refused(badUtf8).contains("not valid UTF-8"));
        for (String json : new String[]{"{\"a\":{\"dtype\":\"F32\",}}", "{'a':{}}", "{\"a\":{\"dtype\":F32}}",
                "{\"__metadata__\":{\"k\":\"v\"}} {}", "{\"a\" /* c */ :{}}", "{\"a\":{\"dtype\":\"F32\",\"shape\":[NaN]}}"}) {
            String m = refused(file(json, new byte[0]));
            assertFalse(m.toLowerCase(java.util.Locale.ROOT).contains("lenient") || m.contains("setStrictness")
                    || m.contains("github.com"), m);
        }
        assertTrue(refused(file("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                + "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", floats(1))).contains("key \"a\" appears twice"));
        assertTrue(refused(file("{\"a\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}", floats(1)))
                .contains("tensor a: unknown dtype \"F33\""));
        assertTrue(refused(file("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", floats(1)))
                .contains("shape entry -1 is not a non-negative integer"));
        assertTrue(refused(file("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", floats(1)))
                .contains("data_offsets has 1 entries, expected 2"));
        assertTrue(refused(file("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", floats(1))).contains("tensor a: missing dtype"));
        assertTrue(refused(file("{\"__metadata__\":{\"k\":1}}", new byte[0])).contains("__metadata__.k: expected a string, found a number"));
        assertTrue(refused(file("{\"a\":[1,2]}", new byte[0])).contains("tensor a: expected an object, found an array"));
    }

    @Test
    @DisplayName("valid dtypes Kiln has no place for are named; I64 only as single counters")
    void unsupportedDtypes() {
        String i32 = "{\"a\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
        assertTrue(refused(file(i32, floats(1))).contains("tensor a: dtype I32 is valid safetensors but has no place"));
        String i64 = "{\"a\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,16]}}";
        assertTrue(refused(file(i64, new byte[16])).contains("Kiln reads I64 only as single counters"));
    }

    @Test
    @DisplayName("F16, BF16 and F64 read as float32; an I64 counter of shape [1] reads")
    void conversions() throws IOException {
        ByteBuffer d = ByteBuffer.allocate(2 * 3 + 2 * 2 + 8 * 2 + 8).order(ByteOrder.LITTLE_ENDIAN);
        d.putShort((short) 0x3c00).putShort((short) 0xc100).putShort((short) 0x7bff); // 1, -2.5, 65504
        d.putShort((short) 0x3fc0).putShort((short) 0xc2f7);                         // 1.5, -123.5
        d.putDouble(0.1).putDouble(-1e300);
        d.putLong(42);
        String h = "{\"h\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,6]},"
                + "\"bf\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[6,10]},"
                + "\"d\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[10,26]},"
                + "\"n\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[26,34]}}";
        StateDict sd = SafeTensors.read("m", file(h, d.array())).tensors();
        assertArrayEquals(new float[]{1f, -2.5f, 65504f}, sd.get("h").data());
        assertArrayEquals(new float[]{1.5f, -123.5f}, sd.get("bf").data());
        assertArrayEquals(new float[]{0.1f, Float.NEGATIVE_INFINITY}, sd.get("d").data());
        assertEquals(StateDict.DType.I64, sd.get("n").dtype());
        assertEquals(42, sd.get("n").longValue());
        assertArrayEquals(new int[]{1}, sd.get("n").shape());
        // subnormal and special halves
        assertEquals(0x1p-24f, SafeTensors.Float16.toFloat((short) 0x0001));
        assertEquals(Float.POSITIVE_INFINITY, SafeTensors.Float16.toFloat((short) 0x7c00));
        assertTrue(Float.isNaN(SafeTensors.Float16.toFloat((short) 0x7e00)));
        assertEquals(-0f, SafeTensors.Float16.toFloat((short) 0x8000));
    }

    @Test
    @DisplayName("Kiln's files carry a SHA-256 of their data: a flipped data byte is detected")
    void integrityHash(@TempDir Path tmp) throws IOException {
        StateDict sd = new StateDict();
        sd.put("w", StateDict.Entry.of(new float[]{1, 2, 3, 4}, 2, 2));
        Path f = tmp.resolve("m.safetensors");
        SafeTensors.write(f, sd, Map.of("format", "pt"));
        SafeTensors.Content c = SafeTensors.read(f);
        assertEquals(64, c.metadata().get(SafeTensors.DATA_SHA256_KEY).length());
        byte[] bytes = Files.readAllBytes(f);
        bytes[bytes.length - 3] ^= 0x10;
        Files.write(f, bytes);
        KilnFormatException e = assertThrows(KilnFormatException.class, () -> SafeTensors.read(f));
        assertTrue(e.getMessage().startsWith(f + ": tensor data does not match the SHA-256"), e.getMessage());
    }

    @Test
    @DisplayName("the metadata is hashed too: one changed digit of kiln.normalization is refused; files without the hash load")
    void metadataHash() throws IOException {
        StateDict sd = new StateDict();
        sd.put("w", StateDict.Entry.of(new float[]{1, 2}, 2));
        byte[] bytes = SafeTensors.toBytes(sd, Map.of("kiln.normalization", "255.0 0.1307 0.3081"));
        assertEquals("255.0 0.1307 0.3081", SafeTensors.read(bytes, "m").metadata().get("kiln.normalization"));
        String text = new String(bytes, StandardCharsets.ISO_8859_1);
        int digit = text.indexOf("0.1307") + 5;
        byte[] edited = bytes.clone();
        edited[digit] = '8';
        String msg = refused(edited);
        assertTrue(msg.contains("__metadata__ does not match the SHA-256 recorded in it (kiln.metadata_sha256)")
                && msg.contains("kiln.normalization"), msg);
        // the recorded hash itself edited: refused as well
        byte[] hashEdited = bytes.clone();
        int h = text.indexOf("\"kiln.metadata_sha256\":\"") + "\"kiln.metadata_sha256\":\"".length();
        hashEdited[h] = (byte) (hashEdited[h] == '0' ? '1' : '0');
        assertTrue(refused(hashEdited).contains("kiln.metadata_sha256"));
        // a file written before the metadata was hashed (or by another tool) still loads
        String old = "{\"__metadata__\":{\"kiln.normalization\":\"255.0 0.1307 0.3081\"},"
                + "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
        SafeTensors.Content c = SafeTensors.read(file(old, floats(1, 2)), "old");
        assertEquals("255.0 0.1307 0.3081", c.metadata().get("kiln.normalization"));
        assertArrayEquals(new float[]{1, 2}, c.tensors().get("w").data());
    }

    @Test
    @DisplayName("a directory passed as a model is named as one")
    void directory(@TempDir Path tmp) {
        FileSystemException e = assertThrows(FileSystemException.class, () -> SafeTensors.read(tmp));
        assertTrue(e.getMessage().contains(tmp.toString()) && e.getMessage().contains("is a directory"), e.getMessage());
    }
}
