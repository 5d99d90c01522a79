package dev.kiln.examples;

import dev.kiln.io.SafeTensors;
import dev.kiln.nn.StateDict;
import dev.kiln.train.Checkpoint;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The command line in a child JVM, killed with SIGKILL at random points of training and of checkpoint writing:
 * every time, the checkpoint on disk loads, and resuming from it reaches bit for bit the model of a run that was
 * never interrupted. And Ctrl-C (SIGINT) stops cleanly with exit code 130.
 */
class CheckpointKillTest {

    private static final int KILLS = 20;
    private static final int EPOCHS = 3;

    @TempDir
    static Path shared;
    static Path data;

    @BeforeAll
    static void data() throws IOException {
        data = SyntheticMnist.write(shared.resolve("mnist"), 256, 64);
    }

    /** The same training in a child JVM. */
    private static List<String> child(List<String> lenetArgs) {
        List<String> cmd = new ArrayList<>(List.of(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-XX:+UseSerialGC", "-Xshare:auto", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn"));
        // the same CPU kernels as this JVM (SIMD only with the Vector API module): they differ in the last bit
        if (ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent()) {
            cmd.addAll(List.of("--add-modules", "jdk.incubator.vector"));
        }
        cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), KilnCli.class.getName()));
        cmd.addAll(lenetArgs);
        return cmd;
    }

    private static List<String> lenet(Path checkpoint, boolean resume, Path save, int epochs) {
        List<String> cmd = new ArrayList<>(List.of(
                "lenet", "--data", data.toString(), "--device", "cpu", "--progress", "none", "--epochs",
                Integer.toString(epochs), "--batch-size", "32", "--seed", "3"));
        if (resume) {
            cmd.addAll(List.of("--resume", checkpoint.toString()));
        } else {
            cmd.addAll(List.of("--checkpoint", checkpoint.toString()));
        }
        if (save != null) {
            cmd.addAll(List.of("--save", save.toString()));
        }
        return cmd;
    }

    private static Process start(List<String> cmd, Path log) throws IOException {
        return new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
    }

    /** Runs in this JVM: the same code and so the same bits as a child, without another JVM start. */
    private static void runToEnd(List<String> args) {
        java.io.StringWriter out = new java.io.StringWriter();
        assertEquals(0, CliRunner.run(out, args.toArray(new String[0])), out.toString());
    }

    private static boolean logSays(Path log, String text) throws IOException {
        return Files.exists(log) && Files.readString(log).contains(text);
    }

    private static StateDict tensors(Path model) throws IOException {
        return SafeTensors.read(model).tensors();
    }

    private static boolean tempFileIn(Path dir) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.anyMatch(f -> f.getFileName().toString().endsWith(".tmp"));
        }
    }

    @Test
    @DisplayName("SIGKILL at 20 random points of training and checkpoint writing: the checkpoint loads and resuming is bit-exact")
    void killAndResume(@TempDir Path tmp) throws Exception {
        Path reference = tmp.resolve("reference.safetensors");
        long t0 = System.nanoTime();
        runToEnd(lenet(tmp.resolve("reference-ckpt.safetensors"), false, reference, EPOCHS));
        long trainMillis = (System.nanoTime() - t0) / 1_000_000;
        StateDict expected = tensors(reference);
        Random random = new Random(20261129);
        int withCheckpoint = 0;
        int duringWrite = 0;
        for (int trial = 0; trial < KILLS; trial++) {
            Path dir = Files.createDirectories(tmp.resolve("trial" + trial));
            Path ckpt = dir.resolve("ckpt.safetensors");
            Path log = dir.resolve("killed.log");
            Process p = start(child(lenet(ckpt, false, null, EPOCHS)), log);
            boolean atWrite = trial % 2 == 1;
            if (atWrite) {
                // kill while the 2nd or 3rd checkpoint is being written (its temporary file exists), so a complete
                // older checkpoint sits beside the half-written one
                int nth = 2 + random.nextInt(EPOCHS - 1);
                int seen = 0;
                boolean inWrite = false;
                while (p.isAlive()) {
                    boolean tmpNow = tempFileIn(dir);
                    if (tmpNow && !inWrite && ++seen == nth) {
                        break;
                    }
                    inWrite = tmpNow;
                    java.util.concurrent.locks.LockSupport.parkNanos(200_000);
                }
            } else {
                // a random moment of training: after the data is loaded, within the (cold JVM's longer) training time
                while (p.isAlive() && !logSays(log, "data: ")) {
                    Thread.sleep(5);
                }
                Thread.sleep(random.nextInt((int) Math.max(1, 2 * trainMillis)));
            }
            p.destroyForcibly(); // SIGKILL on Linux
            p.waitFor(30, TimeUnit.SECONDS);
            boolean leftTemp = tempFileIn(dir);
            duringWrite += leftTemp ? 1 : 0;
            Path done = dir.resolve("final.safetensors");
            if (Files.exists(ckpt)) {
                withCheckpoint++;
                Checkpoint cp = Checkpoint.load(ckpt); // must load, whatever the moment of the kill
                assertTrue(cp.completedEpochs() >= 1 && cp.completedEpochs() <= EPOCHS, "epochs " + cp.completedEpochs());
                if (cp.completedEpochs() < EPOCHS) {
                    runToEnd(lenet(ckpt, true, done, EPOCHS));
                } else {
                    // killed after the last checkpoint: it holds the final model
                    StateDict finalModel = new StateDict();
                    cp.model().entries().forEach(finalModel::put);
                    SafeTensors.write(done, finalModel, Map.of());
                }
            } else {
                runToEnd(lenet(ckpt, false, done, EPOCHS));
            }
            StateDict got = tensors(done);
            assertEquals(expected.entries().keySet(), got.entries().keySet());
            for (Map.Entry<String, StateDict.Entry> e : expected.entries().entrySet()) {
                assertArrayEquals(e.getValue().data(), got.get(e.getKey()).data(),
                        "trial " + trial + ": " + e.getKey() + " differs from the uninterrupted run");
                assertEquals(e.getValue().longValue(), got.get(e.getKey()).longValue(), e.getKey());
            }
        }
        System.out.printf("kill test: %d kills, %d with a checkpoint on disk, %d left a half-written temporary file;"
                + " uninterrupted run in this JVM %d ms%n", KILLS, withCheckpoint, duringWrite, trainMillis);
        assertTrue(duringWrite >= 1, "at least one kill landed inside a checkpoint write");
    }

    @Test
    @DisplayName("SIGINT stops before the next batch, writes nothing half-done, names the last checkpoint, exits 130")
    void sigint(@TempDir Path tmp) throws Exception {
        Path ckpt = tmp.resolve("ckpt.safetensors");
        Path metrics = tmp.resolve("metrics.json");
        List<String> cmd = child(lenet(ckpt, false, tmp.resolve("model.safetensors"), 200));
        cmd.addAll(List.of("--metrics-json", metrics.toString()));
        cmd.addAll(0, defaultSigint());
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        StringBuilder out = new StringBuilder();
        Thread reader = new Thread(() -> {
            try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
                String line;
                while ((line = r.readLine()) != null) {
                    synchronized (out) {
                        out.append(line).append('\n');
                    }
                }
            } catch (IOException ignored) {
                // the process ended
            }
        });
        reader.start();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
        while (!Files.exists(ckpt) && p.isAlive() && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        assertTrue(p.isAlive(), "still training after the first checkpoint");
        new ProcessBuilder("kill", "-INT", Long.toString(p.pid())).start().waitFor();
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "stopped after SIGINT");
        reader.join(10_000);
        String text;
        synchronized (out) {
            text = out.toString();
        }
        assertEquals(130, p.exitValue(), text);
        assertTrue(text.contains("interrupted: stopped between two batches"), text);
        assertTrue(text.contains("The last checkpoint is " + ckpt), text);
        assertFalse(Files.exists(metrics), "no metrics for an unfinished run");
        assertFalse(Files.exists(tmp.resolve("model.safetensors")), "no model for an unfinished run");
        assertTrue(Checkpoint.load(ckpt).completedEpochs() >= 1);
        assertFalse(tempFileIn(tmp), "no temporary file left");
    }

    /**
     * A build started in the background of a non-interactive shell inherits SIGINT ignored, and the JVM then (rightly)
     * leaves an ignored SIGINT alone, so the child would never see the interrupt this test sends. GNU env restores the
     * default disposition before it starts the child; where env cannot, the child inherits ours.
     */
    private static List<String> defaultSigint() throws IOException, InterruptedException {
        List<String> envDefault = List.of("/usr/bin/env", "--default-signal=INT");
        List<String> probe = new ArrayList<>(envDefault);
        probe.add("true");
        try {
            Process p = new ProcessBuilder(probe).redirectErrorStream(true).start();
            p.getInputStream().readAllBytes();
            return p.waitFor() == 0 ? envDefault : List.of();
        } catch (IOException e) {
            return List.of();
        }
    }
}
