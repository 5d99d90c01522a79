package dev.kiln.cpu;

import dev.kiln.core.Device;
import dev.kiln.core.Generator;
import dev.kiln.data.Normalization;
import dev.kiln.inference.Predictor;
import dev.kiln.io.KilnFormatException;
import dev.kiln.models.LeNet5;
import dev.kiln.train.ModelFiles;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Mutants of a saved LeNet5 model, loaded one by one with {@link Predictor#load(byte[], Predictor.Options)}; the
 * main method of the small-heap JVM that {@link ModelFileMutationTest} starts. Prints one line per kind of mutant
 * and a {@code FINDING} line for every load that ended in anything but a predictor or a {@link KilnFormatException}
 * naming the bytes; exits 1 if there was one.
 */
public final class ModelFileMutants {

    static final long SEED = 26;
    static final String[] DTYPES = {"F16", "BF16", "F64", "I64", "I32", "U8", "BOOL", "F8_E5M2", "U64", "X32", "f32", ""};
    static final String[] NUMBERS = {"0", "1", "2", "3", "5", "6", "16", "120", "400", "2147483647", "2147483648",
            "4294967296", "9223372036854775807", "9223372036854775808", "18446744073709551616", "-1", "1.0", "1e3"};

    private ModelFileMutants() {
    }

    /** The mutants of {@code model}, by kind, from {@link #SEED}. */
    static Map<String, List<byte[]>> mutants(byte[] model) {
        Random r = new Random(SEED);
        long headerLen = ByteBuffer.wrap(model, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        int dataStart = 8 + (int) headerLen;
        String header = new String(model, 8, (int) headerLen, StandardCharsets.UTF_8);
        byte[] data = Arrays.copyOfRange(model, dataStart, model.length);
        Map<String, List<byte[]>> kinds = new LinkedHashMap<>();

        List<byte[]> flips = kinds.computeIfAbsent("bit flip anywhere", k -> new ArrayList<>());
        for (int i = 0; i < 50; i++) {
            byte[] m = model.clone();
            int at = i < 25 ? r.nextInt(dataStart) : r.nextInt(m.length);   // half in the length and header
            m[at] ^= (byte) (1 << r.nextInt(8));
            flips.add(m);
        }
        List<byte[]> headerBytes = kinds.computeIfAbsent("byte edit in header", k -> new ArrayList<>());
        for (int i = 0; i < 40; i++) {
            byte[] m = model.clone();
            m[8 + r.nextInt((int) headerLen)] = (byte) (i % 2 == 0 ? " {}[],:\"0-e\\".charAt(r.nextInt(12)) : r.nextInt(256));
            headerBytes.add(m);
        }
        List<byte[]> dataBytes = kinds.computeIfAbsent("byte edit in data", k -> new ArrayList<>());
        for (int i = 0; i < 20; i++) {
            byte[] m = model.clone();
            m[dataStart + r.nextInt(data.length)] ^= (byte) (1 + r.nextInt(255));
            dataBytes.add(m);
        }
        List<byte[]> lengths = kinds.computeIfAbsent("header length edit", k -> new ArrayList<>());
        long[] lens = {0, 1, 2, 7, headerLen - 8, headerLen - 1, headerLen + 1, headerLen + 8, model.length - 8,
                model.length, 100_000_000L, 100_000_001L, Integer.MAX_VALUE, -1, Long.MIN_VALUE};
        for (long len : lens) {
            byte[] m = model.clone();
            ByteBuffer.wrap(m, 0, 8).order(ByteOrder.LITTLE_ENDIAN).putLong(len);
            lengths.add(m);
        }
        List<byte[]> cuts = kinds.computeIfAbsent("truncation", k -> new ArrayList<>());
        int[] fixed = {0, 1, 7, 8, 9, dataStart - 1, dataStart, dataStart + 1, model.length - 1};
        for (int cut : fixed) {
            cuts.add(Arrays.copyOf(model, cut));
        }
        for (int i = 0; i < 21; i++) {
            cuts.add(Arrays.copyOf(model, r.nextInt(model.length)));
        }
        cuts.add(Arrays.copyOf(model, model.length + 1 + r.nextInt(64)));   // trailing zero bytes

        List<byte[]> shapes = kinds.computeIfAbsent("shape edit", k -> new ArrayList<>());
        List<int[]> shapeNumbers = spans(header, Pattern.compile("\"shape\":\\[([0-9,]*)]"), "[0-9]+");
        for (int i = 0; i < 40; i++) {
            int[] span = shapeNumbers.get(r.nextInt(shapeNumbers.size()));
            String value = i % 3 == 0 ? String.valueOf(Long.parseLong(header.substring(span[0], span[1])) + (r.nextBoolean() ? 1 : -1))
                    : NUMBERS[r.nextInt(NUMBERS.length)];
            shapes.add(withHeader(replace(header, span, value), data));
        }
        for (int i = 0; i < 10; i++) {   // a dimension added or dropped: same element count, other rank
            int[] span = shapeNumbers.get(r.nextInt(shapeNumbers.size()));
            String n = header.substring(span[0], span[1]);
            shapes.add(withHeader(replace(header, span, i % 2 == 0 ? n + ",1" : "1," + n), data));
        }
        List<byte[]> offsets = kinds.computeIfAbsent("data_offsets edit", k -> new ArrayList<>());
        List<int[]> offsetNumbers = spans(header, Pattern.compile("\"data_offsets\":\\[([0-9,]*)]"), "[0-9]+");
        for (int i = 0; i < 25; i++) {
            int[] span = offsetNumbers.get(r.nextInt(offsetNumbers.size()));
            long v = Long.parseLong(header.substring(span[0], span[1]));
            String value = i % 2 == 0 ? String.valueOf(v + (r.nextInt(9) - 4) * 4L) : NUMBERS[r.nextInt(NUMBERS.length)];
            offsets.add(withHeader(replace(header, span, value), data));
        }
        List<byte[]> dtypes = kinds.computeIfAbsent("dtype edit", k -> new ArrayList<>());
        List<int[]> dtypeNames = spans(header, Pattern.compile("\"dtype\":\"([A-Z0-9_]*)\""), "[A-Z0-9_]+");
        for (int i = 0; i < 30; i++) {
            int[] span = dtypeNames.get(r.nextInt(dtypeNames.size()));
            dtypes.add(withHeader(replace(header, span, DTYPES[r.nextInt(DTYPES.length)]), data));
        }
        List<byte[]> names = kinds.computeIfAbsent("tensor name edit", k -> new ArrayList<>());
        List<int[]> tensorNames = spans(header, Pattern.compile("\"([a-z0-9_.]+)\":\\{\"dtype\""), "[a-z0-9_.]+");
        for (int i = 0; i < 30; i++) {
            int[] span = tensorNames.get(r.nextInt(tensorNames.size()));
            String name = header.substring(span[0], span[1]);
            int at = r.nextInt(name.length());
            String edited = switch (i % 4) {
                case 0 -> name.substring(0, at) + (name.charAt(at) == 'Q' ? 'R' : 'Q') + name.substring(at + 1);
                case 1 -> name.substring(0, at) + name.substring(at + 1);
                case 2 -> name + "x";
                default -> "__metadata__";
            };
            names.add(withHeader(replace(header, span, edited), data));
        }
        List<byte[]> metadata = kinds.computeIfAbsent("metadata edit", k -> new ArrayList<>());
        String[][] edits = {{"\"kiln.normalization\":\"", "1 "}, {"\"kiln.normalization\":\"", "x"},
                {"\"kiln.input_shape\":\"", "2,"}, {"\"kiln.input_shape\":\"", "0"}, {"\"kiln.architecture\":\"", "X"},
                {"\"kiln.architecture\":\"", "Res"}, {"\"kiln.data_sha256\":\"", "0"}, {"\"kiln_version\":\"", "9"},
                {"\"kiln.metadata_sha256\":\"", "f"}, {"\"format\":\"", "p"}};
        for (int i = 0; i < 30; i++) {
            String[] e = edits[i % edits.length];
            int at = header.indexOf(e[0]);
            if (at < 0) {
                throw new IllegalStateException("the saved model has no " + e[0]);
            }
            int from = at + e[0].length() + (i / edits.length);
            metadata.add(withHeader(header.substring(0, from) + e[1] + header.substring(from + (i % 2)), data));
        }
        return kinds;
    }

    /** Character ranges of each match of {@code item} inside group 1 of each match of {@code outer}. */
    private static List<int[]> spans(String header, Pattern outer, String item) {
        List<int[]> spans = new ArrayList<>();
        Matcher m = outer.matcher(header);
        while (m.find()) {
            Matcher n = Pattern.compile(item).matcher(header).region(m.start(1), m.end(1));
            while (n.find()) {
                spans.add(new int[]{n.start(), n.end()});
            }
        }
        if (spans.isEmpty()) {
            throw new IllegalStateException("nothing matches " + outer + " in the saved model's header");
        }
        return spans;
    }

    private static String replace(String s, int[] span, String with) {
        return s.substring(0, span[0]) + with + s.substring(span[1]);
    }

    /** A file with this header (length and padding rewritten to fit) and these data bytes. */
    private static byte[] withHeader(String header, byte[] data) {
        byte[] json = header.strip().getBytes(StandardCharsets.UTF_8);
        int padded = (json.length + 7) / 8 * 8;
        ByteBuffer b = ByteBuffer.allocate(8 + padded + data.length).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(padded).put(json);
        for (int i = json.length; i < padded; i++) {
            b.put((byte) ' ');
        }
        return b.put(data).array();
    }

    static byte[] savedModel() {
        LeNet5 model = new LeNet5(Device.cpu(), new Generator(26));
        try {
            return ModelFiles.toBytes(model, Normalization.MNIST);
        } finally {
            model.close();
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length == 2 && args[0].equals("load")) {
            try (Predictor p = Predictor.load(Path.of(args[1]), Predictor.Options.defaults().device(Device.cpu()))) {
                System.out.println("loaded: " + p.numClasses() + " classes, metadata of "
                        + p.metadata().values().stream().mapToLong(String::length).sum() + " characters, max heap "
                        + Runtime.getRuntime().maxMemory() / (1 << 20) + " MiB");
            }
            return;
        }
        byte[] model = savedModel();
        int total = 0;
        int findings = 0;
        for (Map.Entry<String, List<byte[]>> kind : mutants(model).entrySet()) {
            int loaded = 0;
            int rejected = 0;
            for (byte[] m : kind.getValue()) {
                total++;
                try (Predictor p = Predictor.load(m, Predictor.Options.defaults().device(Device.cpu()))) {
                    loaded++;
                } catch (KilnFormatException e) {
                    if (!e.getMessage().startsWith("model bytes (" + m.length + " bytes): ")) {
                        findings++;
                        System.out.println("FINDING " + kind.getKey() + ": message does not name the bytes: " + e.getMessage());
                    }
                    rejected++;
                } catch (Throwable t) {
                    findings++;
                    System.out.println("FINDING " + kind.getKey() + ": " + t);
                }
            }
            System.out.println(kind.getKey() + ": " + kind.getValue().size() + " mutants, " + rejected
                    + " rejected with KilnFormatException, " + loaded + " loaded");
        }
        System.out.println("total " + total + " mutants, " + findings + " findings, max heap "
                + Runtime.getRuntime().maxMemory() / (1 << 20) + " MiB");
        System.exit(findings == 0 ? 0 : 1);
    }
}
