package dev.kiln.examples;

import dev.kiln.core.Kiln;
import picocli.CommandLine;
import picocli.CommandLine.Command;

import java.io.PrintWriter;

/** The {@code ./kiln} command line. Exit codes: 0 success, 1 failure, 2 bad usage. */
@Command(name = "kiln", mixinStandardHelpOptions = true, versionProvider = KilnCli.Version.class,
        description = "Kiln: deep learning on the JVM (CUDA via JCuda/cuDNN/cuBLAS, or pure-Java CPU).",
        subcommands = {LeNetCommand.class, ResNetCommand.class, BnDemoCommand.class, RunningStatsDemoCommand.class,
                SparkLeNetCommand.class, DoctorCommand.class, ExportOnnxCommand.class, FineTuneOnnxCommand.class,
                BenchCommand.class,
                CommandLine.HelpCommand.class})
public final class KilnCli implements Runnable {

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    public static void main(String[] args) {
        System.setProperty("java.awt.headless", "true");
        System.exit(run(args));
    }

    /** Runs the command line and returns the exit code (for tests). */
    public static int run(String... args) {
        return run(null, args);
    }

    /** Runs with stdout and stderr sent to {@code outAndErr} (null: the process streams). */
    static int run(PrintWriter outAndErr, String... args) {
        CommandLine cl = commandLine();
        if (outAndErr != null) {
            cl.setOut(outAndErr);
            cl.setErr(outAndErr);
        }
        cl.setParameterExceptionHandler(KilnCli::badUsage);
        cl.setExecutionExceptionHandler((ex, cmd, parsed) -> {
            cmd.getErr().println("kiln " + cmd.getCommandName() + ": error: " + messageOf(ex));
            org.slf4j.LoggerFactory.getLogger(KilnCli.class).debug("failure", ex);
            return 1;
        });
        return cl.execute(args);
    }

    /**
     * The command line as {@link #run} configures it, before handlers and streams. {@code @file} arguments are not
     * expanded: an argument is what was typed (an {@code @/dev/zero} would otherwise never finish reading).
     */
    static CommandLine commandLine() {
        CommandLine cl = new CommandLine(new KilnCli());
        cl.setExpandAtFiles(false);
        return cl;
    }

    private static String messageOf(Throwable ex) {
        String m = ex.getMessage();
        return m == null ? ex.getClass().getSimpleName() : m;
    }

    /**
     * A command line that does not parse (an unknown option or command, a missing value or sub-command) gets the
     * error and the usage; a value that parses but is refused (out of range, an output path that cannot be written)
     * gets the one-line error and where to find the options, since the usage would bury the line that matters.
     */
    private static int badUsage(CommandLine.ParameterException ex, String[] args) {
        CommandLine cmd = ex.getCommandLine();
        PrintWriter err = cmd.getErr();
        err.println("kiln: " + ex.getMessage());
        boolean syntax = ex instanceof CommandLine.UnmatchedArgumentException
                || ex instanceof CommandLine.MissingParameterException || cmd.getParent() == null;
        if (syntax) {
            cmd.usage(err);
        } else {
            err.println("Try '" + cmd.getCommandSpec().qualifiedName() + " --help' for the options.");
        }
        return 2;
    }

    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "missing sub-command (try 'kiln lenet' or 'kiln --help')");
    }

    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            return new String[]{"kiln " + Kiln.version(), "Java " + System.getProperty("java.version")};
        }
    }
}
