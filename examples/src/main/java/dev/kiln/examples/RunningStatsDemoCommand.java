package dev.kiln.examples;

import dev.kiln.core.Device;
import dev.kiln.core.Generator;
import dev.kiln.core.GradMode;
import dev.kiln.core.Tensor;
import dev.kiln.core.TensorScope;
import dev.kiln.nn.BatchNorm1d;
import dev.kiln.nn.Linear;
import dev.kiln.nn.MSELoss;
import dev.kiln.nn.Sequential;
import dev.kiln.optim.SGD;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.util.Arrays;
import java.util.Locale;
import java.util.concurrent.Callable;

/** The seed's SimpleModel demonstration of running statistics. */
@Command(name = "running-stats-demo", mixinStandardHelpOptions = true,
        description = {"SimpleModel = Linear(3, 2) + BatchNorm1d(2), MSE loss, SGD lr 0.1, batch 4, 3 epochs on 20",
                "random samples: prints running_mean/running_var after each epoch, then shows that eval leaves them unchanged."})
final class RunningStatsDemoCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Option(names = "--seed", defaultValue = "0", description = "Random seed (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--device", defaultValue = "auto", description = "auto, cpu or cuda (default: ${DEFAULT-VALUE}).")
    String device;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        Device dev = Device.of(device);
        Generator gen = new Generator(seed);
        int samples = 20;
        float[] xs = new float[samples * 3];
        float[] ys = new float[samples * 2];
        gen.fillNormal(xs, 0f, 1f);
        gen.fillNormal(ys, 0f, 1f);
        BatchNorm1d bn = new BatchNorm1d(dev, 2);
        try (Sequential model = new Sequential(new Linear(dev, gen, 3, 2), bn);
             SGD sgd = new SGD(model.parameters(), 0.1f)) {
            MSELoss mse = new MSELoss();
            out.println(model);
            print(out, "initial", bn);
            for (int epoch = 1; epoch <= 3; epoch++) {
                double lossSum = 0;
                int batches = 0;
                for (int start = 0; start < samples; start += 4) {
                    try (TensorScope step = TensorScope.open()) {
                        Tensor x = Tensor.of(dev, Arrays.copyOfRange(xs, start * 3, start * 3 + 12), 4, 3);
                        Tensor y = Tensor.of(dev, Arrays.copyOfRange(ys, start * 2, start * 2 + 8), 4, 2);
                        sgd.zeroGrad();
                        Tensor loss = mse.forward(model.forward(x), y);
                        loss.backward();
                        sgd.step();
                        lossSum += loss.item();
                        batches++;
                    }
                }
                print(out, String.format(Locale.ROOT, "epoch %d (mean loss %.4f)", epoch, lossSum / batches), bn);
            }
            float[] mean = bn.runningMean().toArray();
            float[] var = bn.runningVar().toArray();
            model.eval();
            try (GradMode ignored = GradMode.noGrad(); TensorScope scope = TensorScope.open()) {
                model.forward(Tensor.of(dev, xs, samples, 3));
            }
            print(out, "after an eval pass over all 20 samples", bn);
            boolean unchanged = Arrays.equals(mean, bn.runningMean().toArray()) && Arrays.equals(var, bn.runningVar().toArray());
            out.println(unchanged ? "eval mode left the running statistics unchanged"
                    : "ERROR: eval mode changed the running statistics");
            out.flush();
            return unchanged ? 0 : 1;
        }
    }

    private static void print(PrintWriter out, String label, BatchNorm1d bn) {
        out.printf(Locale.ROOT, "%-40s running_mean %s  running_var %s  num_batches_tracked %d%n", label,
                fmt(bn.runningMean().toArray()), fmt(bn.runningVar().toArray()), bn.numBatchesTracked());
    }

    private static String fmt(float[] v) {
        StringBuilder sb = new StringBuilder("[");
        for (int i = 0; i < v.length; i++) {
            sb.append(i > 0 ? ", " : "").append(String.format(Locale.ROOT, "%.4f", v[i]));
        }
        return sb.append(']').toString();
    }
}
