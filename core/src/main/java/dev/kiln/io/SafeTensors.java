package dev.kiln.io;

import com.google.gson.Gson;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import dev.kiln.core.Shapes;
import dev.kiln.nn.StateDict;

import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Reads and writes state dicts in the safetensors format (8-byte little-endian header length, JSON header, raw
 * little-endian data), so a Kiln model loads in PyTorch with {@code safetensors.torch.load_file} and back.
 * F32 and I64 tensors; string metadata under {@code __metadata__}. Writes are atomic.
 */
public final class SafeTensors {

    /** A state dict with the file's metadata. */
    public record Content(StateDict tensors, Map<String, String> metadata) {
    }

    private static final long MAX_HEADER = 100L << 20;

    private SafeTensors() {
    }

    public static void write(Path file, StateDict sd, Map<String, String> metadata) throws IOException {
        AtomicFiles.write(file, out -> write(out, sd, metadata));
    }

    /** The whole file's content in memory: what {@link #write(Path, StateDict, Map)} would put on disk. */
    public static byte[] toBytes(StateDict sd, Map<String, String> metadata) {
        java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
        try {
            write(bytes, sd, metadata);
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);   // a ByteArrayOutputStream does not fail
        }
        return bytes.toByteArray();
    }

    /** Writes the safetensors encoding of {@code sd} to {@code out} (which is left open). */
    public static void write(java.io.OutputStream out, StateDict sd, Map<String, String> metadata) throws IOException {
        JsonObject header = new JsonObject();
        if (!metadata.isEmpty()) {
            JsonObject meta = new JsonObject();
            metadata.forEach(meta::addProperty);
            header.add("__metadata__", meta);
        }
        long offset = 0;
        for (Map.Entry<String, StateDict.Entry> e : sd.entries().entrySet()) {
            StateDict.Entry v = e.getValue();
            long bytes = Shapes.numel(v.shape()) * (v.dtype() == StateDict.DType.I64 ? 8 : 4);
            JsonObject t = new JsonObject();
            t.addProperty("dtype", v.dtype().name());
            JsonArray shape = new JsonArray();
            for (int d : v.shape()) {
                shape.add(d);
            }
            t.add("shape", shape);
            JsonArray offsets = new JsonArray();
            offsets.add(offset);
            offsets.add(offset + bytes);
            t.add("data_offsets", offsets);
            header.add(e.getKey(), t);
            offset += bytes;
        }
        byte[] json = new Gson().toJson(header).getBytes(StandardCharsets.UTF_8);
        int padded = (json.length + 7) / 8 * 8;
        ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(padded);
        out.write(len.array());
        out.write(json);
        for (int i = json.length; i < padded; i++) {
            out.write(' ');
        }
        for (StateDict.Entry v : sd.entries().values()) {
            if (v.dtype() == StateDict.DType.I64) {
                out.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(v.longValue()).array());
            } else {
                ByteBuffer buf = ByteBuffer.allocate(v.data().length * 4).order(ByteOrder.LITTLE_ENDIAN);
                buf.asFloatBuffer().put(v.data());
                out.write(buf.array());
            }
        }
    }

    public static Content read(Path file) throws IOException {
        String name = file.toString();
        long size;
        try {
            size = Files.size(file);
        } catch (NoSuchFileException e) {
            throw new NoSuchFileException(name, null, "model/checkpoint file not found");
        }
        try (InputStream raw = Files.newInputStream(file)) {
            return read(raw, size, name);
        }
    }

    /** Reads safetensors content held in memory; {@code name} is what error messages call it. */
    public static Content read(byte[] bytes, String name) throws IOException {
        return read(new java.io.ByteArrayInputStream(bytes), bytes.length, name);
    }

    /** Reads a whole safetensors stream (not closed here); {@code name} is what error messages call it. */
    public static Content read(InputStream stream, String name) throws IOException {
        return read(stream.readAllBytes(), name);
    }

    private static Content read(InputStream raw, long size, String name) throws IOException {
        DataInputStream in = new DataInputStream(new java.io.BufferedInputStream(raw, 1 << 16));
        byte[] lenBytes = readFully(in, 8, name, "header length");
        long headerLen = ByteBuffer.wrap(lenBytes).order(ByteOrder.LITTLE_ENDIAN).getLong();
        if (headerLen <= 0 || headerLen > MAX_HEADER || headerLen > size - 8) {
            throw new IOException(name + ": not a safetensors file: header length " + headerLen
                    + " (file is " + size + " bytes)");
        }
        String json = new String(readFully(in, (int) headerLen, name, "header"), StandardCharsets.UTF_8);
        JsonObject header;
        try {
            header = JsonParser.parseString(json).getAsJsonObject();
        } catch (JsonParseException | IllegalStateException e) {
            throw new IOException(name + ": corrupt safetensors header: " + e.getMessage(), e);
        }
        long dataLen = size - 8 - headerLen;
        Map<String, String> metadata = new LinkedHashMap<>();
        record Spec(String key, StateDict.DType dtype, int[] shape, long begin, long end) {
        }
        java.util.List<Spec> specs = new java.util.ArrayList<>();
        for (Map.Entry<String, JsonElement> e : header.entrySet()) {
            if (e.getKey().equals("__metadata__")) {
                for (Map.Entry<String, JsonElement> m : e.getValue().getAsJsonObject().entrySet()) {
                    metadata.put(m.getKey(), m.getValue().getAsString());
                }
                continue;
            }
            JsonObject t = e.getValue().getAsJsonObject();
            String dtype = t.get("dtype").getAsString();
            StateDict.DType dt;
            if (dtype.equals("F32")) {
                dt = StateDict.DType.F32;
            } else if (dtype.equals("I64")) {
                dt = StateDict.DType.I64;
            } else {
                throw new IOException(name + ": tensor " + e.getKey() + " has dtype " + dtype + "; Kiln reads F32 and I64");
            }
            JsonArray sh = t.getAsJsonArray("shape");
            int[] shape = new int[sh.size()];
            for (int i = 0; i < shape.length; i++) {
                shape[i] = sh.get(i).getAsInt();
            }
            JsonArray off = t.getAsJsonArray("data_offsets");
            long begin = off.get(0).getAsLong();
            long end = off.get(1).getAsLong();
            long expected = Shapes.numel(shape) * (dt == StateDict.DType.I64 ? 8 : 4);
            if (begin < 0 || end < begin || end > dataLen || end - begin != expected) {
                throw new IOException(name + ": tensor " + e.getKey() + ": data offsets [" + begin + ", " + end
                        + ") do not fit shape " + Shapes.toString(shape) + " " + dtype + " (" + expected
                        + " bytes) in " + dataLen + " data bytes (truncated or corrupt file?)");
            }
            specs.add(new Spec(e.getKey(), dt, shape, begin, end));
        }
        byte[] data = readFully(in, (int) dataLen, name, "tensor data");
        ByteBuffer buf = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN);
        StateDict sd = new StateDict();
        for (Spec s : specs) {
            if (s.dtype() == StateDict.DType.I64) {
                if (s.shape().length != 0) {
                    throw new IOException(name + ": tensor " + s.key() + ": only 0-d I64 counters are supported");
                }
                long v = buf.getLong((int) s.begin());
                sd.put(s.key(), StateDict.Entry.ofLong(v));
            } else {
                float[] values = new float[(int) ((s.end() - s.begin()) / 4)];
                buf.slice((int) s.begin(), (int) (s.end() - s.begin())).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(values);
                sd.put(s.key(), new StateDict.Entry(s.shape(), values, StateDict.DType.F32));
            }
        }
        return new Content(sd, metadata);
    }

    private static byte[] readFully(DataInputStream in, int n, String file, String what) throws IOException {
        byte[] b = new byte[n];
        try {
            in.readFully(b);
        } catch (EOFException e) {
            throw new IOException(file + ": truncated while reading " + what + " (" + n + " bytes expected)", e);
        }
        return b;
    }
}
