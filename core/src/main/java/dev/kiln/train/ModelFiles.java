package dev.kiln.train;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonObject;
import dev.kiln.core.Kiln;
import dev.kiln.data.Normalization;
import dev.kiln.io.AtomicFiles;
import dev.kiln.io.SafeTensors;
import dev.kiln.models.Architecture;
import dev.kiln.nn.Module;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Instant;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Collectors;

/**
 * A trained model on disk: {@code NAME.safetensors} (the state dict, PyTorch key names) and beside it
 * {@code NAME.safetensors.json}, the provenance (Tribuo-style): hyper-parameters, data source and checksums, seed,
 * device, library version, final metrics. Both written atomically.
 * <p>
 * What it takes to score with the model travels inside the safetensors file itself, in its {@code __metadata__}:
 * {@code kiln.architecture}, {@code kiln.input_shape} and {@code kiln.normalization} (scale, mean, std). So a model
 * is self-contained as bytes ({@link #toBytes}) and {@code dev.kiln.inference.Predictor} loads it from a file, bytes
 * or a stream with nothing else.
 */
public final class ModelFiles {

    public static final String ARCHITECTURE_KEY = "kiln.architecture";
    public static final String INPUT_SHAPE_KEY = "kiln.input_shape";
    public static final String NORMALIZATION_KEY = "kiln.normalization";

    private static final Gson GSON = new GsonBuilder().setPrettyPrinting().serializeSpecialFloatingPointValues().create();

    private ModelFiles() {
    }

    /** The provenance file that belongs to {@code modelFile}. */
    public static Path sidecar(Path modelFile) {
        return modelFile.resolveSibling(modelFile.getFileName() + ".json");
    }

    /**
     * Saves weights and provenance; the architecture is recorded when {@code model} is a built-in one, the input
     * normalisation is not (use {@link #save(Path, Module, Normalization, Map)} for a model to score with).
     *
     * @param provenance free-form sections ("hyperparameters", "data", "metrics", ...) serialised as JSON; the
     *                   library version, model class and creation time are added
     */
    public static void save(Path modelFile, Module model, Map<String, Object> provenance) throws IOException {
        save(modelFile, model, Architecture.of(model).orElse(null), null, provenance);
    }

    /** Saves a built-in architecture with the normalisation its inputs need. */
    public static void save(Path modelFile, Module model, Normalization normalization, Map<String, Object> provenance)
            throws IOException {
        save(modelFile, model, requireArchitecture(model), normalization, provenance);
    }

    /**
     * Saves weights with everything needed to score: architecture, input shape and normalisation (in the
     * safetensors metadata and in the provenance JSON). Any model: {@code architecture} is the application's own
     * ({@code new Architecture("MyNet", inputShape, device -> new MyNet(...))}), which the Predictor is given again
     * to load the file.
     */
    public static void save(Path modelFile, Module model, Architecture architecture, Normalization normalization,
                            Map<String, Object> provenance) throws IOException {
        JsonObject json = GSON.toJsonTree(provenance).getAsJsonObject();
        Map<String, String> metadata = metadata(architecture, normalization);
        json.addProperty("kiln_version", Kiln.version());
        json.addProperty("model", model.getClass().getName());
        json.addProperty("parameters", model.parameterCount());
        json.addProperty("created", Instant.now().toString());
        json.addProperty("model_file", modelFile.getFileName().toString());
        metadata.forEach((k, v) -> {
            if (k.startsWith("kiln.")) {
                json.addProperty(k.substring("kiln.".length()), v);
            }
        });
        SafeTensors.write(modelFile, model.stateDict(), metadata);
        AtomicFiles.writeString(sidecar(modelFile), GSON.toJson(json) + "\n");
    }

    /** A built-in architecture's weights, architecture and normalisation as one self-contained safetensors file. */
    public static byte[] toBytes(Module model, Normalization normalization) {
        return toBytes(model, requireArchitecture(model), normalization);
    }

    /** Weights, architecture and normalisation as one self-contained safetensors file, in memory. */
    public static byte[] toBytes(Module model, Architecture architecture, Normalization normalization) {
        return SafeTensors.toBytes(model.stateDict(), metadata(architecture, normalization));
    }

    /** Loads a state dict saved by {@link #save} (or any F32 safetensors file with matching keys) into {@code model}. */
    public static void load(Path modelFile, Module model) throws IOException {
        model.loadStateDict(SafeTensors.read(modelFile).tensors());
    }

    /** The normalisation recorded in a model file's metadata, if any. */
    public static Optional<Normalization> normalization(Map<String, String> metadata, String source) throws IOException {
        String value = metadata.get(NORMALIZATION_KEY);
        if (value == null) {
            return Optional.empty();
        }
        String[] parts = value.trim().split("\\s+");
        try {
            if (parts.length != 3) {
                throw new IllegalArgumentException("expected three numbers");
            }
            return Optional.of(new Normalization(Float.parseFloat(parts[0]), Float.parseFloat(parts[1]),
                    Float.parseFloat(parts[2])));
        } catch (IllegalArgumentException e) {
            throw new IOException(source + ": " + NORMALIZATION_KEY + " '" + value
                    + "' is not 'scale mean std' (" + e.getMessage() + ")", e);
        }
    }

    /** The input shape recorded in a model file's metadata, if any. */
    public static Optional<int[]> inputShape(Map<String, String> metadata, String source) throws IOException {
        String value = metadata.get(INPUT_SHAPE_KEY);
        if (value == null) {
            return Optional.empty();
        }
        try {
            int[] shape = Arrays.stream(value.split(",")).map(String::trim).mapToInt(Integer::parseInt).toArray();
            if (shape.length == 0 || Arrays.stream(shape).anyMatch(d -> d < 1)) {
                throw new IllegalArgumentException("dimensions must be positive");
            }
            return Optional.of(shape);
        } catch (IllegalArgumentException e) {
            throw new IOException(source + ": " + INPUT_SHAPE_KEY + " '" + value
                    + "' is not a comma-separated list of positive sizes (" + e.getMessage() + ")", e);
        }
    }

    private static Architecture requireArchitecture(Module model) {
        return Architecture.of(model).orElseThrow(() -> new IllegalArgumentException(model.getClass().getName()
                + " is not a built-in architecture: pass an Architecture that names it and builds it, with"
                + " ModelFiles.save(file, model, architecture, normalization, provenance)"));
    }

    private static Map<String, String> metadata(Architecture architecture, Normalization normalization) {
        Map<String, String> m = new LinkedHashMap<>();
        m.put("format", "pt");
        m.put("kiln_version", Kiln.version());
        if (architecture != null) {
            m.put(ARCHITECTURE_KEY, architecture.name());
            m.put(INPUT_SHAPE_KEY, Arrays.stream(architecture.inputShape()).mapToObj(Integer::toString)
                    .collect(Collectors.joining(",")));
        }
        if (normalization != null) {
            m.put(NORMALIZATION_KEY, normalization.scale() + " " + normalization.mean() + " " + normalization.std());
        }
        return m;
    }
}
