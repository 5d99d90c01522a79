package dev.kiln.examples;

import picocli.CommandLine;

import java.io.PrintWriter;
import java.io.StringWriter;

/** Runs the command line in-process, capturing its output and error text. */
final class CliRunner {

    private CliRunner() {
    }

    static int run(StringWriter outAndErr, String... args) {
        return KilnCli.run(new PrintWriter(outAndErr, true), args);
    }
}
