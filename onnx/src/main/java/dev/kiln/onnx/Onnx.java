package dev.kiln.onnx;

import dev.kiln.core.Device;
import dev.kiln.io.KilnFormatException;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Objects;

/**
 * Imports ONNX models as Kiln modules, for inference and for further training.
 *
 * <pre>{@code
 * try (OnnxModule model = Onnx.load(Path.of("lenet.onnx"), Device.cpu())) {
 *     Tensor logits = model.forward(images);           // eval mode (unless the file's batch norms train)
 *     model.train();                                    // batch norm on batch statistics, running stats updated
 * }
 * }</pre>
 *
 * <p>The graph's nodes map to Kiln layers and ops (the op table of {@code docs/onnx.md}); an op Kiln lacks is a
 * {@link KilnFormatException} naming the op and the node. Whatever the bytes, a load returns a module or throws
 * {@code KilnFormatException} naming what was wrong: the reader checks the limits below before it allocates, each
 * initializer's stored size against its dims and type, names produced twice or never, cycles, the opset (7 to 17) and
 * external data, which it refuses (tensors must be stored in the file).
 */
public final class Onnx {

    /** The largest model file read, in bytes. */
    public static final long MAX_MODEL_BYTES = 512L << 20;
    /** Protobuf messages (nodes, attributes, tensors, value infos, dimensions...) in one model. */
    public static final long MAX_MESSAGES = 1_000_000;
    /** Values of repeated numeric fields (dims, int64_data, float_data, ints...) in one model. */
    public static final long MAX_REPEATED_VALUES = 1L << 25;
    /** How deep messages may nest (a model is about 7 deep; subgraphs and sequence types add more). */
    public static final int MAX_NESTING = 16;
    public static final int MAX_NODES = 100_000;
    public static final int MAX_INITIALIZERS = 100_000;
    /** The highest tensor rank read. */
    public static final int MAX_RANK = 8;
    /** Values in one initializer or constant. */
    public static final long MAX_TENSOR_ELEMENTS = 1L << 28;
    /** Values in all constants computed at load time together (folded shape arithmetic). */
    public static final long MAX_FOLDED_VALUES = 1L << 24;
    /** The largest magnitude of an integer attribute (kernel sizes, strides, pads, axes). */
    public static final long MAX_ATTRIBUTE_VALUE = 1L << 20;
    /** The opsets of the default domain read: the operators' definitions in between are the ones implemented. */
    public static final int MIN_OPSET = 7;
    public static final int MAX_OPSET = 17;
    /** ONNX IR versions read (3: ONNX 1.0's; 10: ONNX 1.16's). */
    public static final long MIN_IR_VERSION = 3;
    public static final long MAX_IR_VERSION = 10;

    private Onnx() {
    }

    /**
     * Reads an ONNX model file (tensors stored in the file) and builds it on {@code device}.
     *
     * @throws KilnFormatException the file is not an ONNX model Kiln can run (message: the file, then what and where)
     * @throws IOException         the file could not be read
     */
    public static OnnxModule load(Path file, Device device) throws IOException {
        Objects.requireNonNull(device, "device");
        long size = Files.size(file);
        if (size > MAX_MODEL_BYTES) {
            throw new KilnFormatException(file.toString(), size + " bytes, more than the " + MAX_MODEL_BYTES
                    + " an ONNX model may have here (Onnx.MAX_MODEL_BYTES)");
        }
        return load(Files.readAllBytes(file), file.toString(), device);
    }

    /** {@link #load(Path, Device)} from bytes; the messages name them {@code ONNX bytes (N bytes)}. */
    public static OnnxModule load(byte[] bytes, Device device) throws KilnFormatException {
        return load(bytes, "ONNX bytes (" + bytes.length + " bytes)", device);
    }

    /** {@link #load(Path, Device)} from bytes, named {@code name} in messages. */
    public static OnnxModule load(byte[] bytes, String name, Device device) throws KilnFormatException {
        Objects.requireNonNull(device, "device");
        return GraphBuilder.build(OnnxReader.read(bytes, name), device);
    }

    /** {@link #load(InputStream, String, Device)} with messages naming {@code ONNX stream}. */
    public static OnnxModule load(InputStream in, Device device) throws IOException {
        return load(in, "ONNX stream", device);
    }

    /** Reads the stream to its end (not closing it), at most {@link #MAX_MODEL_BYTES}. */
    public static OnnxModule load(InputStream in, String name, Device device) throws IOException {
        byte[] bytes = in.readNBytes((int) Math.min(MAX_MODEL_BYTES + 1, Integer.MAX_VALUE - 8));
        if (bytes.length > MAX_MODEL_BYTES) {
            throw new KilnFormatException(name, "more than the " + MAX_MODEL_BYTES
                    + " bytes an ONNX model may have here (Onnx.MAX_MODEL_BYTES)");
        }
        return load(bytes, name, device);
    }
}
