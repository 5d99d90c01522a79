package dev.kiln.io;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.Gson;
import dev.kiln.core.Shapes;
import dev.kiln.nn.StateDict;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.DigestOutputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Reads and writes state dicts in the safetensors format (8-byte little-endian header length, JSON header, raw
 * little-endian data), so a Kiln model loads in PyTorch with {@code safetensors.torch.load_file} and back.
 *
 * <p>Reading follows the format to the letter, as the reference implementation does: header at most
 * {@value #MAX_HEADER_BYTES} bytes, strict UTF-8 JSON starting with '{', known dtypes, shapes whose byte size equals
 * the tensor's byte range, byte ranges that (sorted) start at 0, follow each other without gap or overlap and end
 * exactly at the end of the file. Everything is checked against the file's size before anything is allocated, and
 * every failure is a {@link KilnFormatException} naming the file and what was wrong.
 *
 * <p>Kiln keeps float32 and int64 counters: F16, BF16 and F64 tensors are converted to F32 when read (logged);
 * an I64 tensor of one element (shape [] or [1]) is a counter such as {@code num_batches_tracked}. Writes are
 * atomic and record a SHA-256 of the data bytes in {@code __metadata__} under {@value #DATA_SHA256_KEY}; when a
 * file carries it, reading verifies it, so flipped data bytes in Kiln's own files are detected.
 */
public final class SafeTensors {

    /** A state dict with the file's metadata. */
    public record Content(StateDict tensors, Map<String, String> metadata) {
    }

    /** The reference implementation's limit on the JSON header. */
    public static final long MAX_HEADER_BYTES = 100_000_000L;
    /** Metadata key of the integrity hash Kiln writes: lower-case hex SHA-256 of every byte after the header. */
    public static final String DATA_SHA256_KEY = "kiln.data_sha256";

    /**
     * Metadata key of the hash over the metadata itself: lower-case hex SHA-256 of every other entry, sorted by key,
     * each key and value as its length in UTF-16 units (4 bytes, big-endian) followed by its UTF-8 bytes. So the
     * values Kiln reads from a file (architecture, input shape, normalisation) are as much part of the model as its
     * weights: one changed digit is refused.
     */
    public static final String METADATA_SHA256_KEY = "kiln.metadata_sha256";

    private static final Logger LOG = LoggerFactory.getLogger(SafeTensors.class);
    /** Largest data section read into one Java array. */
    private static final long MAX_DATA_BYTES = Integer.MAX_VALUE - 16;

    private SafeTensors() {
    }

    /**
     * Writes {@code sd} (F32 tensors and I64 counters) with {@code metadata}, atomically; adds
     * {@value #DATA_SHA256_KEY} (replacing any value given).
     */
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

    /**
     * Writes the safetensors encoding of {@code sd} to {@code out} (which is left open), with {@code metadata} and
     * {@value #DATA_SHA256_KEY} (replacing any value given).
     */
    public static void write(OutputStream out, StateDict sd, Map<String, String> metadata) throws IOException {
        MessageDigest sha = sha256();
        try (OutputStream digestOnly = new DigestOutputStream(OutputStream.nullOutputStream(), sha)) {
            writeData(digestOnly, sd);
        }
        Map<String, String> meta = new LinkedHashMap<>(metadata);
        meta.put(DATA_SHA256_KEY, HexFormat.of().formatHex(sha.digest()));
        meta.remove(METADATA_SHA256_KEY);
        meta.put(METADATA_SHA256_KEY, metadataSha256(meta));
        JsonObject header = new JsonObject();
        JsonObject metaJson = new JsonObject();
        meta.forEach(metaJson::addProperty);
        header.add("__metadata__", metaJson);
        long offset = 0;
        for (Map.Entry<String, StateDict.Entry> e : sd.entries().entrySet()) {
            StateDict.Entry v = e.getValue();
            long bytes = Shapes.numel(v.shape()) * (v.dtype() == StateDict.DType.I64 ? 8 : 4);
            if (v.dtype() == StateDict.DType.I64 && Shapes.numel(v.shape()) != 1) {
                throw new IllegalArgumentException(e.getKey() + ": I64 entries are single counters, got shape "
                        + Shapes.toString(v.shape()));
            }
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
        writeData(out, sd);
    }

    private static void writeData(OutputStream out, StateDict sd) throws IOException {
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

    /** Reads a safetensors file; see the class comment for what is checked. */
    public static Content read(Path file) throws IOException {
        String name = file.toString();
        if (Files.isDirectory(file)) {
            throw new FileSystemException(name, null, "is a directory, not a safetensors file");
        }
        if (!Files.exists(file)) {
            throw new NoSuchFileException(name, null, "model/checkpoint file not found");
        }
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = ch.size();
            return parse(name, size, (position, dst) -> {
                ByteBuffer b = ByteBuffer.wrap(dst);
                while (b.hasRemaining()) {
                    if (ch.read(b, position + b.position()) < 0) {
                        throw new KilnFormatException(name, "file shrank while being read (expected " + size
                                + " bytes)");
                    }
                }
            });
        }
    }

    /** Reads safetensors content held in memory; {@code name} is what error messages call it. */
    public static Content read(byte[] bytes, String name) throws IOException {
        return parse(name, bytes.length, (position, dst) -> System.arraycopy(bytes, (int) position, dst, 0, dst.length));
    }

    /** The same, for the fuzz tests' argument order. */
    static Content read(String name, byte[] file) throws IOException {
        return read(file, name);
    }

    /**
     * Reads a whole safetensors stream (not closed here); {@code name} is what error messages call it. A stream has
     * no size to check against, so the header is read and validated first and then exactly the data it describes,
     * which arrives in chunks (nothing is allocated ahead of the bytes); a shorter stream is truncated, a longer one
     * has trailing bytes.
     */
    public static Content read(InputStream stream, String name) throws IOException {
        byte[] lenBytes = stream.readNBytes(8);
        if (lenBytes.length < 8) {
            return read(lenBytes, name);
        }
        long headerLen = ByteBuffer.wrap(lenBytes).order(ByteOrder.LITTLE_ENDIAN).getLong();
        if (headerLen < 0 || headerLen > MAX_HEADER_BYTES) {
            return read(lenBytes, name);   // reports the bad length
        }
        byte[] headerBytes = stream.readNBytes((int) headerLen);
        if (headerBytes.length < headerLen) {
            throw new KilnFormatException(name, "header length " + headerLen + " exceeds the stream (" + (8
                    + headerBytes.length) + " bytes): truncated, or not a safetensors file");
        }
        long dataLen = 0;
        for (TensorInfo t : SafeTensorsHeader.parse(name, headerBytes).tensors()) {
            dataLen = Math.max(dataLen, t.end());
        }
        if (dataLen > MAX_DATA_BYTES) {
            throw new KilnFormatException(name, "tensor data of " + dataLen + " bytes; Kiln reads at most "
                    + MAX_DATA_BYTES + " bytes per file");
        }
        byte[] data = stream.readNBytes((int) dataLen);
        byte[] trailing = stream.readNBytes(1 << 16);
        byte[] whole = new byte[8 + headerBytes.length + data.length + trailing.length];
        System.arraycopy(lenBytes, 0, whole, 0, 8);
        System.arraycopy(headerBytes, 0, whole, 8, headerBytes.length);
        System.arraycopy(data, 0, whole, 8 + headerBytes.length, data.length);
        System.arraycopy(trailing, 0, whole, 8 + headerBytes.length + data.length, trailing.length);
        return read(whole, name);
    }

    /** Random access to the file's bytes. */
    @FunctionalInterface
    private interface Source {
        void read(long position, byte[] dst) throws IOException;
    }

    /** The bytes [position, end) of a source, read in chunks, so a header is never copied whole. */
    private static final class SourceStream extends InputStream {
        private final Source src;
        private long position;
        private final long end;

        SourceStream(Source src, long position, long end) {
            this.src = src;
            this.position = position;
            this.end = end;
        }

        @Override
        public int read() throws IOException {
            byte[] one = new byte[1];
            return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            if (position >= end) {
                return -1;
            }
            int n = (int) Math.min(Math.min(len, end - position), 1 << 16);
            byte[] chunk = off == 0 && n == b.length ? b : new byte[n];
            src.read(position, chunk);
            if (chunk != b) {
                System.arraycopy(chunk, 0, b, off, n);
            }
            position += n;
            return n;
        }
    }

    private static Content parse(String name, long size, Source src) throws IOException {
        if (size < 8) {
            throw new KilnFormatException(name, "not a safetensors file: " + size
                    + " bytes, too short for the 8-byte header length");
        }
        byte[] lenBytes = new byte[8];
        src.read(0, lenBytes);
        long headerLen = ByteBuffer.wrap(lenBytes).order(ByteOrder.LITTLE_ENDIAN).getLong();
        if (headerLen < 0 || headerLen > MAX_HEADER_BYTES) {
            throw new KilnFormatException(name, "not a safetensors file: header length "
                    + Long.toUnsignedString(headerLen) + " exceeds the format's limit of " + MAX_HEADER_BYTES + " bytes");
        }
        if (headerLen > size - 8) {
            throw new KilnFormatException(name, "header length " + headerLen + " exceeds the file (" + size
                    + " bytes): truncated, or not a safetensors file");
        }
        byte[] first = new byte[1];
        if (headerLen > 0) {
            src.read(8, first);
        }
        Header header = SafeTensorsHeader.parse(name, headerLen == 0 ? -1 : first[0] & 0xff,
                new SourceStream(src, 8, 8 + headerLen));
        checkMetadata(name, header.metadata());
        long dataLen = size - 8 - headerLen;
        validateLayout(name, header.tensors(), dataLen);
        if (dataLen > MAX_DATA_BYTES) {
            throw new KilnFormatException(name, "tensor data of " + dataLen + " bytes; Kiln reads at most "
                    + MAX_DATA_BYTES + " bytes per file");
        }
        byte[] data = new byte[(int) dataLen];
        src.read(8 + headerLen, data);
        String expectedSha = header.metadata().get(DATA_SHA256_KEY);
        if (expectedSha != null) {
            String found = HexFormat.of().formatHex(sha256().digest(data));
            if (!found.equalsIgnoreCase(expectedSha)) {
                throw new KilnFormatException(name, "tensor data does not match the SHA-256 recorded in __metadata__ ("
                        + DATA_SHA256_KEY + "): expected " + expectedSha + ", found " + found
                        + "; the file was changed or damaged after it was written");
            }
        }
        return new Content(toStateDict(name, header.tensors(), data), header.metadata());
    }

    private static void checkMetadata(String name, Map<String, String> metadata) throws KilnFormatException {
        String expected = metadata.get(METADATA_SHA256_KEY);
        if (expected == null) {
            if (metadata.keySet().stream().anyMatch(k -> k.startsWith("kiln."))) {
                LOG.info("{}: its metadata carries no {} (an older Kiln or another tool wrote it), so its values are"
                        + " used unchecked", name, METADATA_SHA256_KEY);
            }
            return;
        }
        Map<String, String> covered = new TreeMap<>(metadata);
        covered.remove(METADATA_SHA256_KEY);
        String found = metadataSha256(covered);
        if (!found.equalsIgnoreCase(expected)) {
            throw new KilnFormatException(name, "__metadata__ does not match the SHA-256 recorded in it ("
                    + METADATA_SHA256_KEY + "): expected " + SafeTensorsHeader.printable(expected) + ", found " + found
                    + "; a metadata value (e.g. " + String.join(", ", covered.keySet().stream()
                    .filter(k -> k.startsWith("kiln.") && !k.endsWith("_sha256")).map(SafeTensorsHeader::printable)
                    .toList()) + ") was changed after the file was written");
        }
    }

    /** See {@link #METADATA_SHA256_KEY}; {@code metadata} must not hold that key. */
    private static String metadataSha256(Map<String, String> metadata) {
        MessageDigest sha = sha256();
        for (Map.Entry<String, String> e : new TreeMap<>(metadata).entrySet()) {
            digestString(sha, e.getKey());
            digestString(sha, e.getValue());
        }
        return HexFormat.of().formatHex(sha.digest());
    }

    /** Encodes in chunks, so a long value costs no second copy of itself. */
    private static void digestString(MessageDigest sha, String s) {
        sha.update(ByteBuffer.allocate(4).putInt(s.length()).array());
        int chunk = 1 << 14;
        for (int from = 0; from < s.length(); ) {
            int to = Math.min(s.length(), from + chunk);
            if (to < s.length() && Character.isHighSurrogate(s.charAt(to - 1))) {
                to--;
            }
            sha.update(s.substring(from, to).getBytes(StandardCharsets.UTF_8));
            from = to;
        }
    }

    /** The byte range rules of the format, checked on the sorted ranges. */
    private static void validateLayout(String name, List<TensorInfo> tensors, long dataLen) throws KilnFormatException {
        List<TensorInfo> sorted = new ArrayList<>();
        for (TensorInfo t : tensors) {
            sorted.add(new TensorInfo(SafeTensorsHeader.printable(t.key()), t.dtype(), t.shape(), t.begin(), t.end()));
        }
        sorted.sort((a, b) -> a.begin() != b.begin() ? Long.compare(a.begin(), b.begin()) : Long.compare(a.end(), b.end()));
        long expectedBegin = 0;
        String previous = null;
        for (TensorInfo t : sorted) {
            if (t.end() < t.begin()) {
                throw new KilnFormatException(name, "tensor " + t.key() + ": data_offsets [" + t.begin() + ", "
                        + t.end() + ") end before they begin");
            }
            if (t.begin() != expectedBegin) {
                throw new KilnFormatException(name, "tensor " + t.key() + ": data_offsets [" + t.begin() + ", "
                        + t.end() + ") " + (t.begin() < expectedBegin
                        ? "overlap " + (previous == null ? "" : previous + "'s bytes, which end at " + expectedBegin)
                        : "leave a gap after byte " + expectedBegin + (previous == null ? "" : " (end of " + previous + ")")));
            }
            long bytes;
            try {
                long numel = 1;
                for (long d : t.shape()) {
                    numel = Math.multiplyExact(numel, d);
                }
                bytes = Math.multiplyExact(numel, (long) t.dtype().bytes);
            } catch (ArithmeticException overflow) {
                bytes = -1;
            }
            if (bytes != t.end() - t.begin()) {
                throw new KilnFormatException(name, "tensor " + t.key() + ": shape " + java.util.Arrays.toString(t.shape())
                        + " " + t.dtype() + " needs " + (bytes < 0 ? "more than 2^63" : Long.toString(bytes))
                        + " bytes, data_offsets [" + t.begin() + ", " + t.end() + ") hold " + (t.end() - t.begin()));
            }
            expectedBegin = t.end();
            previous = t.key();
        }
        if (expectedBegin != dataLen) {
            throw new KilnFormatException(name, expectedBegin < dataLen
                    ? (dataLen - expectedBegin) + " trailing byte(s) after the last tensor"
                    + (previous == null ? "" : ", " + previous) + " (the tensors cover " + expectedBegin + " of "
                    + dataLen + " data bytes)"
                    : "truncated: tensor " + previous + ": data_offsets end at byte " + expectedBegin
                    + " of the data section, the file holds " + dataLen + " data bytes");
        }
    }

    private static StateDict toStateDict(String name, List<TensorInfo> tensors, byte[] data) throws KilnFormatException {
        ByteBuffer buf = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN);
        StateDict sd = new StateDict();
        Map<Dtype, List<String>> converted = new TreeMap<>();
        for (TensorInfo t : tensors) {
            int[] shape = new int[t.shape().length];
            for (int i = 0; i < shape.length; i++) {
                if (t.shape()[i] > Integer.MAX_VALUE) {
                    throw new KilnFormatException(name, "tensor " + SafeTensorsHeader.printable(t.key()) + ": dimension " + t.shape()[i]
                            + " is larger than Kiln's limit of " + Integer.MAX_VALUE);
                }
                shape[i] = (int) t.shape()[i];
            }
            int begin = (int) t.begin();
            int numel = (int) ((t.end() - t.begin()) / t.dtype().bytes);
            switch (t.dtype()) {
                case I64 -> {
                    if (numel != 1 || shape.length > 1) {
                        throw new KilnFormatException(name, "tensor " + t.key() + ": I64 of shape "
                                + Shapes.toString(shape) + "; Kiln reads I64 only as single counters (shape [] or [1])");
                    }
                    long v = buf.getLong(begin);
                    sd.put(t.key(), new StateDict.Entry(shape, new float[]{v}, StateDict.DType.I64, v));
                }
                case F32, F16, BF16, F64 -> {
                    float[] values = new float[numel];
                    for (int i = 0; i < numel; i++) {
                        values[i] = switch (t.dtype()) {
                            case F32 -> buf.getFloat(begin + 4 * i);
                            case F16 -> Float16.toFloat(buf.getShort(begin + 2 * i));
                            case BF16 -> Float.intBitsToFloat((buf.getShort(begin + 2 * i) & 0xffff) << 16);
                            default -> (float) buf.getDouble(begin + 8 * i);
                        };
                    }
                    if (t.dtype() != Dtype.F32) {
                        converted.computeIfAbsent(t.dtype(), d -> new ArrayList<>()).add(t.key());
                    }
                    sd.put(t.key(), new StateDict.Entry(shape, values, StateDict.DType.F32));
                }
                default -> throw new KilnFormatException(name, "tensor " + t.key() + ": dtype " + t.dtype()
                        + " is valid safetensors but has no place in a Kiln model (Kiln reads F32, F16, BF16 and F64"
                        + " as float32, and I64 counters)");
            }
        }
        converted.forEach((dtype, keys) -> LOG.info("{}: converted {} {} tensor(s) to F32{}: {}", name, keys.size(),
                dtype, dtype == Dtype.F64 ? " (rounded to nearest)" : " (exact)", String.join(", ", keys)));
        return sd;
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every Java platform has SHA-256", e);
        }
    }

    /** Every dtype of the format, with its element size in bytes. */
    enum Dtype {
        BOOL(1), U8(1), I8(1), F8_E5M2(1), F8_E4M3(1), I16(2), U16(2), F16(2), BF16(2), I32(4), U32(4), F32(4),
        F64(8), I64(8), U64(8);

        final int bytes;

        Dtype(int bytes) {
            this.bytes = bytes;
        }
    }

    /** One tensor's entry in the header, checked for form but not yet for layout. */
    record TensorInfo(String key, Dtype dtype, long[] shape, long begin, long end) {
    }

    /** The parsed header: tensors in file order and the string metadata. */
    record Header(List<TensorInfo> tensors, Map<String, String> metadata) {
    }

    /** IEEE 754 binary16 to float (Float.float16ToFloat arrived only in Java 20). */
    static final class Float16 {
        private Float16() {
        }

        static float toFloat(short h) {
            int bits = h & 0xffff;
            int sign = (bits & 0x8000) << 16;
            int exp = (bits >>> 10) & 0x1f;
            int mant = bits & 0x3ff;
            if (exp == 0x1f) {
                return Float.intBitsToFloat(sign | 0x7f800000 | (mant << 13));
            }
            if (exp == 0) {
                float v = mant * 0x1p-24f;
                return sign == 0 ? v : -v;
            }
            return Float.intBitsToFloat(sign | ((exp + 112) << 23) | (mant << 13));
        }
    }
}
