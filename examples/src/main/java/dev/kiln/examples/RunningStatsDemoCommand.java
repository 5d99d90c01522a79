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
import java.util.concurrent.Callable;

/**
 * The running-statistics example of the blog post "Batch Normalization" (2024-10-15), step for step:
 * {@code torch.manual_seed(seed)},
 * {@code SimpleModel = Linear(3, 2) + BatchNorm1d(2)}, MSE loss, SGD lr 0.1; three steps, each on a fresh
 * {@code randn(4, 3)} input and {@code randn(4, 2)} target, printing the running statistics after each; then eval
 * mode and inference on {@code randn(2, 3)}. Its random numbers come from PyTorch's stream, so with the same seed it
 * prints what the post's script prints under PyTorch.
 */
@Command(name = "running-stats-demo", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"The running-statistics example of the post \"Batch Normalization\" (2024-10-15), step for step.",
                "SimpleModel = Linear(3, 2) + BatchNorm1d(2), MSE loss, SGD lr 0.1: three training steps, each on a new "
                + "randn(4, 3) input and randn(4, 2) target, printing running_mean and running_var after each; then eval "
                + "mode, inference on randn(2, 3), and the statistics again (unchanged). Random numbers come from "
                + "PyTorch's stream: --seed 0 prints what the post's script prints under PyTorch. With "
                + "--no-track-running-stats, BatchNorm1d(2, track_running_stats=False) keeps no running statistics and "
                + "normalises with the batch's own statistics in eval mode too."})
final class RunningStatsDemoCommand implements Callable<Integer> {

    private static final String RULE = "-".repeat(50);

    @Spec
    CommandSpec spec;

    @Option(names = "--seed", defaultValue = "0", description = "torch.manual_seed (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--no-track-running-stats", description = "BatchNorm1d(2, track_running_stats=False).")
    boolean noTracking;

    @Option(names = "--device", defaultValue = "auto", description = "auto, cpu or cuda (default: ${DEFAULT-VALUE}).")
    String device;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        Device dev = Device.of(device);
        Generator gen = Generator.pytorch(seed);
        BatchNorm1d bn = new BatchNorm1d(dev, 2, 1e-5f, 0.1f, true, !noTracking);
        try (Sequential model = new Sequential(new Linear(dev, gen, 3, 2), bn);
             SGD optimizer = new SGD(model.parameters(), 0.1f)) {
            MSELoss criterion = new MSELoss();
            out.println("Initial running_mean: " + str(bn.runningMean()));
            out.println("Initial running_var: " + str(bn.runningVar()));
            out.println(RULE);
            model.train();
            for (int epoch = 0; epoch < 3; epoch++) {
                try (TensorScope step = TensorScope.open()) {
                    Tensor input = Tensor.randn(dev, gen, 4, 3);
                    Tensor target = Tensor.randn(dev, gen, 4, 2);
                    Tensor output = model.forward(input);
                    Tensor loss = criterion.forward(output, target);
                    optimizer.zeroGrad();
                    loss.backward();
                    optimizer.step();
                }
                out.println("Epoch " + (epoch + 1) + ":");
                printStats(out, bn);
            }
            model.eval();
            out.println("After Training:");
            printStats(out, bn);
            float[] meanBefore = bn.runningMean() == null ? null : bn.runningMean().toArray();
            float[] varBefore = bn.runningVar() == null ? null : bn.runningVar().toArray();
            try (GradMode noGrad = GradMode.noGrad(); TensorScope scope = TensorScope.open()) {
                Tensor testInput = Tensor.randn(dev, gen, 2, 3);
                Tensor testOutput = model.forward(testInput);
                out.println("Inference output: " + testOutput);
                out.println(RULE);
            }
            out.println("After Inference (Evaluation Mode):");
            printStats(out, bn);
            boolean unchanged = meanBefore == null
                    || (Arrays.equals(meanBefore, bn.runningMean().toArray()) && Arrays.equals(varBefore, bn.runningVar().toArray()));
            if (noTracking) {
                out.println("track_running_stats=False: no running statistics were kept, and eval normalised the "
                        + "inference batch with its own mean and variance.");
            } else {
                out.println(unchanged ? "Eval mode left the running statistics unchanged."
                        : "ERROR: eval mode changed the running statistics.");
            }
            out.flush();
            return unchanged ? 0 : 1;
        }
    }

    private static void printStats(PrintWriter out, BatchNorm1d bn) {
        out.println("  running_mean: " + str(bn.runningMean()));
        out.println("  running_var: " + str(bn.runningVar()));
        out.println(RULE);
    }

    /** PyTorch's print of a buffer: the tensor, or None when the layer keeps none. */
    private static String str(Tensor t) {
        return t == null ? "None" : t.toString();
    }
}
