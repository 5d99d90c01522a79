package dev.kiln.examples;

import dev.kiln.data.ImageSplit;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;
import picocli.CommandLine.Model.OptionSpec;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** The option mixins {@code lenet}, {@code resnet} and {@code finetune-onnx} share. */
class TrainingOptionsTest {

    private static List<String> optionNames(String command) {
        return KilnCli.commandLine().getSubcommands().get(command).getCommandSpec().options().stream()
                .map(OptionSpec::longestName).toList();
    }

    @Test
    @DisplayName("each command lists the shared options where it declares their mixin, among its own (the --help order)")
    void optionsKeepTheirPlaceInTheHelp() {
        assertEquals(List.of("--data", "--epochs", "--batch-size", "--lr", "--momentum", "--optimizer", "--schedule",
                "--device", "--seed", "--random-stream", "--limit-train", "--save", "--checkpoint", "--resume",
                "--metrics-json", "--plot", "--graphs", "--report-every", "--force", "--progress", "--help",
                "--version"), optionNames("lenet"));
        assertEquals(List.of("--data", "--epochs", "--batch-size", "--eval-batch-size", "--lr", "--momentum",
                "--weight-decay", "--label-smoothing", "--schedule", "--device", "--seed", "--limit-train", "--save",
                "--metrics-json", "--plot", "--report-every", "--progress", "--help", "--version"), optionNames("resnet"));
        assertEquals(List.of("--epochs", "--lr", "--momentum", "--batch-size", "--seed", "--device", "--limit-train",
                "--data", "--help", "--version"), optionNames("finetune-onnx"));
    }

    @Test
    @DisplayName("--limit-train N keeps the first N images and labels; unset, or N at least the split's size, keeps the split")
    void limitTrainKeepsTheFirstImages() {
        byte[] images = new byte[5 * 2 * 3];
        for (int i = 0; i < images.length; i++) {
            images[i] = (byte) i;
        }
        ImageSplit split = new ImageSplit(5, 2, 3, images, new byte[]{9, 8, 7, 6, 5});
        TrainingOptions.LimitTrain limit = new TrainingOptions.LimitTrain();
        assertSame(split, limit.apply(split));
        limit.images = 5;
        assertSame(split, limit.apply(split));
        limit.images = 2;
        ImageSplit first = limit.apply(split);
        assertEquals(2, first.size());
        assertEquals(2, first.rows());
        assertEquals(3, first.cols());
        assertArrayEquals(new byte[]{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, first.images());
        assertArrayEquals(new byte[]{9, 8}, first.labels());
    }

    @Test
    @DisplayName("each mixin's check rejects a bad value as a usage error naming the option and the value")
    void checksAreUsageErrors() {
        CommandLine cl = KilnCli.commandLine();
        TrainingOptions.LimitTrain limit = new TrainingOptions.LimitTrain();
        limit.images = 1;
        assertEquals("--limit-train must be >= 2, got 1",
                assertThrows(CommandLine.ParameterException.class, () -> limit.check(cl)).getMessage());
        TrainingOptions.Progress progress = new TrainingOptions.Progress();
        progress.progress = "fancy";
        assertEquals("--progress must be auto, bar, log or none, got fancy",
                assertThrows(CommandLine.ParameterException.class, () -> progress.check(cl)).getMessage());
        TrainingOptions.DeviceAndSeed deviceAndSeed = new TrainingOptions.DeviceAndSeed();
        deviceAndSeed.device = "tpu";
        assertEquals("--device must be auto, cpu, cuda or cuda:N, got tpu",
                assertThrows(CommandLine.ParameterException.class, () -> deviceAndSeed.checkDevice(cl)).getMessage());
        TrainingOptions.LearningRate learningRate = new TrainingOptions.LearningRate();
        learningRate.lr = Float.NaN;
        assertEquals("--lr must be > 0 and at most 100, got NaN",
                assertThrows(CommandLine.ParameterException.class, () -> learningRate.checkLr(cl)).getMessage());
    }
}
