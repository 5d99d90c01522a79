package dev.kiln.examples;

import dev.kiln.core.Device;
import dev.kiln.core.Generator;
import dev.kiln.nn.Linear;
import dev.kiln.onnx.Onnx;
import dev.kiln.onnx.OnnxExporter;
import dev.kiln.onnx.OnnxModule;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** {@code ./kiln finetune-onnx}: PyTorch's export of the batch-norm post's LeNetModel, trained further and written again. */
class FineTuneOnnxCommandTest {

    /** The onnx module's committed export of LeNetModel (tools/pytorch_onnx_goldens.py). */
    static final Path PYTORCH_LENET = Path.of("../onnx/src/test/resources/onnx/lenet.onnx");

    @Test
    void pytorchsLeNetExportFineTunesOnPartOfMnistAndIsWrittenAgain(@TempDir Path tmp) throws Exception {
        Optional<Path> mnist = MnistFiles.find();
        assumeTrue(mnist.isPresent(), MnistFiles.SKIP);
        assertTrue(Files.isRegularFile(PYTORCH_LENET), PYTORCH_LENET.toAbsolutePath().toString());
        Path out = tmp.resolve("tuned/lenet.onnx");
        StringWriter text = new StringWriter();
        assertEquals(0, CliRunner.run(text, "finetune-onnx", PYTORCH_LENET.toString(), out.toString(),
                "--data", mnist.get().toString(), "--device", "cpu", "--limit-train", "12000"), text.toString());
        Matcher epoch = Pattern.compile("epoch 1: train loss [0-9.]+, test accuracy ([0-9.]+)%").matcher(text.toString());
        assertTrue(epoch.find(), text.toString());
        assertTrue(Double.parseDouble(epoch.group(1)) > 90, text.toString());
        assertTrue(text.toString().contains("(12000 training images)"), text.toString());
        assertTrue(text.toString().contains("test accuracy as imported: "), text.toString());
        try (OnnxModule reloaded = Onnx.load(out, Device.cpu())) {
            assertTrue(reloaded.namedModules().containsKey("bn3"), reloaded.namedModules().keySet().toString());
        }
    }

    @Test
    void badInputsAreUsageErrorsOrFormatErrorsNamingTheFile(@TempDir Path tmp) throws Exception {
        StringWriter text = new StringWriter();
        assertEquals(2, CliRunner.run(text, "finetune-onnx", tmp.resolve("missing.onnx").toString(),
                tmp.resolve("x.onnx").toString()));
        assertTrue(text.toString().contains("missing.onnx: no such file"), text.toString());

        Path garbage = tmp.resolve("garbage.onnx");
        Files.write(garbage, new byte[]{(byte) 0xff, 1, 2, 3});
        text = new StringWriter();
        assertEquals(1, CliRunner.run(text, "finetune-onnx", garbage.toString(), tmp.resolve("x.onnx").toString(),
                "--device", "cpu"));
        assertTrue(text.toString().contains("error: " + garbage + ": not an ONNX model"), text.toString());

        Path vectors = tmp.resolve("vectors.onnx");
        try (Linear linear = new Linear(Device.cpu(), new Generator(1), 4, 3)) {
            OnnxExporter.of(linear, 4).write(vectors);
        }
        text = new StringWriter();
        assertEquals(1, CliRunner.run(text, "finetune-onnx", vectors.toString(), tmp.resolve("x.onnx").toString(),
                "--device", "cpu"));
        assertTrue(text.toString().contains("takes samples of shape (4,); finetune-onnx trains on MNIST's (1, 28, 28)"),
                text.toString());

        text = new StringWriter();
        assertEquals(2, CliRunner.run(text, "finetune-onnx", vectors.toString(), tmp.resolve("x.onnx").toString(),
                "--lr", "0"));
        assertTrue(text.toString().contains("--lr > 0"), text.toString());
    }
}
