package dev.kiln.examples;

import dev.kiln.core.Device;
import dev.kiln.core.Shapes;
import dev.kiln.data.DataLoader;
import dev.kiln.data.ImageDataset;
import dev.kiln.data.ImageSplit;
import dev.kiln.data.Normalization;
import dev.kiln.datasets.MnistLocator;
import dev.kiln.io.KilnFormatException;
import dev.kiln.nn.CrossEntropyLoss;
import dev.kiln.onnx.Onnx;
import dev.kiln.onnx.OnnxExporter;
import dev.kiln.onnx.OnnxModule;
import dev.kiln.optim.SGD;
import dev.kiln.train.EpochMetrics;
import dev.kiln.train.LoggingListener;
import dev.kiln.train.Trainer;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

/** Imports an MNIST classifier from ONNX (e.g. PyTorch's export), trains it further on MNIST and writes it as ONNX. */
@Command(name = "finetune-onnx", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Import an ONNX model of 28x28 digits (e.g. one torch.onnx.export wrote: input (batch, 1, 28, 28)"
                + " normalised as MNIST's (x / 255 - 0.1307) / 0.3081, 10 logits out), train it further on MNIST in Kiln"
                + " and write it as an ONNX model again (opset 17, batch norm as BatchNormalization nodes).",
                "The ops Kiln imports and the file limits: docs/onnx.md."})
final class FineTuneOnnxCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Parameters(index = "0", paramLabel = "IN.onnx", description = "The ONNX model to train further.")
    Path in;

    @Parameters(index = "1", paramLabel = "OUT.onnx", description = "The ONNX file to write (atomically).")
    Path out;

    @Option(names = "--epochs", defaultValue = "1", description = "Epochs of MNIST (default: ${DEFAULT-VALUE}).")
    int epochs;

    @Option(names = "--lr", defaultValue = "0.05", description = "SGD learning rate (default: ${DEFAULT-VALUE}).")
    float lr;

    @Option(names = "--momentum", defaultValue = "0.9", description = "SGD momentum (default: ${DEFAULT-VALUE}).")
    float momentum;

    @Option(names = "--batch-size", defaultValue = "64", description = "Training batch size (default: ${DEFAULT-VALUE}).")
    int batchSize;

    @Option(names = "--seed", defaultValue = "1", description = "Data order seed (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--device", defaultValue = "auto", description = "auto, cpu, cuda or cuda:N (default: ${DEFAULT-VALUE}).")
    String device;

    @Mixin
    TrainingOptions.LimitTrain limitTrain;

    @Option(names = "--data", paramLabel = "DIR", description = "MNIST directory (default: KILN_MNIST_DIR, then the cache,"
            + " then a download; as './kiln lenet').")
    Path data;

    @Override
    public Integer call() throws Exception {
        CommandLine cl = spec.commandLine();
        if (!Files.isRegularFile(in)) {
            throw new CommandLine.ParameterException(cl, "IN.onnx " + in + ": " + (Files.isDirectory(in)
                    ? "is a directory, not a model file" : "no such file"));
        }
        if (epochs < 1 || batchSize < 1 || !(lr > 0) || !(momentum >= 0 && momentum < 1)
                || limitTrain.images != null && limitTrain.images < 2) {
            throw new CommandLine.ParameterException(cl, "need --epochs >= 1, --batch-size >= 1, --lr > 0,"
                    + " 0 <= --momentum < 1 and --limit-train >= 2; got " + epochs + ", " + batchSize + ", " + lr + ", "
                    + momentum + ", " + limitTrain.images);
        }
        new OutputPaths().problem("OUT.onnx", out).ifPresent(problem -> {
            throw new CommandLine.ParameterException(cl, problem);
        });
        PrintWriter w = cl.getOut();
        Device dev = Device.of(device);
        try (OnnxModule model = Onnx.load(in, dev)) {
            int[] sample = model.sampleShape().orElseThrow(() -> new KilnFormatException(in.toString(),
                    "the graph's input declares no fixed sample shape; finetune-onnx needs (batch, 1, 28, 28)"));
            if (!Arrays.equals(sample, new int[]{1, 28, 28})) {
                throw new KilnFormatException(in.toString(), "the graph's input takes samples of shape "
                        + Shapes.toString(sample) + "; finetune-onnx trains on MNIST's (1, 28, 28)");
            }
            ImageDataset mnist = MnistLocator.fromEnvironment(data).load();
            ImageSplit trainSplit = limitTrain.apply(mnist.train());
            w.println("model: " + in + " (" + model.parameterCount() + " parameters) on " + dev.backend().description());
            w.println("data: " + mnist.source() + " (" + trainSplit.size() + " training images)");
            w.flush();
            try (SGD sgd = SGD.builder().params(model.parameters()).lr(lr).momentum(momentum).build();
                 DataLoader train = DataLoader.builder(trainSplit).batchSize(batchSize).shuffle(true).seed(seed)
                         .normalization(Normalization.MNIST).build();
                 DataLoader test = DataLoader.builder(mnist.test()).batchSize(1000).shuffle(false)
                         .normalization(Normalization.MNIST).build()) {
                Trainer trainer = Trainer.builder().model(model).loss(new CrossEntropyLoss()).optimizer(sgd).device(dev)
                        .epochs(epochs).seed(seed).listener(new LoggingListener(10)).build();
                double before = trainer.evaluate(test).accuracy();
                w.printf(Locale.ROOT, "test accuracy as imported: %.2f%%%n", 100 * before);
                w.flush();
                List<EpochMetrics> history = trainer.fit(train, test);
                for (EpochMetrics m : history) {
                    w.printf(Locale.ROOT, "epoch %d: train loss %.4f, test accuracy %.2f%% (%.1f s)%n", m.epoch() + 1,
                            m.trainLoss(), 100 * m.testAccuracy(), m.trainSeconds());
                }
            }
            model.eval();
            OnnxExporter.of(model, sample).sourceFile(in).write(out);
            w.println("wrote " + out + " (" + Files.size(out) + " bytes, ONNX opset " + OnnxExporter.OPSET + ")");
            w.flush();
        }
        return 0;
    }
}
