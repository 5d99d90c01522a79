package dev.kiln.examples;

import dev.kiln.data.ImageDataset;
import dev.kiln.data.ImageSplit;
import dev.kiln.datasets.MnistLocator;
import dev.kiln.train.LoggingListener;
import dev.kiln.train.Trainer;
import picocli.CommandLine;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

/**
 * The options {@code kiln lenet} and {@code kiln resnet} (and, for {@code --limit-train}, {@code kiln finetune-onnx})
 * declare alike, as picocli mixins, each with the check and the use that go with it. They are several small mixins
 * rather than one because a mixin's options are listed where the command declares the mixin, and the commands list
 * their own options between these.
 */
final class TrainingOptions {

    private TrainingOptions() {
    }

    /** {@code --data}: the MNIST directory, authoritative when given. */
    static final class MnistData {

        @Option(names = "--data", paramLabel = "DIR", description = "Directory with the four MNIST files (authoritative: no fallback if they are missing or bad).")
        Path data;

        void check(CommandLine cl) {
            if (data != null && !Files.isDirectory(data)) {
                throw new CommandLine.ParameterException(cl, "--data " + data + ": " + (Files.exists(data)
                        ? "is a file, not a directory" : "no such directory"));
            }
        }

        /** MNIST from --data, else from where {@link MnistLocator#fromEnvironment} looks. */
        ImageDataset load() throws IOException {
            return MnistLocator.fromEnvironment(data).load();
        }
    }

    /** {@code --lr} and {@code --momentum}. */
    static final class LearningRate {

        @Option(names = "--lr", defaultValue = "0.1", description = "Initial learning rate (default: ${DEFAULT-VALUE}).")
        float lr;

        @Option(names = "--momentum", defaultValue = "0.9", description = "SGD momentum (default: ${DEFAULT-VALUE}).")
        float momentum;

        void checkLr(CommandLine cl) {
            if (!(lr > 0) || !Float.isFinite(lr) || lr > 100) {
                throw new CommandLine.ParameterException(cl, "--lr must be > 0 and at most 100, got " + lr);
            }
        }
    }

    /** {@code --device} and {@code --seed}. */
    static final class DeviceAndSeed {

        @Option(names = "--device", defaultValue = "auto", description = "auto, cpu or cuda (default: ${DEFAULT-VALUE}).")
        String device;

        @Option(names = "--seed", defaultValue = "42", description = "Seed for initialisation and data order (default: ${DEFAULT-VALUE}).")
        long seed;

        void checkDevice(CommandLine cl) {
            if (!device.matches("auto|cpu|cuda(:[0-9]{1,3})?")) {
                throw new CommandLine.ParameterException(cl, "--device must be auto, cpu, cuda or cuda:N, got " + device);
            }
        }
    }

    /** {@code --limit-train N}: train on the first N images only. */
    static final class LimitTrain {

        @Option(names = "--limit-train", paramLabel = "N", description = "Use only the first N training images.")
        Integer images;

        void check(CommandLine cl) {
            if (images != null && images < 2) {
                throw new CommandLine.ParameterException(cl, "--limit-train must be >= 2, got " + images);
            }
        }

        /** The first --limit-train images of {@code split}, or {@code split} itself when that is all of them. */
        ImageSplit apply(ImageSplit split) {
            if (images == null || images >= split.size()) {
                return split;
            }
            int n = images;
            int pixels = split.rows() * split.cols();
            return new ImageSplit(n, split.rows(), split.cols(), Arrays.copyOf(split.images(), n * pixels),
                    Arrays.copyOf(split.labels(), n));
        }
    }

    /** {@code --metrics-json} and {@code --plot}: what a run writes besides the model. */
    static final class Reports {

        @Option(names = "--metrics-json", paramLabel = "FILE", description = "Write final metrics as JSON.")
        Path metricsJson;

        @Option(names = "--plot", paramLabel = "FILE.png", description = "Write loss and accuracy per epoch as a PNG.")
        Path plot;
    }

    /** {@code --progress}: a bar, log lines or nothing while training. */
    static final class Progress {

        @Option(names = "--progress", defaultValue = "auto", description = "auto, bar, log or none (default: ${DEFAULT-VALUE}: a bar on a terminal, log lines otherwise).")
        String progress;

        void check(CommandLine cl) {
            if (!List.of("auto", "bar", "log", "none").contains(progress)) {
                throw new CommandLine.ParameterException(cl, "--progress must be auto, bar, log or none, got " + progress);
            }
        }

        /** Adds the listener --progress asks for to {@code trainer}; returns the bar when it is one, else null. */
        ConsoleProgressBar addListener(Trainer.Builder trainer) {
            boolean terminal = System.console() != null;
            if (progress.equals("bar") || (progress.equals("auto") && terminal)) {
                ConsoleProgressBar bar = new ConsoleProgressBar(System.out);
                trainer.listener(bar);
                return bar;
            }
            if (!progress.equals("none")) {
                trainer.listener(new LoggingListener(10));
            }
            return null;
        }
    }
}
