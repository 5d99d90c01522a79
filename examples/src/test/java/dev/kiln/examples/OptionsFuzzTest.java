package dev.kiln.examples;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import picocli.CommandLine;

import java.util.ArrayList;
import java.util.List;

/**
 * Whatever is typed, the command line either accepts it or rejects it as a usage error (picocli's
 * {@code ParameterException}: a one-line message and exit code 2); anything else thrown while parsing and checking
 * options is a finding. Arguments mix real option names with fuzzed values. Only parsing and {@code lenet}'s
 * checks run: nothing trains. Seeds and regression inputs: {@code OptionsFuzzTestInputs/parseAndValidate/}.
 */
class OptionsFuzzTest {

    private static final String[] WORDS = {"lenet", "bench", "bn-demo", "doctor", "running-stats-demo", "help",
            "--epochs", "--batch-size", "--lr", "--momentum", "--optimizer", "--schedule", "--device", "--seed",
            "--limit-train", "--save", "--checkpoint", "--resume", "--metrics-json", "--plot", "--graphs",
            "--report-every", "--progress", "--force", "--data", "--batch-sizes", "--steps", "--json", "--filter",
            "--shape", "-h", "--", "=", "0", "-1", "1e40", "NaN", "cuda:0", "cpu", "/", "/proc/self/status", "."};

    /** Built once: picocli resets every option to its initial value on each parse, and building is the slow part. */
    private static final CommandLine CLI = KilnCli.commandLine();

    @FuzzTest(maxDuration = "25s")
    void parseAndValidate(FuzzedDataProvider in) {
        List<String> args = new ArrayList<>();
        int n = in.consumeInt(0, 10);
        for (int i = 0; i < n; i++) {
            args.add(in.consumeBoolean() ? in.pickValue(WORDS) : in.consumeString(24));
        }
        try {
            CommandLine.ParseResult parsed = CLI.parseArgs(args.toArray(new String[0]));
            while (parsed.hasSubcommand()) {
                parsed = parsed.subcommand();
            }
            if (parsed.commandSpec().userObject() instanceof LeNetCommand lenet) {
                lenet.validate();
            }
        } catch (CommandLine.ParameterException expected) {
            // a usage error: exit code 2
        }
    }
}
