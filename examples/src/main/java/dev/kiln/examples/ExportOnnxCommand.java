package dev.kiln.examples;

import dev.kiln.core.Device;
import dev.kiln.core.Shapes;
import dev.kiln.data.Normalization;
import dev.kiln.io.KilnFormatException;
import dev.kiln.io.SafeTensors;
import dev.kiln.models.Architecture;
import dev.kiln.nn.Module;
import dev.kiln.onnx.OnnxExporter;
import dev.kiln.train.ModelFiles;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.Callable;

/** Writes a model file that {@code ./kiln lenet --save} (or {@code resnet --save}) wrote as an ONNX model. */
@Command(name = "export-onnx", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Write a model that './kiln lenet --save' or './kiln resnet --save' wrote (safetensors, with its"
                + " architecture in the metadata) as an ONNX model: opset 17, a dynamic batch dimension, for ONNX Runtime,"
                + " Triton, TensorRT or any other ONNX runtime.",
                "Input 'input' (batch, 1, 28, 28), output 'output' (batch, classes) logits."})
final class ExportOnnxCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Parameters(index = "0", paramLabel = "MODEL.safetensors", description = "The model file to export.")
    Path model;

    @Parameters(index = "1", paramLabel = "OUT.onnx", description = "The ONNX file to write (atomically).")
    Path out;

    @Option(names = "--fold-batch-norm", description = "Fold each batch norm into the convolution or linear layer"
            + " before it (fewer nodes; the same results to float rounding). Default: BatchNormalization nodes.")
    boolean foldBatchNorm;

    @Option(names = "--bake-normalization", description = "Put the input normalisation the model file records into"
            + " the graph as its first nodes, so the ONNX model takes raw pixel values (0 to 255) as Kiln's Predictor"
            + " does. Default: the input must already be normalised.")
    boolean bakeNormalization;

    @Override
    public Integer call() throws Exception {
        CommandLine cl = spec.commandLine();
        if (!Files.isRegularFile(model)) {
            throw new CommandLine.ParameterException(cl, "MODEL.safetensors " + model + ": " + (Files.isDirectory(model)
                    ? "is a directory, not a model file" : "no such file"));
        }
        new OutputPaths().problem("OUT.onnx", out).ifPresent(problem -> {
            throw new CommandLine.ParameterException(cl, problem);
        });
        String source = model.toString();
        SafeTensors.Content content = SafeTensors.read(model);
        Map<String, String> metadata = content.metadata();
        String archName = metadata.get(ModelFiles.ARCHITECTURE_KEY);
        if (archName == null) {
            throw new KilnFormatException(source, "the model records no architecture (" + ModelFiles.ARCHITECTURE_KEY
                    + " in the safetensors metadata); export-onnx reads files that './kiln lenet --save' or"
                    + " './kiln resnet --save' wrote");
        }
        Architecture architecture = Architecture.builtIn(archName).orElseThrow(() -> new KilnFormatException(source,
                "architecture '" + KilnFormatException.printable(archName) + "' is not one Kiln builds (LeNet5, ResNet)"));
        int[] inputShape = ModelFiles.inputShape(metadata, source).orElse(architecture.inputShape());
        Normalization normalization = Normalization.NONE;
        if (bakeNormalization) {
            normalization = ModelFiles.normalization(metadata, source).orElseThrow(() -> new KilnFormatException(source,
                    "the model records no input normalisation (" + ModelFiles.NORMALIZATION_KEY + "), so"
                    + " --bake-normalization has nothing to bake in"));
        }
        long bytes;
        try (Module m = architecture.buildForLoading(Device.cpu())) {
            try {
                m.loadStateDict(content.tensors());
            } catch (IllegalArgumentException e) {
                throw new KilnFormatException(source, "tensors do not fit " + architecture.name() + ": "
                        + e.getMessage().replace("\n", " "), e);
            }
            OnnxExporter exporter = OnnxExporter.of(m, inputShape)
                    .foldBatchNorm(foldBatchNorm)
                    .normalization(normalization)
                    .sourceFile(model);
            exporter.write(out);
            bytes = Files.size(out);
        }
        PrintWriter w = cl.getOut();
        w.println("wrote " + out + " (" + bytes + " bytes, ONNX opset " + OnnxExporter.OPSET + ") from "
                + architecture.name() + " in " + model);
        w.println("  input 'input' (batch, " + Shapes.toString(inputShape).replaceAll("^\\(|\\)$", "") + "): "
                + (normalization.isIdentity() ? "normalised values" + ModelFiles.normalization(metadata, source)
                .map(n -> " ((x * " + n.scale() + " - " + n.mean() + ") / " + n.std() + " of raw x)").orElse("")
                : "raw values, normalised in the graph as (x * " + normalization.scale() + " - " + normalization.mean()
                + ") / " + normalization.std()));
        w.println("  output 'output' (batch, classes): logits; batch norm "
                + (foldBatchNorm ? "folded into the layers before it" : "as BatchNormalization nodes"));
        w.flush();
        return 0;
    }
}
