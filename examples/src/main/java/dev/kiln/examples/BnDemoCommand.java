package dev.kiln.examples;

import dev.kiln.core.Device;
import dev.kiln.core.Generator;
import dev.kiln.core.Tensor;
import dev.kiln.core.TensorScope;
import dev.kiln.nn.BatchNorm1d;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;

/**
 * "BN from scratch" as the blog post "Batch Normalization" (2024-10-15) writes it: {@code x = (torch.randn((20, 2)) + 5) * 2}, batch statistics
 * by hand, {@code y = gamma * x_hat + beta}, then {@code BatchNorm1d(2)} with the same gamma and beta, and
 * {@code torch.allclose(output, y, rtol=1e-4)}. With PyTorch's random stream the points are the ones
 * {@code torch.manual_seed(seed)} gives.
 */
@Command(name = "bn-demo", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Batch norm by hand vs BatchNorm1d(2) on 20 random 2-d points, as in the post \"Batch Normalization\" (2024-10-15).",
                "x = (randn(20, 2) + 5) * 2 (mean 10, std 2); mean and biased variance per feature; y = gamma * (x - mean) "
                + "/ sqrt(var + eps) + beta; BatchNorm1d(2) on x; allclose(output, y, rtol=1e-4). The points come from "
                + "PyTorch's random stream: --seed S gives those of torch.manual_seed(S). A plot is written only with "
                + "--plot: original (blue) and normalised (red) points on one scatter, with dashed zero lines."})
final class BnDemoCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Option(names = "--seed", defaultValue = "0", description = "torch.manual_seed for the points (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--plot", paramLabel = "FILE.png", description = "Write the scatter plot here (default: no plot).")
    Path plot;

    @Option(names = "--device", defaultValue = "auto", description = "auto, cpu or cuda (default: ${DEFAULT-VALUE}).")
    String device;

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut();
        Device dev = Device.of(device);
        int n = 20;
        float eps = 1e-5f;
        float[] gamma = {1f, 1f};
        float[] beta = {0f, 0f};
        // x = (torch.randn((20, 2)) + 5) * 2, in float32 as PyTorch computes it
        float[] x = new float[2 * n];
        Generator.pytorch(seed).fillNormal(x, 0f, 1f);
        for (int i = 0; i < x.length; i++) {
            x[i] = (x[i] + 5f) * 2f;
        }
        float[] y = new float[2 * n];
        float[] mean = new float[2];
        float[] variance = new float[2];
        for (int c = 0; c < 2; c++) {
            double m = 0;
            for (int i = 0; i < n; i++) {
                m += x[2 * i + c];
            }
            m /= n;
            double v = 0;
            for (int i = 0; i < n; i++) {
                double d = x[2 * i + c] - m;
                v += d * d;
            }
            v /= n; // x.var(dim=0, unbiased=False)
            mean[c] = (float) m;
            variance[c] = (float) v;
            for (int i = 0; i < n; i++) {
                y[2 * i + c] = gamma[c] * ((x[2 * i + c] - mean[c]) / (float) Math.sqrt(variance[c] + eps)) + beta[c];
            }
        }
        float[] output;
        try (TensorScope scope = TensorScope.open(); BatchNorm1d bn = new BatchNorm1d(dev, 2, eps, 0.1f, true, true)) {
            bn.weight().copyFrom(gamma);
            bn.bias().copyFrom(beta);
            output = bn.forward(Tensor.of(dev, x, n, 2)).toArray();
        }
        // torch.allclose(output, y, rtol=1e-4): |output - y| <= atol + rtol * |y| with atol 1e-8
        boolean allclose = true;
        double maxDiff = 0;
        for (int i = 0; i < y.length; i++) {
            double d = Math.abs(output[i] - y[i]);
            maxDiff = Math.max(maxDiff, d);
            allclose &= d <= 1e-8 + 1e-4 * Math.abs(y[i]);
        }
        out.printf(Locale.ROOT, "x = (randn(20, 2) + 5) * 2 with torch.manual_seed(%d)%n", seed);
        out.printf(Locale.ROOT, "mean      feature 1 %8.4f   feature 2 %8.4f%n", mean[0], mean[1]);
        out.printf(Locale.ROOT, "variance  feature 1 %8.4f   feature 2 %8.4f   (biased, as x.var(dim=0, unbiased=False))%n",
                variance[0], variance[1]);
        out.println(" point |  x[:, 0]   x[:, 1] |  y[:, 0]   y[:, 1] | BatchNorm1d[:, 0]  [:, 1]");
        for (int i = 0; i < n; i++) {
            out.printf(Locale.ROOT, "%6d | %8.4f  %8.4f | %8.4f  %8.4f | %8.4f  %8.4f%n", i, x[2 * i], x[2 * i + 1],
                    y[2 * i], y[2 * i + 1], output[2 * i], output[2 * i + 1]);
        }
        out.printf(Locale.ROOT, "torch.allclose(output, y, rtol=1e-4): %s (max |output - y| %.2e)%n",
                allclose ? "True" : "False", maxDiff);
        if (plot != null) {
            Charts.batchNormScatter(plot, x, y, n);
            out.println("scatter plot written to " + plot.toAbsolutePath());
        }
        out.flush();
        return allclose ? 0 : 1;
    }
}
