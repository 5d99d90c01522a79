package dev.kiln.train;

import com.google.gson.JsonParseException;
import com.google.gson.reflect.TypeToken;
import dev.kiln.io.KilnFormatException;
import dev.kiln.io.SafeTensors;
import dev.kiln.nn.Module;
import dev.kiln.nn.StateDict;
import dev.kiln.optim.Optimizer;

import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * A training checkpoint in one safetensors file, written atomically: the model's state dict under {@code model.},
 * the optimizer's under {@code optimizer.}, and in the metadata the number of completed epochs, the seed and the
 * metrics so far (JSON), and under {@code setting.NAME} every setting of the run that changes its result (batch size,
 * learning rate and schedule, data identity, ...), so a resume with different ones can be refused.
 */
public record Checkpoint(StateDict model, StateDict optimizer, int completedEpochs, long seed, String historyJson,
                         Map<String, String> metadata) {

    public static final String FORMAT = "kiln-checkpoint/1";
    /** Prefix of the metadata keys that hold the run's settings. */
    public static final String SETTING_PREFIX = "setting.";

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

    /**
     * Reads a checkpoint; a file that is not one, or whose metadata is damaged, is a {@link KilnFormatException}
     * naming the file and the field.
     */
    public static Checkpoint load(Path file) throws IOException {
        SafeTensors.Content c = SafeTensors.read(file);
        Map<String, String> meta = c.metadata();
        String name = file.toString();
        if (!FORMAT.equals(meta.get("format"))) {
            throw new KilnFormatException(name, "not a Kiln checkpoint (metadata format is " + meta.get("format")
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
                throw new KilnFormatException(name, "unexpected tensor " + e.getKey() + " in checkpoint");
            }
        }
        int completed = (int) number(name, meta, "completed_epochs", Integer.MAX_VALUE);
        long seed = number(name, meta, "seed", Long.MAX_VALUE);
        Checkpoint cp = new Checkpoint(model, optimizer, completed, seed, meta.getOrDefault("history", "[]"), meta);
        List<EpochMetrics> history = cp.parseHistory(name);
        if (history.size() != completed) {
            throw new KilnFormatException(name, "metadata history has " + history.size()
                    + " epoch(s) but completed_epochs is " + completed);
        }
        return cp;
    }

    private static long number(String file, Map<String, String> meta, String key, long max) throws KilnFormatException {
        String v = meta.get(key);
        if (v == null) {
            throw new KilnFormatException(file, "checkpoint metadata lacks " + key);
        }
        try {
            long n = Long.parseLong(v);
            if (n < 0 && key.equals("completed_epochs") || n > max) {
                throw new NumberFormatException("out of range");
            }
            return n;
        } catch (NumberFormatException e) {
            throw new KilnFormatException(file, "checkpoint metadata " + key + " is \"" + v + "\", not "
                    + (max == Integer.MAX_VALUE ? "a count" : "an integer"), e);
        }
    }

    /** The metrics of the completed epochs, in order. */
    public List<EpochMetrics> history() {
        try {
            return parseHistory("checkpoint");
        } catch (KilnFormatException e) {
            throw new IllegalStateException(e.getMessage(), e);
        }
    }

    private List<EpochMetrics> parseHistory(String file) throws KilnFormatException {
        try {
            // Kiln writes NaN test metrics of a run without a test set as NaN literals, so those are accepted
            List<EpochMetrics> h = new com.google.gson.GsonBuilder().serializeSpecialFloatingPointValues().create().fromJson(historyJson, new TypeToken<List<EpochMetrics>>() {
            }.getType());
            if (h == null || h.contains(null)) {
                throw new JsonParseException("not a list of epochs");
            }
            return h;
        } catch (JsonParseException | IllegalStateException | NumberFormatException e) {
            throw new KilnFormatException(file, "checkpoint metadata history is not valid: " + e.getMessage(), e);
        }
    }

    /** The run's settings recorded when the checkpoint was written ({@code setting.} keys), sorted by name. */
    public Map<String, String> settings() {
        Map<String, String> s = new TreeMap<>();
        metadata.forEach((k, v) -> {
            if (k.startsWith(SETTING_PREFIX)) {
                s.put(k.substring(SETTING_PREFIX.length()), v);
            }
        });
        return s;
    }

    /**
     * The differences between the recorded settings and {@code now}, one line each ({@code lr: checkpoint 0.1, now
     * 0.05}); empty when they agree. A setting the checkpoint did not record is a difference too.
     */
    public List<String> differencesFrom(Map<String, String> now) {
        Map<String, String> then = settings();
        List<String> diffs = new java.util.ArrayList<>();
        java.util.SortedSet<String> keys = new java.util.TreeSet<>(then.keySet());
        keys.addAll(now.keySet());
        for (String k : keys) {
            String a = then.get(k);
            String b = now.get(k);
            if (!java.util.Objects.equals(a, b)) {
                diffs.add(k + ": checkpoint " + (a == null ? "(not recorded)" : a) + ", now " + (b == null ? "(not set)" : b));
            }
        }
        return diffs;
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
