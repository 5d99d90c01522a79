package dev.kiln.examples;

import dev.kiln.core.Device;
import dev.kiln.core.Generator;
import dev.kiln.core.Tensor;
import dev.kiln.nn.BatchNorm1d;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;

/** The seed's "batch norm from scratch" demonstration. */
@Command(name = "bn-demo", mixinStandardHelpOptions = true,
        description = {"Batch norm by hand vs BatchNorm1d(2): 20 points drawn from N(5, 2) in 2-d are normalised",
                "both ways; prints whether they agree (rtol 1e-4) and writes a scatter plot (original vs normalised)."})
final class BnDemoCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Option(names = "--seed", defaultValue = "0", description = "Random seed (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--plot", defaultValue = "bn-demo.png", description = "Scatter plot PNG to write (default: ${DEFAULT-VALUE}).")
    Path plot;

    @Option(names = "--device", defaultValue = "auto", description = "auto, cpu or cuda (default: ${DEFAULT-VALUE}).")
    String device;

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut();
        Device dev = Device.of(device);
        int n = 20;
        float eps = 1e-5f;
        Generator gen = new Generator(seed);
        float[] points = new float[2 * n];
        gen.fillNormal(points, 5f, 2f);
        double[] manual = new double[2 * n];
        for (int c = 0; c < 2; c++) {
            double mean = 0;
            for (int i = 0; i < n; i++) {
                mean += points[2 * i + c];
            }
            mean /= n;
            double var = 0;
            for (int i = 0; i < n; i++) {
                double d = points[2 * i + c] - mean;
                var += d * d;
            }
            var /= n;
            out.printf(Locale.ROOT, "feature %d: batch mean %.4f, biased variance %.4f%n", c, mean, var);
            for (int i = 0; i < n; i++) {
                manual[2 * i + c] = 1.0 * (points[2 * i + c] - mean) / Math.sqrt(var + eps) + 0.0;
            }
        }
        float[] bnOut;
        try (BatchNorm1d bn = new BatchNorm1d(dev, 2); Tensor x = Tensor.of(dev, points, n, 2)) {
            bnOut = bn.forward(x).toArray();
        }
        double maxErr = 0;
        boolean agree = true;
        for (int i = 0; i < 2 * n; i++) {
            double err = Math.abs(bnOut[i] - manual[i]);
            maxErr = Math.max(maxErr, err);
            agree &= err <= 1e-5 + 1e-4 * Math.abs(manual[i]);
        }
        out.println("   x0       x1      | manual x0  manual x1 | BatchNorm1d x0  x1");
        for (int i = 0; i < n; i++) {
            out.printf(Locale.ROOT, "%8.4f %8.4f | %9.4f %9.4f | %9.4f %9.4f%n", points[2 * i], points[2 * i + 1],
                    manual[2 * i], manual[2 * i + 1], bnOut[2 * i], bnOut[2 * i + 1]);
        }
        out.printf(Locale.ROOT, "manual and BatchNorm1d(2) %s (max |difference| %.2e, rtol 1e-4)%n",
                agree ? "AGREE" : "DISAGREE", maxErr);
        Charts.scatterPair(plot, points, bnOut, n);
        out.println("scatter plot written to " + plot.toAbsolutePath());
        out.flush();
        return agree ? 0 : 1;
    }
}
