package dev.kiln.examples;

import dev.kiln.backend.Activation;
import dev.kiln.backend.Backend;
import dev.kiln.backend.BatchNormGeometry;
import dev.kiln.backend.Buffer;
import dev.kiln.backend.ConvGeometry;
import dev.kiln.backend.PoolGeometry;
import dev.kiln.backend.SgdHyper;
import dev.kiln.core.Device;
import dev.kiln.core.Generator;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

/**
 * Per-op timings through the backend SPI at LeNet's shapes (batch 64 and 256) and at a large shape, with each op's
 * FLOPs and bytes, achieved GFLOP/s or GB/s, and the fraction of this machine's measured peak.
 */
@Command(name = "ops", mixinStandardHelpOptions = true,
        description = "Per-op time, GFLOP/s or GB/s, and % of the measured machine peak, at LeNet and large shapes.")
final class BenchOpsCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Option(names = "--device", defaultValue = "cpu", description = "cpu or cuda (default: ${DEFAULT-VALUE}).")
    String device;

    @Option(names = "--large", defaultValue = "true", negatable = true, description = "Include the large shapes (N=32, C=64, 56x56).")
    boolean large;

    private record Op(String name, String shape, double flops, double bytes, Runnable body) {
    }

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        Backend be = Device.of(device).backend();
        MachinePeak peak = device.equals("cpu")
                ? MachinePeak.measure(Runtime.getRuntime().availableProcessors()) : null;
        out.println("backend: " + be.description());
        if (peak != null) {
            out.printf(Locale.ROOT, "measured peak: %.1f GFLOP/s (float32 multiply-add, all cores), %.1f GB/s (triad)%n",
                    peak.gflops(), peak.gbPerSecond());
        }
        List<Buffer> owned = new ArrayList<>();
        List<Op> ops = new ArrayList<>();
        for (int n : new int[]{64, 256}) {
            addLeNetOps(be, n, ops, owned);
        }
        if (large) {
            ConvGeometry g = new ConvGeometry(32, 64, 56, 56, 64, 3, 3, 1, 1, 1, 1, 1, 1);
            addConv(be, "conv 64->64 k3 p1", g, ops, owned);
            addBatchNorm(be, "bn2d", new BatchNormGeometry(32, 64, 56 * 56), ops, owned);
        }
        out.printf(Locale.ROOT, "%-30s %-18s %12s %12s %10s %8s%n", "op", "shape", "median µs", "MFLOP/MB", "rate", "% peak");
        for (Op op : ops) {
            double seconds = time(be, op.body);
            boolean compute = op.flops >= 4 * op.bytes;
            double rate = compute ? op.flops / seconds / 1e9 : op.bytes / seconds / 1e9;
            double pct = peak == null ? Double.NaN : 100 * rate / (compute ? peak.gflops() : peak.gbPerSecond());
            out.printf(Locale.ROOT, "%-30s %-18s %12.1f %12.2f %7.1f %-3s %7.1f%%%n", op.name, op.shape, seconds * 1e6,
                    (compute ? op.flops : op.bytes) / 1e6, rate, compute ? "GF" : "GB", pct);
            out.flush();
        }
        for (Buffer b : owned) {
            b.close();
        }
        return 0;
    }

    private static double time(Backend be, Runnable body) {
        for (int i = 0; i < 5; i++) {
            body.run();
        }
        be.synchronize();
        long probe = System.nanoTime();
        body.run();
        be.synchronize();
        double once = (System.nanoTime() - probe) / 1e9;
        int reps = (int) Math.max(3, Math.min(200, 0.05 / Math.max(once, 1e-7)));
        double[] t = new double[7];
        for (int r = 0; r < t.length; r++) {
            long t0 = System.nanoTime();
            for (int i = 0; i < reps; i++) {
                body.run();
            }
            be.synchronize();
            t[r] = (System.nanoTime() - t0) / 1e9 / reps;
        }
        return BenchLeNetCommand.median(t);
    }

    private static Buffer random(Backend be, long n, List<Buffer> owned) {
        float[] data = new float[(int) n];
        new Generator(n).fillNormal(data, 0f, 1f);
        Buffer b = be.upload(data, 0, data.length);
        owned.add(b);
        return b;
    }

    private static Buffer zeros(Backend be, long n, List<Buffer> owned) {
        Buffer b = be.allocate(n);
        owned.add(b);
        return b;
    }

    private static void addLeNetOps(Backend be, int n, List<Op> ops, List<Buffer> owned) {
        addConv(be, "conv1 1->6 k5 p2", new ConvGeometry(n, 1, 28, 28, 6, 5, 5, 1, 1, 2, 2, 1, 1), ops, owned);
        addBatchNorm(be, "bn1 (2d)", new BatchNormGeometry(n, 6, 784), ops, owned);
        long act = (long) n * 6 * 784;
        Buffer a = random(be, act, owned);
        Buffer s = zeros(be, act, owned);
        Buffer ds = zeros(be, act, owned);
        ops.add(new Op("sigmoid fwd", n + "x6x28x28", 4 * act, 8 * act, () -> be.activationForward(Activation.SIGMOID, a, s, act)));
        ops.add(new Op("sigmoid bwd", n + "x6x28x28", 3 * act, 12 * act, () -> be.activationBackward(Activation.SIGMOID, a, s, a, ds, act)));
        PoolGeometry pg = new PoolGeometry(n, 6, 28, 28, 2, 2, 2, 2, 0, 0);
        Buffer p = zeros(be, pg.outputLength(), owned);
        ops.add(new Op("avgpool fwd", n + "x6x28x28", act, 4.0 * (act + pg.outputLength()), () -> be.avgPool2dForward(pg, a, p)));
        ops.add(new Op("avgpool bwd", n + "x6x28x28", act, 4.0 * (act + pg.outputLength()), () -> be.avgPool2dBackward(pg, p, ds)));
        addConv(be, "conv2 6->16 k5", new ConvGeometry(n, 6, 14, 14, 16, 5, 5, 1, 1, 0, 0, 1, 1), ops, owned);
        addBatchNorm(be, "bn2 (2d)", new BatchNormGeometry(n, 16, 100), ops, owned);
        Buffer x = random(be, (long) n * 400, owned);
        Buffer w = random(be, 120L * 400, owned);
        Buffer y = zeros(be, (long) n * 120, owned);
        ops.add(new Op("fc1 gemm fwd", n + "x400 * 400x120", 2.0 * n * 400 * 120, 4.0 * (n * 400 + 400 * 120 + n * 120),
                () -> be.gemm(false, true, n, 120, 400, 1f, x, w, 0f, y)));
        Buffer dw = zeros(be, 120L * 400, owned);
        ops.add(new Op("fc1 gemm dW", "120x" + n + " * " + n + "x400", 2.0 * n * 400 * 120, 4.0 * (n * 400 + 400 * 120 + n * 120),
                () -> be.gemm(true, false, 120, 400, n, 1f, y, x, 0f, dw)));
        addBatchNorm(be, "bn3 (1d)", new BatchNormGeometry(n, 120, 1), ops, owned);
        Buffer logits = random(be, (long) n * 10, owned);
        float[] labels = new float[n];
        for (int i = 0; i < n; i++) {
            labels[i] = i % 10;
        }
        Buffer t = be.upload(labels, 0, n);
        owned.add(t);
        Buffer probs = zeros(be, (long) n * 10, owned);
        Buffer loss = zeros(be, 1, owned);
        ops.add(new Op("cross-entropy fwd", n + "x10", 30.0 * n, 4.0 * (2 * n * 10 + n), () -> be.softmaxCrossEntropyForward(n, 10, logits, t, probs, loss)));
        if (n == 64) {
            long params = 62_006;
            Buffer pw = random(be, params, owned);
            Buffer pg2 = random(be, params, owned);
            Buffer mom = zeros(be, params, owned);
            SgdHyper h = new SgdHyper(1e-6f, 0.9f, 0f, false, 0f, false);
            ops.add(new Op("sgd step (all params)", "62006", 4.0 * params, 20.0 * params, () -> be.sgdStep(h, pw, pg2, mom, params)));
        }
    }

    private static void addConv(Backend be, String name, ConvGeometry g, List<Op> ops, List<Buffer> owned) {
        Buffer x = random(be, g.inputLength(), owned);
        Buffer w = random(be, g.weightLength(), owned);
        Buffer b = random(be, g.outChannels(), owned);
        Buffer y = zeros(be, g.outputLength(), owned);
        Buffer dx = zeros(be, g.inputLength(), owned);
        Buffer dw = zeros(be, g.weightLength(), owned);
        String shape = g.n() + "x" + g.inChannels() + "x" + g.inH() + "x" + g.inW();
        double bytes = 4.0 * (g.inputLength() + g.weightLength() + g.outputLength());
        ops.add(new Op(name + " fwd", shape, g.forwardFlops(), bytes, () -> be.conv2dForward(g, x, w, b, y)));
        ops.add(new Op(name + " bwd data", shape, g.forwardFlops(), bytes, () -> be.conv2dBackwardData(g, w, y, dx)));
        ops.add(new Op(name + " bwd weight", shape, g.forwardFlops(), bytes, () -> be.conv2dBackwardWeight(g, x, y, dw)));
    }

    private static void addBatchNorm(Backend be, String name, BatchNormGeometry g, List<Op> ops, List<Buffer> owned) {
        Buffer x = random(be, g.length(), owned);
        Buffer gamma = random(be, g.channels(), owned);
        Buffer beta = random(be, g.channels(), owned);
        Buffer y = zeros(be, g.length(), owned);
        Buffer mean = zeros(be, g.channels(), owned);
        Buffer inv = zeros(be, g.channels(), owned);
        Buffer dx = zeros(be, g.length(), owned);
        Buffer dg = zeros(be, g.channels(), owned);
        Buffer db = zeros(be, g.channels(), owned);
        String shape = g.n() + "x" + g.channels() + "x" + g.spatial();
        // Floors: forward reads x twice (stats, normalise) and writes y; backward reads x and dy twice and writes dx.
        ops.add(new Op(name + " fwd train", shape, 6.0 * g.length(), 12.0 * g.length(),
                () -> be.batchNormForwardTraining(g, x, gamma, beta, 1e-5f, y, mean, inv)));
        ops.add(new Op(name + " bwd", shape, 9.0 * g.length(), 20.0 * g.length(),
                () -> be.batchNormBackward(g, x, y, gamma, mean, inv, dx, dg, db)));
    }
}
