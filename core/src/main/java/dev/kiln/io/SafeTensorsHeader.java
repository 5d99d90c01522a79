package dev.kiln.io;

import com.google.gson.Strictness;
import com.google.gson.stream.JsonReader;
import com.google.gson.stream.JsonToken;
import com.google.gson.stream.MalformedJsonException;

import java.io.IOException;
import java.io.ByteArrayInputStream;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.Reader;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * The JSON header of a safetensors file, parsed strictly (RFC 8259 through Gson's streaming reader in
 * {@link Strictness#STRICT} mode) into the form the format allows and nothing else: an object of tensor entries
 * ({@code dtype} a known name, {@code shape} an array of non-negative integers, {@code data_offsets} two of them)
 * and an optional {@code __metadata__} object of strings. Duplicate keys are refused (the reference implementation
 * reads the header into a map, so a second entry would silently replace the first).
 */
final class SafeTensorsHeader {

    private static final Pattern UNSIGNED = Pattern.compile("0|[1-9][0-9]{0,18}");
    /** Entries per array field: a shape of more than this many dimensions is not a tensor anyone writes. */
    private static final int MAX_RANK = 64;

    private final String file;
    private final JsonReader reader;

    private SafeTensorsHeader(String file, Reader json) {
        this.file = file;
        this.reader = new JsonReader(json);
        reader.setStrictness(Strictness.STRICT);
    }

    /**
     * Parses a header of {@code length} bytes read from {@code bytes}, which must start with {@code first}, the
     * header's first byte. The bytes are decoded as they are parsed, never held as a whole: beside what the header
     * yields (tensor entries and metadata strings), parsing needs at most about twice the longest string's length in
     * working memory (Gson's string builder while it grows), so reading a header takes at most about three times its
     * size in heap.
     */
    static SafeTensors.Header parse(String file, int first, InputStream bytes) throws KilnFormatException {
        if (first != '{') {
            throw new KilnFormatException(file, "header does not start with '{' (found " + (first < 0 ? "nothing"
                    : first < 0x80 ? "'" + printable((char) first) + "'" : String.format("byte 0x%02x", first))
                    + "): not a safetensors file");
        }
        Reader json = new InputStreamReader(bytes, StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT));
        try {
            return new SafeTensorsHeader(file, json).header();
        } catch (CharacterCodingException e) {
            throw new KilnFormatException(file, "header is not valid UTF-8", e);
        } catch (MalformedJsonException | java.io.EOFException e) {
            throw new KilnFormatException(file, "header is not valid JSON: " + withoutAdvice(e.getMessage()), e);
        } catch (IllegalStateException | NumberFormatException e) {
            // JsonReader reports a token of the wrong kind this way
            throw new KilnFormatException(file, "header is not valid JSON: " + withoutAdvice(e.getMessage()), e);
        } catch (KilnFormatException e) {
            throw e;
        } catch (IOException e) {
            throw new KilnFormatException(file, "header could not be parsed: " + withoutAdvice(e.getMessage()), e);
        }
    }

    /** A header held in memory. */
    static SafeTensors.Header parse(String file, byte[] headerBytes) throws KilnFormatException {
        return parse(file, headerBytes.length == 0 ? -1 : headerBytes[0] & 0xff, new ByteArrayInputStream(headerBytes));
    }

    private SafeTensors.Header header() throws IOException {
        List<SafeTensors.TensorInfo> tensors = new ArrayList<>();
        Map<String, String> metadata = new LinkedHashMap<>();
        Set<String> seen = new HashSet<>();
        reader.beginObject();
        while (reader.hasNext()) {
            String key = reader.nextName();
            if (!seen.add(key)) {
                throw bad("key \"" + printable(key) + "\" appears twice");
            }
            if (key.equals("__metadata__")) {
                readMetadata(metadata);
            } else {
                tensors.add(readTensor(key));
            }
        }
        reader.endObject();
        if (reader.peek() != JsonToken.END_DOCUMENT) {
            throw bad("text after the header object");
        }
        return new SafeTensors.Header(tensors, metadata);
    }

    private void readMetadata(Map<String, String> metadata) throws IOException {
        if (reader.peek() == JsonToken.NULL) {
            reader.nextNull();
            return;
        }
        expect(JsonToken.BEGIN_OBJECT, "__metadata__");
        reader.beginObject();
        while (reader.hasNext()) {
            String k = reader.nextName();
            expect(JsonToken.STRING, "__metadata__." + k);
            if (metadata.put(k, reader.nextString()) != null) {
                throw bad("__metadata__ key \"" + printable(k) + "\" appears twice");
            }
        }
        reader.endObject();
    }

    private SafeTensors.TensorInfo readTensor(String key) throws IOException {
        expect(JsonToken.BEGIN_OBJECT, "tensor " + key);
        reader.beginObject();
        SafeTensors.Dtype dtype = null;
        long[] shape = null;
        long[] offsets = null;
        Set<String> fields = new HashSet<>();
        while (reader.hasNext()) {
            String field = reader.nextName();
            if (!fields.add(field)) {
                throw bad("tensor " + printable(key) + ": field \"" + printable(field) + "\" appears twice");
            }
            switch (field) {
                case "dtype" -> {
                    expect(JsonToken.STRING, "tensor " + key + " dtype");
                    String name = reader.nextString();
                    try {
                        dtype = SafeTensors.Dtype.valueOf(name);
                    } catch (IllegalArgumentException e) {
                        throw bad("tensor " + printable(key) + ": unknown dtype \"" + printable(name) + "\"");
                    }
                }
                case "shape" -> shape = unsignedArray(key, "shape", -1);
                case "data_offsets" -> offsets = unsignedArray(key, "data_offsets", 2);
                default -> reader.skipValue(); // the reference implementation ignores fields it does not know
            }
        }
        reader.endObject();
        if (dtype == null || shape == null || offsets == null) {
            throw bad("tensor " + printable(key) + ": missing " + (dtype == null ? "dtype" : shape == null ? "shape"
                    : "data_offsets"));
        }
        return new SafeTensors.TensorInfo(key, dtype, shape, offsets[0], offsets[1]);
    }

    /** An array of non-negative integers that fit in a long; exactly {@code length} of them unless it is -1. */
    private long[] unsignedArray(String key, String field, int length) throws IOException {
        expect(JsonToken.BEGIN_ARRAY, "tensor " + key + " " + field);
        reader.beginArray();
        List<Long> values = new ArrayList<>();
        while (reader.hasNext()) {
            if (values.size() == (length < 0 ? MAX_RANK : length)) {
                throw bad("tensor " + printable(key) + ": " + field + " has more than " + values.size() + " entries");
            }
            expect(JsonToken.NUMBER, "tensor " + key + " " + field);
            String literal = reader.nextString();
            long value;
            try {
                value = UNSIGNED.matcher(literal).matches() ? Long.parseLong(literal) : -1;
            } catch (NumberFormatException tooLarge) {
                value = -1;
            }
            if (value < 0) {
                throw bad("tensor " + printable(key) + ": " + field + " entry " + printable(literal)
                        + " is not a non-negative integer below 2^63");
            }
            values.add(value);
        }
        reader.endArray();
        if (length >= 0 && values.size() != length) {
            throw bad("tensor " + printable(key) + ": " + field + " has " + values.size() + " entries, expected " + length);
        }
        long[] r = new long[values.size()];
        for (int i = 0; i < r.length; i++) {
            r[i] = values.get(i);
        }
        return r;
    }

    private void expect(JsonToken token, String what) throws IOException {
        JsonToken found = reader.peek();
        if (found != token) {
            throw bad(printable(what) + ": expected " + describe(token) + ", found " + describe(found));
        }
    }

    private KilnFormatException bad(String problem) {
        return new KilnFormatException(file, "bad header: " + problem);
    }

    private static String describe(JsonToken t) {
        return switch (t) {
            case BEGIN_OBJECT -> "an object";
            case BEGIN_ARRAY -> "an array";
            case STRING -> "a string";
            case NUMBER -> "a number";
            case BOOLEAN -> "true/false";
            case NULL -> "null";
            default -> t.name().toLowerCase(java.util.Locale.ROOT).replace('_', ' ');
        };
    }

    /** Gson's messages end with advice to parse leniently and a link; neither helps someone with a bad file. */
    static String withoutAdvice(String message) {
        if (message == null) {
            return "unexpected end of header";
        }
        String m = message.replaceAll("Use JsonReader\\.set\\w+\\([^)]*\\) to accept malformed JSON", "malformed JSON");
        int see = m.indexOf("\nSee ");
        if (see >= 0) {
            m = m.substring(0, see);
        }
        return m.strip();
    }

    /** Names and values from the file, shortened and with control characters escaped, fit for a message. */
    static String printable(CharSequence s) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < s.length() && b.length() < 80; i++) {
            char c = s.charAt(i);
            b.append(c < 0x20 || c == 0x7f ? String.format("\\u%04x", (int) c) : String.valueOf(c));
        }
        return s.length() > 80 ? b + "..." : b.toString();
    }

    private static String printable(char c) {
        return printable(String.valueOf(c));
    }
}
