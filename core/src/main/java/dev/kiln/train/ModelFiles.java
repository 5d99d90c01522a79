package dev.kiln.train;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonObject;
import dev.kiln.core.Kiln;
import dev.kiln.io.AtomicFiles;
import dev.kiln.io.SafeTensors;
import dev.kiln.nn.Module;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Instant;
import java.util.Map;

/**
 * A trained model on disk: {@code NAME.safetensors} (the state dict, PyTorch key names) and beside it
 * {@code NAME.safetensors.json}, the provenance (Tribuo-style): hyper-parameters, data source and checksums, seed,
 * device, library version, final metrics. Both written atomically.
 */
public final class ModelFiles {

    private static final Gson GSON = new GsonBuilder().setPrettyPrinting().serializeSpecialFloatingPointValues().create();

    private ModelFiles() {
    }

    /** The provenance file that belongs to {@code modelFile}. */
    public static Path sidecar(Path modelFile) {
        return modelFile.resolveSibling(modelFile.getFileName() + ".json");
    }

    /**
     * @param provenance free-form sections ("hyperparameters", "data", "metrics", ...) serialised as JSON; the
     *                   library version, model class and creation time are added
     */
    public static void save(Path modelFile, Module model, Map<String, Object> provenance) throws IOException {
        JsonObject json = GSON.toJsonTree(provenance).getAsJsonObject();
        json.addProperty("kiln_version", Kiln.version());
        json.addProperty("model", model.getClass().getName());
        json.addProperty("parameters", model.parameterCount());
        json.addProperty("created", Instant.now().toString());
        json.addProperty("model_file", modelFile.getFileName().toString());
        SafeTensors.write(modelFile, model.stateDict(), Map.of("format", "pt", "kiln_version", Kiln.version()));
        AtomicFiles.writeString(sidecar(modelFile), GSON.toJson(json) + "\n");
    }

    /** Loads a state dict saved by {@link #save} (or any F32 safetensors file with matching keys) into {@code model}. */
    public static void load(Path modelFile, Module model) throws IOException {
        model.loadStateDict(SafeTensors.read(modelFile).tensors());
    }
}
