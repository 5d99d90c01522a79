package dev.kiln.examples;

import dev.kiln.core.Device;
import dev.kiln.core.Generator;
import dev.kiln.core.Tensor;
import dev.kiln.data.DataLoader;
import dev.kiln.data.ImageDataset;
import dev.kiln.data.ImageSplit;
import dev.kiln.data.Normalization;
import dev.kiln.inference.Predictor;
import dev.kiln.models.Architecture;
import dev.kiln.models.ResNet;
import dev.kiln.nn.CrossEntropyLoss;
import dev.kiln.optim.ParamGroup;
import dev.kiln.optim.SGD;
import dev.kiln.train.EpochMetrics;
import dev.kiln.train.LearningRateSchedule;
import dev.kiln.train.ModelFiles;
import dev.kiln.train.Trainer;
import dev.kiln.train.TrainingCancelledException;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * Trains the small {@link ResNet} (15 batch norms, residual blocks) on MNIST, then serves the saved model with a
 * {@link Predictor} (every batch norm folded) and checks that it scores the test set as the trainer did.
 */
@Command(name = "resnet", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Train a small ResNet (3x3 stem, three stages of two residual blocks at 16/32/64 channels, "
                + "15 batch norms, 175k parameters) on MNIST; report test accuracy after every epoch; save the model "
                + "and serve it with a Predictor.",
                "SGD with momentum and weight decay on convolution and linear weights only (batch-norm parameters and "
                + "biases in a parameter group without it), cosine schedule. Data as for 'kiln lenet' (--data, "
                + "$KILN_MNIST_DIR, the cache, a download)."})
final class ResNetCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Mixin
    TrainingOptions.MnistData mnistData;

    @Option(names = "--epochs", defaultValue = "1", description = "Epochs to train (default: ${DEFAULT-VALUE}).")
    int epochs;

    @Option(names = "--batch-size", defaultValue = "128", description = "Training batch size (default: ${DEFAULT-VALUE}).")
    int batchSize;

    @Option(names = "--eval-batch-size", defaultValue = "250", description = "Batch size of the test pass (default: ${DEFAULT-VALUE}).")
    int evalBatchSize;

    @Mixin
    TrainingOptions.LearningRate learningRate;

    @Option(names = "--weight-decay", defaultValue = "5e-4", description = "Weight decay of convolution and linear weights (default: ${DEFAULT-VALUE}).")
    float weightDecay;

    @Option(names = "--label-smoothing", defaultValue = "0", description = "Cross-entropy label smoothing (default: ${DEFAULT-VALUE}).")
    float labelSmoothing;

    @Option(names = "--schedule", defaultValue = "cosine", description = "constant or cosine (default: ${DEFAULT-VALUE}).")
    String scheduleName;

    @Mixin
    TrainingOptions.DeviceAndSeed deviceAndSeed;

    @Mixin
    TrainingOptions.LimitTrain limitTrain;

    @Option(names = "--save", paramLabel = "FILE", defaultValue = "resnet.safetensors",
            description = "Where the trained model (safetensors) and FILE.json provenance go (default: ${DEFAULT-VALUE}).")
    Path save;

    @Mixin
    TrainingOptions.Reports reports;

    @Option(names = "--report-every", defaultValue = "20", paramLabel = "N",
            description = "Read the loss back every N batches (default: ${DEFAULT-VALUE}).")
    int reportEvery;

    @Mixin
    TrainingOptions.Progress progress;

    @Override
    public Integer call() throws Exception {
        validate();
        PrintWriter out = spec.commandLine().getOut();
        Device dev = Device.of(deviceAndSeed.device);
        long seed = deviceAndSeed.seed;
        out.println("device: " + dev.backend().description());
        long loadStart = System.nanoTime();
        ImageDataset mnist = mnistData.load();
        ImageSplit train = limitTrain.apply(mnist.train());
        out.printf(Locale.ROOT, "data: %s (%d train, %d test images; loaded in %.1f s)%n", mnist.source(),
                train.size(), mnist.test().size(), (System.nanoTime() - loadStart) / 1e9);
        try (DataLoader trainLoader = DataLoader.builder(train).batchSize(batchSize).shuffle(true).seed(seed)
                .normalization(Normalization.MNIST).build();
             DataLoader testLoader = DataLoader.builder(mnist.test()).batchSize(evalBatchSize).shuffle(false)
                     .normalization(Normalization.MNIST).build();
             ResNet model = new ResNet(dev, new Generator(seed));
             SGD sgd = optimizer(model)) {
            out.printf(Locale.ROOT, "model: ResNet, %,d parameters; SGD lr %s momentum %s, weight decay %s on %d weight"
                    + " tensors, none on the other %d%n", model.parameterCount(), learningRate.lr, learningRate.momentum,
                    weightDecay, sgd.group(0).params().size(), sgd.group(1).params().size());
            Trainer.Builder tb = Trainer.builder().model(model).loss(new CrossEntropyLoss(labelSmoothing)).optimizer(sgd)
                    .device(dev).epochs(epochs).seed(seed).schedule(LearningRateSchedule.named(scheduleName))
                    .reportEvery(reportEvery);
            progress.addListener(tb);
            Trainer trainer = tb.build();
            List<EpochMetrics> history;
            try (Interrupts interrupts = Interrupts.stopOnSigint(trainer.cancellation()::cancel, spec.commandLine().getErr())) {
                history = trainer.fit(trainLoader, testLoader);
            } catch (TrainingCancelledException e) {
                spec.commandLine().getErr().println("kiln resnet: interrupted between two batches of epoch "
                        + (e.completedEpochs() + 1) + "; nothing was written.");
                spec.commandLine().getErr().flush();
                return Interrupts.EXIT_CODE;
            }
            EpochMetrics last = history.get(history.size() - 1);
            double trainSeconds = 0;
            long images = 0;
            for (EpochMetrics m : history) {
                trainSeconds += m.trainSeconds();
                images += m.trainImages();
            }
            out.printf(Locale.ROOT, "test accuracy %.2f%% after %d epoch(s); training %.1f s, %,.0f images/s on %s%n",
                    100 * last.testAccuracy(), history.size(), trainSeconds, images / trainSeconds, dev.name());

            Map<String, Object> hyper = new LinkedHashMap<>();
            hyper.put("epochs", epochs);
            hyper.put("batch_size", batchSize);
            hyper.put("optimizer", "sgd");
            hyper.put("lr", learningRate.lr);
            hyper.put("momentum", learningRate.momentum);
            hyper.put("weight_decay", weightDecay);
            hyper.put("weight_decay_excludes", "batch-norm parameters and biases");
            hyper.put("label_smoothing", labelSmoothing);
            hyper.put("schedule", scheduleName);
            hyper.put("train_images", train.size());
            Map<String, Object> provenance = new LinkedHashMap<>();
            provenance.put("hyperparameters", hyper);
            provenance.put("data", Map.of("source", mnist.source(), "md5", mnist.md5()));
            provenance.put("seed", seed);
            provenance.put("device", dev.backend().description());
            provenance.put("metrics", Map.of("test_accuracy", last.testAccuracy(), "test_loss", last.testLoss(),
                    "train_loss", last.trainLoss()));
            ModelFiles.save(save, model, Architecture.RESNET, Normalization.MNIST, provenance);
            out.println("model written to " + save + " (provenance in " + ModelFiles.sidecar(save) + ")");

            // Serve what was saved, as an application would: from the file alone.
            long serveStart = System.nanoTime();
            int correct;
            int folded;
            ImageSplit test = mnist.test();
            try (Predictor predictor = Predictor.load(save, Predictor.Options.defaults().device(dev))) {
                folded = predictor.foldedBatchNorms();
                correct = 0;
                int pixels = test.rows() * test.cols();
                for (int start = 0; start < test.size(); start += evalBatchSize) {
                    int n = Math.min(evalBatchSize, test.size() - start);
                    byte[][] batch = new byte[n][];
                    for (int i = 0; i < n; i++) {
                        batch[i] = Arrays.copyOfRange(test.images(), (start + i) * pixels, (start + i + 1) * pixels);
                    }
                    int[] classes = predictor.classes(batch);
                    for (int i = 0; i < n; i++) {
                        correct += classes[i] == (test.labels()[start + i] & 0xFF) ? 1 : 0;
                    }
                }
            }
            double servedAccuracy = correct / (double) test.size();
            out.printf(Locale.ROOT, "served %s with a Predictor (%d of 15 batch norms folded): test accuracy %.2f%%"
                    + " in %.1f s%n", save, folded, 100 * servedAccuracy, (System.nanoTime() - serveStart) / 1e9);

            if (reports.metricsJson != null) {
                Map<String, Object> metrics = new LinkedHashMap<>();
                metrics.put("test_accuracy", last.testAccuracy());
                metrics.put("test_loss", last.testLoss());
                metrics.put("train_loss", last.trainLoss());
                metrics.put("served_test_accuracy", servedAccuracy);
                metrics.put("folded_batch_norms", folded);
                metrics.put("epochs", history.size());
                metrics.put("train_seconds", trainSeconds);
                metrics.put("train_images_per_second", images / trainSeconds);
                metrics.put("device", dev.name());
                metrics.put("history", LeNetCommand.historyJson(history));
                JsonFiles.write(reports.metricsJson, metrics);
                out.println("metrics written to " + reports.metricsJson);
            }
            if (reports.plot != null) {
                Charts.trainingCurves(reports.plot, history);
                out.println("plot written to " + reports.plot);
            }
            out.flush();
            return 0;
        }
    }

    /** Weight decay on convolution and linear weights; none on batch-norm parameters and biases (1-d tensors). */
    private SGD optimizer(ResNet model) {
        List<Tensor> decay = new ArrayList<>();
        List<Tensor> noDecay = new ArrayList<>();
        for (Tensor p : model.parameters()) {
            (p.dim() > 1 ? decay : noDecay).add(p);
        }
        return SGD.builder().lr(learningRate.lr).momentum(learningRate.momentum).weightDecay(weightDecay)
                .group(ParamGroup.of(decay)).group(ParamGroup.of(noDecay).weightDecay(0f)).build();
    }

    /** Checks every option before anything is loaded or trained; throws picocli's usage error (exit code 2). */
    void validate() {
        CommandLine cl = spec.commandLine();
        if (epochs < 1 || epochs > 100_000) {
            throw new CommandLine.ParameterException(cl, "--epochs must be in [1, 100000], got " + epochs);
        }
        if (batchSize < 2 || batchSize > 1 << 16) {
            throw new CommandLine.ParameterException(cl, "--batch-size must be in [2, 65536] (batch norm needs 2 samples), got " + batchSize);
        }
        if (evalBatchSize < 1 || evalBatchSize > 1 << 16) {
            throw new CommandLine.ParameterException(cl, "--eval-batch-size must be in [1, 65536], got " + evalBatchSize);
        }
        learningRate.checkLr(cl);
        float momentum = learningRate.momentum;
        if (!(momentum >= 0 && momentum < 1)) {
            throw new CommandLine.ParameterException(cl, "--momentum must be in [0, 1), got " + momentum);
        }
        if (!(weightDecay >= 0) || !Float.isFinite(weightDecay)) {
            throw new CommandLine.ParameterException(cl, "--weight-decay must be finite and >= 0, got " + weightDecay);
        }
        if (!(labelSmoothing >= 0 && labelSmoothing <= 1)) {
            throw new CommandLine.ParameterException(cl, "--label-smoothing must be in [0, 1], got " + labelSmoothing);
        }
        if (reportEvery < 1) {
            throw new CommandLine.ParameterException(cl, "--report-every must be >= 1, got " + reportEvery);
        }
        deviceAndSeed.checkDevice(cl);
        mnistData.check(cl);
        limitTrain.check(cl);
        if (!List.of("constant", "cosine").contains(scheduleName)) {
            throw new CommandLine.ParameterException(cl, "--schedule must be constant or cosine, got " + scheduleName);
        }
        progress.check(cl);
        OutputPaths outputs = new OutputPaths();
        Map<String, Path> targets = new LinkedHashMap<>();
        targets.put("--save", save);
        targets.put("--save (provenance)", ModelFiles.sidecar(save));
        targets.put("--metrics-json", reports.metricsJson);
        targets.put("--plot", reports.plot);
        for (Map.Entry<String, Path> t : targets.entrySet()) {
            if (t.getValue() != null) {
                outputs.problem(t.getKey(), t.getValue()).ifPresent(problem -> {
                    throw new CommandLine.ParameterException(cl, problem);
                });
            }
        }
    }
}
