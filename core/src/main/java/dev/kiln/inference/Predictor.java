package dev.kiln.inference;

import dev.kiln.core.Device;
import dev.kiln.core.GradMode;
import dev.kiln.core.Shapes;
import dev.kiln.core.Tensor;
import dev.kiln.core.TensorScope;
import dev.kiln.data.Normalization;
import dev.kiln.io.SafeTensors;
import dev.kiln.models.Architecture;
import dev.kiln.nn.LayerChain;
import dev.kiln.nn.LayerSequence;
import dev.kiln.nn.Module;
import dev.kiln.nn.StateDict;
import dev.kiln.train.ModelFiles;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import java.util.function.Supplier;

/**
 * Scores images with a trained model, safely from any number of threads: DJL's {@code Predictor} for Kiln.
 * <p>
 * Built from a model file alone ({@link ModelFiles}: weights plus the architecture, input shape and normalisation
 * recorded in the file's metadata), from its bytes or from a stream. It owns a private copy of the model in eval
 * mode, with each batch norm folded into the convolution or linear layer before it; every call runs without
 * gradient recording inside its own {@link TensorScope}, so nothing a caller does can change the model and nothing
 * leaks. Batches of any size are accepted (0 gives empty results; large ones run in chunks of
 * {@link Options#maxBatchSize}).
 * <p>
 * Inputs: {@code float[]} images hold raw values as a {@code Dataset} writes them (for MNIST 0–255) and
 * {@code byte[]} images unsigned bytes; both get the model's recorded normalisation. A {@link Tensor} input is the
 * model's input itself, already normalised, of shape (N, inputShape...).
 * <p>
 * {@link #close()} refuses new calls, waits for the calls in flight and then frees the model; with
 * {@link HotSwapPredictor} a new model replaces an old one without failing any request.
 *
 * <pre>{@code
 * try (Predictor p = Predictor.load(Path.of("lenet.safetensors"))) {
 *     int[] digits = p.classes(images);          // byte[][] of 28*28 pixels each
 * }
 * }</pre>
 */
public final class Predictor implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(Predictor.class);

    /** How a predictor is built; every setting has a default. */
    public static final class Options {
        private Device device;
        private boolean foldBatchNorm = true;
        private int maxBatchSize = 512;
        private Normalization normalization;
        private final List<Architecture> architectures = new ArrayList<>();

        public static Options defaults() {
            return new Options();
        }

        /** Where the model lives and runs (default {@link Device#auto()}). */
        public Options device(Device device) {
            this.device = Objects.requireNonNull(device, "device");
            return this;
        }

        /** Fold batch norms into the layers before them (default true). */
        public Options foldBatchNorm(boolean fold) {
            this.foldBatchNorm = fold;
            return this;
        }

        /** Largest batch run at once; bigger inputs are split (default 512). */
        public Options maxBatchSize(int max) {
            if (max < 1) {
                throw new IllegalArgumentException("maxBatchSize must be positive, got " + max);
            }
            this.maxBatchSize = max;
            return this;
        }

        /** The input normalisation, for a model file that records none (a recorded one must agree). */
        public Options normalization(Normalization normalization) {
            this.normalization = Objects.requireNonNull(normalization, "normalization");
            return this;
        }

        /** An architecture the model file may name, beside the built-in ones. */
        public Options architecture(Architecture architecture) {
            architectures.add(Objects.requireNonNull(architecture, "architecture"));
            return this;
        }

        private Architecture resolve(String name, String source) throws IOException {
            for (Architecture a : architectures) {
                if (a.name().equals(name)) {
                    return a;
                }
            }
            return Architecture.builtIn(name).orElseThrow(() -> new IOException(source + ": architecture '" + name
                    + "' is not built in; pass it with Predictor.Options.architecture(...)"));
        }
    }

    private final String source;
    private final Device device;
    private final Architecture architecture;
    private final Normalization normalization;
    private final Map<String, String> metadata;
    private final int[] inputShape;
    private final int inputSize;
    private final int numClasses;
    private final int maxBatchSize;
    private final Module model;
    private final List<Module> layers;
    private final List<Module> foldedLayers = new ArrayList<>();
    /** Batch norms folded in place in a model that is not a flat sequence. */
    private int graphFolded;
    private final ReentrantReadWriteLock inFlight = new ReentrantReadWriteLock();
    private volatile boolean closed;
    /** Guarded by the write lock. */
    private boolean released;

    private Predictor(String source, SafeTensors.Content content, Options options) throws IOException {
        this.source = source;
        this.metadata = Collections.unmodifiableMap(content.metadata());
        String archName = metadata.get(ModelFiles.ARCHITECTURE_KEY);
        if (archName == null) {
            // A file Kiln did not write (PyTorch's save_file): the options say what it holds.
            if (options.architectures.size() != 1) {
                throw new IOException(source + ": the model records no architecture (" + ModelFiles.ARCHITECTURE_KEY
                        + " in the safetensors metadata); pass exactly one with Predictor.Options.architecture(...)"
                        + (options.architectures.isEmpty() ? "" : " (" + options.architectures.size() + " given)")
                        + ", or save it with ModelFiles.save(file, model, architecture, normalization, provenance)");
            }
            this.architecture = options.architectures.get(0);
        } else {
            this.architecture = options.resolve(archName, source);
        }
        int[] recordedShape = ModelFiles.inputShape(metadata, source).orElse(architecture.inputShape());
        if (!Arrays.equals(recordedShape, architecture.inputShape())) {
            throw new IOException(source + ": input shape " + Shapes.toString(recordedShape) + " differs from architecture "
                    + architecture);
        }
        this.inputShape = recordedShape;
        this.inputSize = architecture.inputSize();
        Normalization recorded = ModelFiles.normalization(metadata, source).orElse(null);
        if (recorded != null && options.normalization != null && !recorded.equals(options.normalization)) {
            throw new IOException(source + ": the model records normalisation " + recorded + " but " + options.normalization
                    + " was requested");
        }
        this.normalization = recorded != null ? recorded : options.normalization;
        if (normalization == null) {
            throw new IOException(source + ": the model records no input normalisation (" + ModelFiles.NORMALIZATION_KEY
                    + "); save it with ModelFiles.save(file, model, normalization, provenance) or pass"
                    + " Predictor.Options.normalization(...)");
        }
        this.device = options.device != null ? options.device : Device.auto();
        this.maxBatchSize = options.maxBatchSize;
        Module m = architecture.buildForLoading(device);
        try {
            m.loadStateDict(content.tensors());
            m.eval();
            if (options.foldBatchNorm && m instanceof LayerSequence seq) {
                this.layers = BatchNormFolding.fold(seq.layers(), device, foldedLayers);
            } else {
                this.layers = null;
                if (options.foldBatchNorm) {
                    try (TensorScope scope = TensorScope.open()) {
                        graphFolded = BatchNormFolding.foldGraph(m, Tensor.zeros(device, batchShape(1))).size();
                    }
                }
            }
            this.model = m;
            this.numClasses = probeClasses();
        } catch (RuntimeException e) {
            foldedLayers.forEach(Module::close);
            m.close();
            throw e;
        }
        LOG.debug("{}: {} on {}, {} classes, {} batch norms folded", source, architecture, device, numClasses,
                foldedBatchNorms());
    }

    /** Loads a model file written by {@link ModelFiles#save}, on the default device. */
    public static Predictor load(Path modelFile) throws IOException {
        return load(modelFile, Options.defaults());
    }

    public static Predictor load(Path modelFile, Options options) throws IOException {
        return new Predictor(modelFile.toString(), SafeTensors.read(modelFile), options);
    }

    /** Loads a self-contained model, e.g. from {@link ModelFiles#toBytes}. */
    public static Predictor load(byte[] modelBytes) throws IOException {
        return load(modelBytes, Options.defaults());
    }

    public static Predictor load(byte[] modelBytes, Options options) throws IOException {
        return new Predictor("model bytes (" + modelBytes.length + " bytes)", SafeTensors.read(modelBytes, "model bytes"), options);
    }

    /** Reads the whole stream (it is not closed). */
    public static Predictor load(InputStream in) throws IOException {
        return load(in, Options.defaults());
    }

    public static Predictor load(InputStream in, Options options) throws IOException {
        return load(in.readAllBytes(), options);
    }

    /**
     * A predictor over a copy of {@code model}'s current weights (the model itself is neither kept nor changed).
     * {@code options} must name the architecture unless the model is a built-in one.
     */
    public static Predictor of(Module model, Normalization normalization, Options options) {
        Architecture arch = Architecture.of(model).orElse(options.architectures.isEmpty() ? null : options.architectures.get(0));
        if (arch == null) {
            throw new IllegalArgumentException(model.getClass().getName()
                    + " is not a built-in architecture: pass it with Predictor.Options.architecture(...)");
        }
        Options o = options.device != null ? options : copy(options).device(anyDevice(model));
        byte[] bytes = ModelFiles.toBytes(model, arch, normalization);
        try {
            return new Predictor(model.getClass().getSimpleName() + " (copied)", SafeTensors.read(bytes, "model copy"), o);
        } catch (IOException e) {
            throw new IllegalStateException("a model's own bytes did not load back: " + e.getMessage(), e);
        }
    }

    private static Options copy(Options options) {
        Options o = new Options();
        o.device = options.device;
        o.foldBatchNorm = options.foldBatchNorm;
        o.maxBatchSize = options.maxBatchSize;
        o.normalization = options.normalization;
        o.architectures.addAll(options.architectures);
        return o;
    }

    private static Device anyDevice(Module model) {
        List<Tensor> params = model.parameters();
        return params.isEmpty() ? Device.auto() : params.get(0).device();
    }

    /** Values per image: the product of {@link #inputShape()}. */
    public int inputSize() {
        return inputSize;
    }

    /** One image's shape, without the batch dimension, e.g. {@code [1, 28, 28]}. */
    public int[] inputShape() {
        return inputShape.clone();
    }

    public int numClasses() {
        return numClasses;
    }

    public Normalization normalization() {
        return normalization;
    }

    public Architecture architecture() {
        return architecture;
    }

    public Device device() {
        return device;
    }

    /** The model file's metadata (architecture, input shape, normalisation, library version, ...). */
    public Map<String, String> metadata() {
        return metadata;
    }

    /** Number of batch norms folded into the layer before them. */
    public int foldedBatchNorms() {
        return foldedLayers.size() + graphFolded;
    }

    // ---- float[] images: raw values, normalised here

    /** @return one row of {@link #numClasses()} logits per image */
    public float[][] logits(float[][] images) {
        return guarded(() -> rows(run(pack(images)), images.length));
    }

    /** Softmax of the logits, per image. */
    public float[][] probabilities(float[][] images) {
        return softmax(logits(images));
    }

    /** The most probable class of each image. */
    public int[] classes(float[][] images) {
        return guarded(() -> argmax(run(pack(images)), images.length));
    }

    /** The {@code k} most probable classes of each image, with their probabilities. */
    public Prediction[] topK(float[][] images, int k) {
        checkK(k);
        return rank(softmax(logits(images)), k);
    }

    // ---- byte[] images: unsigned 8-bit values, normalised here

    public float[][] logits(byte[][] images) {
        return guarded(() -> rows(run(pack(images)), images.length));
    }

    public float[][] probabilities(byte[][] images) {
        return softmax(logits(images));
    }

    public int[] classes(byte[][] images) {
        return guarded(() -> argmax(run(pack(images)), images.length));
    }

    public Prediction[] topK(byte[][] images, int k) {
        checkK(k);
        return rank(softmax(logits(images)), k);
    }

    // ---- tensors: the model's input, already normalised

    /**
     * Logits of shape (N, numClasses) on this predictor's device for {@code input} of shape (N, inputShape...), on
     * any device. The result belongs to the caller's open {@link TensorScope}, or to the caller if none is open.
     */
    public Tensor logits(Tensor input) {
        int[] s = input.shape();
        int[] expected = batchShape(s.length > 0 ? s[0] : -1);
        if (!Arrays.equals(s, expected)) {
            throw new IllegalArgumentException(source + ": expected input of shape (N, " + Shapes.toString(inputShape)
                    .replaceAll("^\\(|\\)$", "") + "), got " + Shapes.toString(s));
        }
        return guarded(() -> {
            if (s[0] == 0) {
                return Tensor.zeros(device, 0, numClasses);
            }
            try (GradMode g = GradMode.noGrad(); TensorScope scope = TensorScope.open()) {
                Tensor x = input.device() == device ? input : input.to(device);
                return scope.keep(forward(x));
            }
        });
    }

    /** Closes the model after the calls in flight have finished; later calls throw {@link PredictorClosedException}. */
    @Override
    public void close() {
        closed = true;
        inFlight.writeLock().lock();
        try {
            if (!released) {
                released = true;
                foldedLayers.forEach(Module::close);
                model.close();
            }
        } finally {
            inFlight.writeLock().unlock();
        }
    }

    public boolean isClosed() {
        return closed;
    }

    @Override
    public String toString() {
        return "Predictor[" + architecture + " on " + device + ", " + numClasses + " classes, from " + source + "]";
    }

    // ---- internals

    private <T> T guarded(Supplier<T> call) {
        if (closed) {
            throw new PredictorClosedException(toString());
        }
        ReentrantReadWriteLock.ReadLock lock = inFlight.readLock();
        lock.lock();
        try {
            if (closed) {
                throw new PredictorClosedException(toString());
            }
            return call.get();
        } finally {
            lock.unlock();
        }
    }

    private Tensor forward(Tensor x) {
        return layers != null ? LayerChain.forward(layers, x) : model.forward(x);
    }

    private int probeClasses() {
        try (GradMode g = GradMode.noGrad(); TensorScope scope = TensorScope.open()) {
            int[] out = forward(Tensor.zeros(device, batchShape(1))).shape();
            if (out.length != 2 || out[0] != 1) {
                throw new IllegalStateException(source + ": " + architecture.name() + " returns shape " + Shapes.toString(out)
                        + " for one image; a predictor needs (N, classes)");
            }
            return out[1];
        }
    }

    private int[] batchShape(int n) {
        int[] shape = new int[inputShape.length + 1];
        shape[0] = n;
        System.arraycopy(inputShape, 0, shape, 1, inputShape.length);
        return shape;
    }

    private float[] pack(float[][] images) {
        float[] flat = new float[Math.multiplyExact(images.length, inputSize)];
        for (int i = 0; i < images.length; i++) {
            float[] img = checkImage(images[i], i, images[i] == null ? -1 : images[i].length);
            System.arraycopy(img, 0, flat, i * inputSize, inputSize);
        }
        normalization.applyInPlace(flat, 0, flat.length);
        return flat;
    }

    private float[] pack(byte[][] images) {
        float[] flat = new float[Math.multiplyExact(images.length, inputSize)];
        for (int i = 0; i < images.length; i++) {
            byte[] img = checkImage(images[i], i, images[i] == null ? -1 : images[i].length);
            int base = i * inputSize;
            for (int j = 0; j < inputSize; j++) {
                flat[base + j] = normalization.apply(img[j] & 0xFF);
            }
        }
        return flat;
    }

    private <A> A checkImage(A image, int index, int length) {
        if (image == null) {
            throw new IllegalArgumentException(source + ": image " + index + " is null");
        }
        if (length != inputSize) {
            throw new IllegalArgumentException(source + ": image " + index + " has " + length + " values, expected "
                    + inputSize + " (" + Shapes.toString(inputShape) + ")");
        }
        return image;
    }

    /** Runs packed, normalised images in chunks; returns logits, {@code numClasses} per image. */
    private float[] run(float[] flat) {
        int n = flat.length / inputSize;
        if (n > 0 && n <= maxBatchSize) {
            try (GradMode g = GradMode.noGrad(); TensorScope scope = TensorScope.open()) {
                return forward(Tensor.of(device, flat, batchShape(n))).toArray();
            }
        }
        float[] logits = new float[n * numClasses];
        float[] chunk = null;
        for (int start = 0; start < n; start += maxBatchSize) {
            int count = Math.min(maxBatchSize, n - start);
            if (chunk == null || chunk.length != count * inputSize) {
                chunk = new float[count * inputSize];
            }
            System.arraycopy(flat, start * inputSize, chunk, 0, chunk.length);
            try (GradMode g = GradMode.noGrad(); TensorScope scope = TensorScope.open()) {
                float[] out = forward(Tensor.of(device, chunk, batchShape(count))).toArray();
                System.arraycopy(out, 0, logits, start * numClasses, out.length);
            }
        }
        return logits;
    }

    private float[][] rows(float[] flat, int n) {
        float[][] rows = new float[n][];
        for (int i = 0; i < n; i++) {
            rows[i] = Arrays.copyOfRange(flat, i * numClasses, (i + 1) * numClasses);
        }
        return rows;
    }

    private static float[][] softmax(float[][] logits) {
        float[][] p = new float[logits.length][];
        for (int i = 0; i < logits.length; i++) {
            float[] row = logits[i];
            float max = Float.NEGATIVE_INFINITY;
            for (float v : row) {
                max = Math.max(max, v);
            }
            double sum = 0;
            double[] e = new double[row.length];
            for (int j = 0; j < row.length; j++) {
                e[j] = Math.exp((double) row[j] - max);
                sum += e[j];
            }
            p[i] = new float[row.length];
            for (int j = 0; j < row.length; j++) {
                p[i][j] = (float) (e[j] / sum);
            }
        }
        return p;
    }

    /** The index of the first largest of each row of {@code n} rows of {@link #numClasses} logits. */
    private int[] argmax(float[] logits, int n) {
        int[] best = new int[n];
        for (int i = 0; i < n; i++) {
            int base = i * numClasses;
            int b = 0;
            for (int j = 1; j < numClasses; j++) {
                if (logits[base + j] > logits[base + b]) {
                    b = j;
                }
            }
            best[i] = b;
        }
        return best;
    }

    private void checkK(int k) {
        if (k < 1 || k > numClasses) {
            throw new IllegalArgumentException("k must be in [1, " + numClasses + "], got " + k);
        }
    }

    private static Prediction[] rank(float[][] probabilities, int k) {
        Prediction[] out = new Prediction[probabilities.length];
        for (int i = 0; i < probabilities.length; i++) {
            float[] p = probabilities[i];
            Integer[] order = new Integer[p.length];
            for (int j = 0; j < p.length; j++) {
                order[j] = j;
            }
            Arrays.sort(order, (a, b) -> p[a] != p[b] ? Float.compare(p[b], p[a]) : Integer.compare(a, b));
            int[] classes = new int[k];
            float[] probs = new float[k];
            for (int j = 0; j < k; j++) {
                classes[j] = order[j];
                probs[j] = p[order[j]];
            }
            out[i] = new Prediction(classes, probs);
        }
        return out;
    }
}
