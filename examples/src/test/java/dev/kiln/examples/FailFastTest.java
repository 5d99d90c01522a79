package dev.kiln.examples;

import dev.kiln.train.Checkpoint;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Mistakes on the command line are caught before any training, with exit code 2 and a message naming the cause. */
class FailFastTest {

    @TempDir
    static Path shared;
    static Path data;

    @BeforeAll
    static void data() throws Exception {
        data = SyntheticMnist.write(shared.resolve("mnist"), 256, 64);
    }

    private static String[] lenet(String... extra) {
        List<String> args = new ArrayList<>(List.of("lenet", "--data", data.toString(), "--device", "cpu",
                "--progress", "none"));
        args.addAll(List.of(extra));
        if (!args.contains("--epochs")) {
            args.addAll(List.of("--epochs", "1"));
        }
        if (!args.contains("--batch-size")) {
            args.addAll(List.of("--batch-size", "64"));
        }
        return args.toArray(new String[0]);
    }

    /** Exit 2, the error and where the options are: not the whole usage, which would bury the error. */
    private static String expectUsageError(String... args) {
        StringWriter out = new StringWriter();
        assertEquals(2, CliRunner.run(out, args), out.toString());
        List<String> lines = out.toString().lines().toList();
        assertEquals("Try 'kiln " + args[0] + " --help' for the options.", lines.get(lines.size() - 1), out.toString());
        assertFalse(out.toString().contains("Usage:"), out.toString());
        return out.toString();
    }

    @Test
    @DisplayName("--plot needs a .png file name: a PNG is never written under another extension")
    void plotMustBeAPng(@TempDir Path tmp) {
        Path txt = tmp.resolve("curves.txt");
        String out = expectUsageError(lenet("--plot", txt.toString()));
        assertTrue(out.contains("--plot " + txt + ": the plot is a PNG image; give a file name ending in .png"), out);
        assertFalse(Files.exists(txt));
        // a root names no file at all: the same usage error, not a NullPointerException
        out = expectUsageError(lenet("--plot", "/"));
        assertTrue(out.contains("--plot /: the plot is a PNG image"), out);
    }

    @Test
    @DisplayName("out-of-range and unknown option values exit 2 naming the option and the value")
    void rangeChecks() {
        assertTrue(expectUsageError(lenet("--momentum", "5")).contains("--momentum must be in [0, 1), got 5.0"));
        assertTrue(expectUsageError(lenet("--momentum", "1")).contains("--momentum must be in [0, 1)"));
        assertTrue(expectUsageError(lenet("--lr", "NaN")).contains("--lr must be > 0"));
        assertTrue(expectUsageError(lenet("--lr", "-0.1")).contains("--lr must be > 0"));
        assertTrue(expectUsageError("lenet", "--device", "foo").contains("--device must be auto, cpu, cuda or cuda:N, got foo"));
        assertTrue(expectUsageError(lenet("--batch-size", "99999999")).contains("--batch-size must be at most"));
        assertTrue(expectUsageError(lenet("--epochs", "x")).contains("--epochs"));
    }

    @Test
    @DisplayName("a --data directory that does not exist is named as such")
    void missingDataDirectory(@TempDir Path tmp) {
        Path absent = tmp.resolve("no-such-dir");
        String out = expectUsageError("lenet", "--data", absent.toString());
        assertTrue(out.contains("--data " + absent + ": no such directory"), out);
        String resume = expectUsageError(lenet("--resume", tmp.resolve("nope.safetensors").toString()));
        assertTrue(resume.contains("nope.safetensors: no such file"), resume);
    }

    @Test
    @DisplayName("output paths that cannot be written are refused before training, naming the path and the reason")
    void unwritableOutputs(@TempDir Path tmp) throws Exception {
        Path file = Files.writeString(tmp.resolve("plain.txt"), "x");
        String out = expectUsageError(lenet("--save", file.resolve("model.safetensors").toString()));
        assertTrue(out.contains("--save " + file.resolve("model.safetensors")) && out.contains("is a file, not a directory"), out);
        out = expectUsageError(lenet("--metrics-json", tmp.toString()));
        assertTrue(out.contains("--metrics-json " + tmp + ": is a directory"), out);
        Path same = tmp.resolve("same.safetensors");
        out = expectUsageError(lenet("--checkpoint", same.toString(), "--save", same.toString()));
        assertTrue(out.contains("the same file as --checkpoint"), out);
        out = expectUsageError(lenet("--plot", "/proc/kiln-plot.png"));
        assertTrue(out.contains("--plot /proc/kiln-plot.png: cannot write in /proc"), out);
        assertFalse(out.contains("images/s on cpu"), "nothing was trained: " + out);
    }

    @Test
    @DisplayName("resuming with different settings lists the differences (exit 2) unless --force; a finished run says so")
    void resumeChecks(@TempDir Path tmp) throws Exception {
        Path ckpt = tmp.resolve("run.safetensors");
        StringWriter out = new StringWriter();
        assertEquals(0, CliRunner.run(out, lenet("--checkpoint", ckpt.toString())), out.toString());
        Checkpoint cp = Checkpoint.load(ckpt);
        assertEquals("64", cp.settings().get("batch_size"));
        assertEquals("0.1", cp.settings().get("lr"));
        assertEquals("256", cp.settings().get("train_images"));
        assertTrue(cp.settings().get("data_md5").contains("train-images-idx3-ubyte.gz="), cp.settings().toString());

        String refused = expectUsageError(lenet("--epochs", "2", "--resume", ckpt.toString(), "--batch-size", "32",
                "--lr", "0.05", "--limit-train", "128"));
        assertTrue(refused.contains("batch_size: checkpoint 64, now 32"), refused);
        assertTrue(refused.contains("lr: checkpoint 0.1, now 0.05"), refused);
        assertTrue(refused.contains("train_images: checkpoint 256, now 128"), refused);
        assertTrue(refused.contains("--force"), refused);
        assertEquals(1, Checkpoint.load(ckpt).completedEpochs(), "a refused resume leaves the checkpoint alone");

        out = new StringWriter();
        assertEquals(0, CliRunner.run(out, lenet("--epochs", "2", "--resume", ckpt.toString(), "--lr", "0.05",
                "--force")), out.toString());
        assertEquals(2, Checkpoint.load(ckpt).completedEpochs());

        out = new StringWriter();
        assertEquals(0, CliRunner.run(out, lenet("--epochs", "2", "--resume", ckpt.toString())), out.toString());
        assertTrue(out.toString().contains("holds a finished run: 2 epoch(s) completed, --epochs is 2; nothing to train"),
                out.toString());
    }
}
