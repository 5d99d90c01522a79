package dev.kiln.examples;

import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Unmatched;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

/**
 * {@code kiln spark-lenet}: the Spark demo, whose code lives in the {@code examples-spark} module so that the
 * command line's jar carries no Spark dependency. The launcher builds that module the first time this command runs
 * and starts Java with Spark's class path; the demo parses its own options ({@code --help} lists them).
 */
@Command(name = "spark-lenet", sortOptions = false,
        description = {"LeNet-5 with SyncBatchNorm trained data-parallel by N Spark barrier tasks in local mode, then the "
                + "test set scored as a DataFrame (docs/spark.md: clusters).",
                "Options (see spark-lenet --help): --tasks N, --epochs N, --batch-size N, --data DIR, --plain-bn, "
                + "--average-every K, --master URL, --transport sockets|barrier, --save FILE, --model FILE."})
final class SparkLeNetCommand implements Callable<Integer> {

    /** The demo's entry point, present only on the class path the launcher gives {@code spark-lenet}. */
    static final String DEMO_CLASS = "dev.kiln.examples.spark.SparkLeNet";

    @Spec
    CommandSpec spec;

    @Unmatched
    List<String> args = new ArrayList<>();

    @Override
    public Integer call() throws Exception {
        Class<?> demo;
        try {
            demo = Class.forName(DEMO_CLASS, true, SparkLeNetCommand.class.getClassLoader());
        } catch (ClassNotFoundException e) {
            if (args.contains("--help") || args.contains("-h")) {
                spec.commandLine().usage(spec.commandLine().getOut());
                return 0;
            }
            spec.commandLine().getErr().println("kiln spark-lenet: error: Spark is not on this class path; run it "
                    + "through the launcher (./kiln spark-lenet), which builds the examples-spark module on first use "
                    + "and starts Java with Spark's local class path");
            return 1;
        }
        Method main = demo.getMethod("main", String[].class);
        try {
            main.invoke(null, (Object) args.toArray(String[]::new));
        } catch (InvocationTargetException e) {
            if (e.getCause() instanceof Exception ex) {
                throw ex;
            }
            throw e;
        }
        return 0;
    }
}
