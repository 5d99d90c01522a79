package dev.kiln.examples;

import picocli.CommandLine.Command;

/** Benchmarks (not tests): print tables of measured throughput. */
@Command(name = "bench", mixinStandardHelpOptions = true,
        description = "Benchmarks that print tables: 'bench lenet' (images/s), 'bench ops' (per-op time vs machine peak).",
        subcommands = {BenchLeNetCommand.class, BenchOpsCommand.class})
final class BenchCommand implements Runnable {

    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        throw new picocli.CommandLine.ParameterException(spec.commandLine(), "missing benchmark: lenet or ops");
    }
}
