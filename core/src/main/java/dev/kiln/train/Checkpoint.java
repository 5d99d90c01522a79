package dev.kiln.train;

import dev.kiln.io.SafeTensors;
import dev.kiln.nn.Module;
import dev.kiln.nn.StateDict;
import dev.kiln.optim.Optimizer;

import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A training checkpoint in one safetensors file, written atomically: the model's state dict under {@code model.},
 * the optimizer's under {@code optimizer.}, and in the metadata the number of completed epochs, the seed and the
 * metrics so far (JSON).
 */
public record Checkpoint(StateDict model, StateDict optimizer, int completedEpochs, long seed, String historyJson,
                         Map<String, String> metadata) {

    public static final String FORMAT = "kiln-checkpoint/1";

    public static void save(Path file, Module model, Optimizer optimizer, int completedEpochs, long seed,
                            String historyJson, Map<String, String> extra) throws IOException {
        StateDict all = new StateDict();
        model.stateDict().entries().forEach((k, v) -> all.put("model." + k, v));
        optimizer.stateDict().entries().forEach((k, v) -> all.put("optimizer." + k, v));
        Map<String, String> meta = new LinkedHashMap<>(extra);
        meta.put("format", FORMAT);
        meta.put("completed_epochs", Integer.toString(completedEpochs));
        meta.put("seed", Long.toString(seed));
        meta.put("history", historyJson);
        SafeTensors.write(file, all, meta);
    }

    public static Checkpoint load(Path file) throws IOException {
        SafeTensors.Content c = SafeTensors.read(file);
        Map<String, String> meta = c.metadata();
        if (!FORMAT.equals(meta.get("format"))) {
            throw new IOException(file + ": not a Kiln checkpoint (metadata format is " + meta.get("format")
                    + ", expected " + FORMAT + ")");
        }
        StateDict model = new StateDict();
        StateDict optimizer = new StateDict();
        for (Map.Entry<String, StateDict.Entry> e : c.tensors().entries().entrySet()) {
            if (e.getKey().startsWith("model.")) {
                model.put(e.getKey().substring(6), e.getValue());
            } else if (e.getKey().startsWith("optimizer.")) {
                optimizer.put(e.getKey().substring(10), e.getValue());
            } else {
                throw new IOException(file + ": unexpected tensor " + e.getKey() + " in checkpoint");
            }
        }
        try {
            return new Checkpoint(model, optimizer, Integer.parseInt(meta.get("completed_epochs")),
                    Long.parseLong(meta.get("seed")), meta.getOrDefault("history", "[]"), meta);
        } catch (NumberFormatException e) {
            throw new IOException(file + ": corrupt checkpoint metadata: " + e.getMessage(), e);
        }
    }

    /** Restores model and optimizer; validated fully before either changes. */
    public void restore(Module m, Optimizer o) {
        StateDict modelBackup = m.stateDict();
        m.loadStateDict(model);
        try {
            o.loadStateDict(optimizer);
        } catch (RuntimeException e) {
            m.loadStateDict(modelBackup);
            throw e;
        }
    }
}
