package dev.kiln.cpu;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.kiln.core.Device;
import dev.kiln.core.Generator;
import dev.kiln.io.KilnFormatException;
import dev.kiln.io.SafeTensors;
import dev.kiln.nn.BatchNorm1d;
import dev.kiln.nn.CrossEntropyLoss;
import dev.kiln.nn.Linear;
import dev.kiln.nn.Sequential;
import dev.kiln.nn.StateDict;
import dev.kiln.optim.SGD;
import dev.kiln.train.Checkpoint;
import dev.kiln.train.Trainer;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Whatever a checkpoint file holds, resuming either works or throws {@link KilnFormatException} (a bad file, or
 * one whose tensors do not fit the model) or {@link dev.kiln.train.CheckpointMismatchException} (a checkpoint of a
 * run with other settings), and a
 * refused resume leaves the model unchanged. Half the inputs are raw bytes; the other half are well-formed files
 * (valid hash) whose metadata and tensors the fuzzer rewrites, so the checkpoint layer itself is reached.
 * Seeds and regression inputs: {@code CheckpointFuzzTestInputs/resume/}.
 */
class CheckpointFuzzTest {

    private static final String[] META_KEYS = {"format", "completed_epochs", "seed", "history", "setting.lr",
            "setting.batch_size", "kiln.data_sha256"};
    private static final String[] TENSOR_KEYS = {"model.0.weight", "model.0.bias", "model.1.weight",
            "model.1.running_mean", "model.1.num_batches_tracked", "optimizer.state.0.momentum_buffer",
            "optimizer.state.9.momentum_buffer", "optimizer.counter.steps", "model.2.weight", "other"};

    private static Path file;

    @FuzzTest(maxDuration = "25s")
    void resume(FuzzedDataProvider in) throws IOException {
        if (file == null) {
            // a memory file system where there is one: every execution writes (and syncs) a checkpoint
            Path shm = Path.of("/dev/shm");
            file = Files.isDirectory(shm) && Files.isWritable(shm)
                    ? Files.createTempFile(shm, "kiln-fuzz-checkpoint", ".safetensors")
                    : Files.createTempFile("kiln-fuzz-checkpoint", ".safetensors");
            file.toFile().deleteOnExit();
        }
        Device cpu = Device.of("cpu");
        try (Sequential model = new Sequential(new Linear(cpu, new Generator(1), 4, 3), new BatchNorm1d(cpu, 3));
             SGD sgd = new SGD(model.parameters(), 0.1f, 0.9f, 0f, false, 0f)) {
            if (in.consumeBoolean()) {
                Files.write(file, in.consumeRemainingAsBytes());
            } else {
                writeMutated(in, model, sgd);
            }
            StateDict before = model.stateDict();
            Trainer trainer = Trainer.builder().model(model).loss(new CrossEntropyLoss()).optimizer(sgd).device(cpu)
                    .epochs(3).settings(Map.of("lr", "0.1", "batch_size", "8")).build();
            try {
                trainer.resumeFrom(file);
            } catch (KilnFormatException e) {
                assertTrue(e.getMessage().startsWith(file.toString()), e.getMessage());
                assertUnchanged(before, model.stateDict());
            } catch (dev.kiln.train.CheckpointMismatchException e) {
                assertUnchanged(before, model.stateDict());
            }
        }
    }

    private static void writeMutated(FuzzedDataProvider in, Sequential model, SGD sgd) throws IOException {
        Map<String, StateDict.Entry> all = new LinkedHashMap<>();
        model.stateDict().entries().forEach((k, v) -> all.put("model." + k, v));
        sgd.stateDict().entries().forEach((k, v) -> all.put("optimizer." + k, v));
        Map<String, String> meta = new LinkedHashMap<>(Map.of("format", Checkpoint.FORMAT, "completed_epochs", "1",
                "seed", "0", "history", "[{\"epoch\":0,\"trainLoss\":1.0,\"trainAccuracy\":0.5,\"testLoss\":1.0,"
                        + "\"testAccuracy\":0.5,\"trainImages\":8,\"trainSeconds\":0.1}]", "setting.lr", "0.1",
                "setting.batch_size", "8"));
        int edits = in.consumeInt(0, 6);
        for (int i = 0; i < edits; i++) {
            switch (in.consumeInt(0, 3)) {
                case 0 -> meta.put(in.pickValue(META_KEYS), in.consumeString(200));
                case 1 -> meta.remove(in.pickValue(META_KEYS));
                case 2 -> {
                    String key = in.pickValue(TENSOR_KEYS);
                    int rank = in.consumeInt(0, 3);
                    int[] shape = new int[rank];
                    int numel = 1;
                    for (int d = 0; d < rank; d++) {
                        shape[d] = in.consumeInt(0, 5);
                        numel *= shape[d];
                    }
                    if (in.consumeBoolean() && numel == 1 && rank <= 1) {
                        long v = in.consumeLong();
                        all.put(key, new StateDict.Entry(shape, new float[]{v}, StateDict.DType.I64, v));
                    } else {
                        float[] data = new float[numel];
                        for (int j = 0; j < numel; j++) {
                            data[j] = in.consumeFloat();
                        }
                        all.put(key, new StateDict.Entry(shape, data, StateDict.DType.F32));
                    }
                }
                default -> all.remove(in.pickValue(TENSOR_KEYS));
            }
        }
        StateDict sd = new StateDict();
        all.forEach(sd::put);
        SafeTensors.write(file, sd, meta);
    }

    private static void assertUnchanged(StateDict before, StateDict after) {
        for (String k : List.copyOf(before.entries().keySet())) {
            assertArrayEquals(before.get(k).data(), after.get(k).data(), k + " changed by a refused resume");
            assertTrue(before.get(k).longValue() == after.get(k).longValue(), k);
        }
    }
}
