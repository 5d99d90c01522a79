package dev.kiln.examples;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** {@code kiln bench lenet} and {@code kiln bench ops}: benchmarks (not tests) printing tables. */
@Command(name = "bench", mixinStandardHelpOptions = true,
        description = "Benchmarks: 'lenet' and 'resnet' (training and inference images/s), 'ops' (per-op time and %% of peak), 'bn' (batch norm vs copy bandwidth), 'predictor' (scoring images/s from 1, 2 and 8 threads), 'memory' (peak memory of one training or eval pass).",
        subcommands = {BenchLeNetCommand.class, BenchResNetCommand.class, BenchOpsCommand.class, BenchBnCommand.class,
                BenchPredictorCommand.class, BenchMemoryCommand.class,
                CommandLine.HelpCommand.class})
final class BenchCommand implements Runnable {

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "missing benchmark (try 'kiln bench lenet')");
    }
}
