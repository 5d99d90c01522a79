package dev.kiln.examples;

import dev.kiln.backend.Activation;
import dev.kiln.backend.AdaptivePoolGeometry;
import dev.kiln.backend.Backend;
import dev.kiln.backend.BatchNormGeometry;
import dev.kiln.backend.Buffer;
import dev.kiln.backend.ConvGeometry;
import dev.kiln.backend.PoolGeometry;
import dev.kiln.backend.UpsampleGeometry;
import dev.kiln.core.Device;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.Callable;
import java.util.function.Predicate;

/**
 * Per-op timing through the backend SPI at LeNet-5-BN's shapes (batch 64 and 256) and at one large shape
 * (N=32, C=64, 56x56), with the machine's measured peak: independent vector FMAs held in registers for FLOP/s
 * ({@link VectorFmaPeak}) and a triad kernel for memory bandwidth, both run on every core in the same JVM. Each op is warmed up (at least 0.5 s and 20 calls),
 * then timed in rounds of at least 40 ms; the median time per call is reported. Ops whose floor is arithmetic show
 * GFLOP/s and % of peak FLOP/s; memory-bound ops show GB/s (bytes that must move at least once) and % of bandwidth.
 */
@Command(name = "ops", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Per-op time, GFLOP/s or GB/s and %% of the measured machine peak (LeNet shapes and a large shape).")
final class BenchOpsCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Option(names = "--device", defaultValue = "auto", description = "auto, cpu or cuda (default: ${DEFAULT-VALUE}).")
    String device;

    @Option(names = "--batch-sizes", defaultValue = "64,256", split = ",", description = "LeNet batch sizes (default: ${DEFAULT-VALUE}).")
    List<Integer> batchSizes;

    @Option(names = "--large", negatable = true, defaultValue = "true", fallbackValue = "true",
            description = "Include the large shape N=32, C=64, 56x56 (default: ${DEFAULT-VALUE}).")
    boolean large;

    @Option(names = "--resnet", paramLabel = "N", defaultValue = "0",
            description = "Also every distinct convolution of ./kiln resnet's network at batch N (forward, backward data,"
                    + " backward weight, with calls per training step); 0 leaves them out (default: ${DEFAULT-VALUE}).")
    int resnetBatch;

    @Option(names = "--lenet", negatable = true, defaultValue = "true", fallbackValue = "true",
            description = "Include the LeNet shapes (default: ${DEFAULT-VALUE}).")
    boolean lenet;

    @Option(names = "--json", paramLabel = "FILE", description = "Also write the rows and the measured peak as JSON.")
    java.nio.file.Path json;

    @Option(names = "--filter", description = "Only ops whose name contains this text.")
    String filter;

    @Option(names = "--rounds", defaultValue = "7", description = "Timed rounds per op; the median is reported (default: ${DEFAULT-VALUE}).")
    int rounds;

    @Option(names = "--warmup-cap", paramLabel = "SECONDS", defaultValue = "5", description = "How long an op's warm-up"
            + " (at least 0.5 s and 20 calls) may go on while the JIT compilers are busy; 0 stops at the minimum"
            + " (default: ${DEFAULT-VALUE}).")
    double warmupCap;

    private Backend b;
    private final List<java.util.Map<String, Object>> rows = new ArrayList<>();
    private final Random random = new Random(1);
    private final List<Buffer> buffers = new ArrayList<>();

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        if (rounds < 1 || !(warmupCap >= 0)) {
            throw new picocli.CommandLine.ParameterException(spec.commandLine(),
                    "need --rounds >= 1 and --warmup-cap >= 0 (seconds), got " + rounds + " and " + warmupCap);
        }
        Device dev = Device.of(device);
        b = dev.backend();
        int threads = Runtime.getRuntime().availableProcessors();
        out.println("device: " + dev.name() + " (" + b.description() + "), " + threads + " cores, Java "
                + System.getProperty("java.version"));
        double peakFlops;
        double peakBytes;
        if (dev.name().equals("cpu")) {
            peakFlops = Peak.flops(threads);
            peakBytes = Peak.triadBytes(threads);
            out.printf("measured peak: %.1f GFLOP/s (%s, %d threads), %.1f GB/s (triad, %d threads)%n",
                    peakFlops / 1e9, Peak.flopsKernel(), threads, peakBytes / 1e9, threads);
        } else {
            // Java kernels say nothing about a GPU: bandwidth is its own device copy; no FLOP peak is measured, so
            // compute-bound ops show their rate and no percentage
            peakFlops = Double.NaN;
            peakBytes = deviceCopyBytesPerSecond();
            out.printf("measured peak: %.1f GB/s (device-to-device copy of 256 MiB); no FLOP peak measured%n", peakBytes / 1e9);
        }
        out.printf("%-52s %-24s %11s %10s %12s %8s%n", "op", "shape", "median", "work", "rate", "% peak");
        out.flush();
        Predicate<String> keep = name -> filter == null || name.contains(filter);
        try {
            for (int n : lenet ? batchSizes : List.<Integer>of()) {
                for (Op op : lenetOps(n)) {
                    if (keep.test(op.name)) {
                        report(out, op, peakFlops, peakBytes);
                    }
                }
                freeAll();
            }
            if (large) {
                for (Op op : largeOps()) {
                    if (keep.test(op.name)) {
                        report(out, op, peakFlops, peakBytes);
                    }
                }
                freeAll();
            }
            if (resnetBatch > 0) {
                for (Op op : resnetOps(resnetBatch)) {
                    if (keep.test(op.name)) {
                        report(out, op, peakFlops, peakBytes);
                    }
                }
                freeAll();
            }
        } finally {
            freeAll();
        }
        if (json != null) {
            java.util.Map<String, Object> doc = new java.util.LinkedHashMap<>();
            doc.put("device", dev.name());
            doc.put("backend", b.description());
            doc.put("java", System.getProperty("java.version"));
            doc.put("peak_flops", peakFlops);
            doc.put("peak_flops_kernel", dev.name().equals("cpu") ? Peak.flopsKernel() : null);
            doc.put("peak_bytes_per_second", peakBytes);
            doc.put("ops", rows);
            JsonFiles.write(json, doc);
        }
        return 0;
    }

    /** An op: name, shape label, FLOPs per call, bytes per call (at least once each), whether FLOPs are the floor. */
    record Op(String name, String shape, double flops, double bytes, boolean computeBound, Runnable body, int perStep) {
        Op(String name, String shape, double flops, double bytes, boolean computeBound, Runnable body) {
            this(name, shape, flops, bytes, computeBound, body, 0);
        }
    }

    private void report(PrintWriter out, Op op, double peakFlops, double peakBytes) {
        double t = time(op.body);
        String rate;
        double pct;
        if (op.computeBound) {
            rate = String.format("%.2f GFLOP/s", op.flops / t / 1e9);
            pct = 100 * op.flops / t / peakFlops;
        } else {
            rate = String.format("%.2f GB/s", op.bytes / t / 1e9);
            pct = 100 * op.bytes / t / peakBytes;
        }
        out.printf("%-52s %-24s %11s %10s %12s %8s%n", op.name, op.shape, fmtTime(t),
                op.computeBound ? String.format("%.0fM", op.flops / 1e6) : String.format("%.1fMB", op.bytes / 1e6),
                rate, Double.isNaN(pct) ? "-" : String.format("%.1f%%", pct));
        out.flush();
        java.util.Map<String, Object> row = new java.util.LinkedHashMap<>();
        row.put("op", op.name);
        row.put("shape", op.shape);
        row.put("seconds", t);
        row.put(op.computeBound ? "flops" : "bytes", op.computeBound ? op.flops : op.bytes);
        row.put("percent_of_peak", Double.isNaN(pct) ? null : pct);
        if (op.perStep > 0) {
            row.put("calls_per_step", op.perStep);
        }
        rows.add(row);
    }

    private static String fmtTime(double s) {
        return s < 1e-3 ? String.format("%.1f us", s * 1e6) : String.format("%.3f ms", s * 1e3);
    }

    /** Bytes per second of {@link Backend#copy} over 64 Mi floats (read and written once each). */
    private double deviceCopyBytesPerSecond() {
        long n = 64L << 20;
        try (Buffer src = b.allocate(n); Buffer dst = b.allocate(n)) {
            return 2.0 * n * Float.BYTES / time(() -> b.copy(src, 0, dst, 0, n));
        }
    }

    private double time(Runnable body) {
        return OpTimer.medianSeconds(b, rounds, body, warmupCap);
    }

    private Buffer rand(long n) {
        float[] a = new float[Math.toIntExact(n)];
        for (int i = 0; i < a.length; i++) {
            a[i] = random.nextFloat() - 0.5f;
        }
        Buffer buf = b.upload(a, 0, a.length);
        buffers.add(buf);
        return buf;
    }

    private Buffer labels(int n, int classes) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = random.nextInt(classes);
        }
        Buffer buf = b.upload(a, 0, n);
        buffers.add(buf);
        return buf;
    }

    private Buffer zeros(long n) {
        Buffer buf = b.allocate(n);
        buffers.add(buf);
        return buf;
    }

    private void freeAll() {
        for (Buffer buf : buffers) {
            buf.close();
        }
        buffers.clear();
    }

    private void convOps(List<Op> ops, String label, ConvGeometry g, boolean withData) {
        Buffer x = rand(g.inputLength()), w = rand(g.weightLength()), bias = rand(g.outChannels());
        Buffer y = zeros(g.outputLength()), dy = rand(g.outputLength()), dx = zeros(g.inputLength());
        Buffer dw = zeros(g.weightLength()), db = zeros(g.outChannels());
        double f = g.forwardFlops();
        String shape = g.n() + "x" + g.inChannels() + "x" + g.inH() + "x" + g.inW() + "->" + g.outChannels() + " k"
                + g.kernelH();
        ops.add(new Op(label + " conv forward", shape, f, 0, true, () -> b.conv2dForward(g, x, w, bias, y)));
        if (withData) {
            ops.add(new Op(label + " conv backward data", shape, f, 0, true, () -> b.conv2dBackwardData(g, w, dy, dx)));
        }
        ops.add(new Op(label + " conv backward weight", shape, f, 0, true, () -> b.conv2dBackwardWeight(g, x, dy, dw)));
        ops.add(new Op(label + " conv backward bias", shape, 0, 4.0 * g.outputLength(), false,
                () -> b.conv2dBackwardBias(g, dy, db)));
    }

    private void bnOps(List<Op> ops, String label, BatchNormGeometry g) {
        long len = g.length();
        int c = g.channels();
        Buffer x = rand(len), y = zeros(len), dy = rand(len), dx = zeros(len);
        Buffer gamma = rand(c), beta = rand(c), mean = zeros(c), inv = zeros(c), dg = zeros(c), dbt = zeros(c);
        String shape = g.n() + "x" + c + "x" + g.spatial();
        b.batchNormForwardTraining(g, x, gamma, beta, 1e-5f, y, mean, inv);
        ops.add(new Op(label + " bn forward (train)", shape, 0, 8.0 * len, false,
                () -> b.batchNormForwardTraining(g, x, gamma, beta, 1e-5f, y, mean, inv)));
        ops.add(new Op(label + " bn backward", shape, 0, 12.0 * len, false,
                () -> b.batchNormBackward(g, x, dy, gamma, mean, inv, dx, dg, dbt)));
    }

    private void sigmoidOps(List<Op> ops, String label, long len) {
        Buffer x = rand(len), y = zeros(len), dy = rand(len), dx = zeros(len);
        b.activationForward(Activation.SIGMOID, x, y, len);
        ops.add(new Op(label + " sigmoid forward", String.valueOf(len), 0, 8.0 * len, false,
                () -> b.activationForward(Activation.SIGMOID, x, y, len)));
        ops.add(new Op(label + " sigmoid backward", String.valueOf(len), 0, 12.0 * len, false,
                () -> b.activationBackward(Activation.SIGMOID, x, y, dy, dx, len)));
    }

    private void poolOps(List<Op> ops, String label, PoolGeometry g) {
        Buffer x = rand(g.inputLength()), y = zeros(g.outputLength()), dy = rand(g.outputLength()), dx = zeros(g.inputLength());
        String shape = g.n() + "x" + g.channels() + "x" + g.inH() + "x" + g.inW();
        double bytes = 4.0 * (g.inputLength() + g.outputLength());
        ops.add(new Op(label + " avgpool forward", shape, 0, bytes, false, () -> b.avgPool2dForward(g, x, y)));
        ops.add(new Op(label + " avgpool backward", shape, 0, bytes, false, () -> b.avgPool2dBackward(g, dy, dx)));
    }

    private void linearOps(List<Op> ops, String label, int n, int in, int outF) {
        Buffer x = rand((long) n * in), w = rand((long) outF * in), y = zeros((long) n * outF);
        Buffer dy = rand((long) n * outF), dw = zeros((long) outF * in), dx = zeros((long) n * in);
        double f = 2.0 * n * in * outF;
        String shape = n + "x" + in + "->" + outF;
        ops.add(new Op(label + " gemm forward (x W^T)", shape, f, 0, true,
                () -> b.gemm(false, true, n, outF, in, 1f, x, w, 0f, y)));
        ops.add(new Op(label + " gemm dW (dy^T x)", shape, f, 0, true,
                () -> b.gemm(true, false, outF, in, n, 1f, dy, x, 0f, dw)));
        ops.add(new Op(label + " gemm dX (dy W)", shape, f, 0, true,
                () -> b.gemm(false, false, n, in, outF, 1f, dy, w, 0f, dx)));
    }

    private List<Op> lenetOps(int n) {
        List<Op> ops = new ArrayList<>();
        String l = "b" + n;
        ConvGeometry c1 = new ConvGeometry(n, 1, 28, 28, 6, 5, 5, 1, 1, 2, 2, 1, 1);
        ConvGeometry c2 = new ConvGeometry(n, 6, 14, 14, 16, 5, 5, 1, 1, 0, 0, 1, 1);
        convOps(ops, l + " conv1", c1, false);
        bnOps(ops, l + " bn1", new BatchNormGeometry(n, 6, 784));
        sigmoidOps(ops, l + " act1", (long) n * 4704);
        poolOps(ops, l + " pool1", new PoolGeometry(n, 6, 28, 28, 2, 2, 2, 2, 0, 0));
        convOps(ops, l + " conv2", c2, true);
        bnOps(ops, l + " bn2", new BatchNormGeometry(n, 16, 100));
        sigmoidOps(ops, l + " act2", (long) n * 1600);
        poolOps(ops, l + " pool2", new PoolGeometry(n, 16, 10, 10, 2, 2, 2, 2, 0, 0));
        linearOps(ops, l + " fc1", n, 400, 120);
        bnOps(ops, l + " bn3", new BatchNormGeometry(n, 120, 1));
        linearOps(ops, l + " fc2", n, 120, 84);
        linearOps(ops, l + " fc3", n, 84, 10);
        Buffer logits = rand(n * 10L), t = labels(n, 10), probs = zeros(n * 10L), loss = zeros(1), dl = zeros(n * 10L);
        Buffer one = b.upload(new float[]{1f}, 0, 1);
        buffers.add(one);
        ops.add(new Op(l + " softmax-CE forward", n + "x10", 0, 4.0 * (2 * n * 10 + n), false,
                () -> b.softmaxCrossEntropyForward(n, 10, logits, t, probs, loss)));
        ops.add(new Op(l + " softmax-CE backward", n + "x10", 0, 4.0 * (2 * n * 10 + n), false,
                () -> b.softmaxCrossEntropyBackward(n, 10, probs, t, one, dl)));
        Buffer am = zeros(n);
        ops.add(new Op(l + " argmax", n + "x10", 0, 4.0 * (n * 10 + n), false, () -> b.argmax(logits, n, 10, 1, am)));
        Buffer bias = zeros(120);
        ops.add(new Op(l + " sumTo (bias grad)", n + "x120", 0, 4.0 * n * 120, false,
                () -> b.sumTo(dy(n), new int[]{n, 120}, bias, new int[]{1, 120})));
        return ops;
    }

    private Buffer dyCache;
    private int dyN = -1;

    private Buffer dy(int n) {
        if (dyN != n || dyCache == null || dyCache.isClosed()) {
            dyCache = rand(n * 120L);
            dyN = n;
        }
        return dyCache;
    }

    private List<Op> largeOps() {
        List<Op> ops = new ArrayList<>();
        ConvGeometry g = new ConvGeometry(32, 64, 56, 56, 64, 3, 3, 1, 1, 1, 1, 1, 1);
        convOps(ops, "large", g, true);
        bnOps(ops, "large bn2d", new BatchNormGeometry(32, 64, 56 * 56));
        shapeOps(ops, "large");
        return ops;
    }

    /**
     * Every distinct convolution of {@link dev.kiln.models.ResNet} on 1x28x28 images at batch {@code n}, with how many
     * times a training step calls it (the same list as {@code bench/pytorch_resnet.py --conv-ops}).
     */
    private List<Op> resnetOps(int n) {
        List<Op> ops = new ArrayList<>();
        resnetConv(ops, n, "stem 3x3", 1, 28, 16, 3, 1, 1, 1);
        resnetConv(ops, n, "layer1 3x3", 16, 28, 16, 3, 1, 1, 4);
        resnetConv(ops, n, "layer2 3x3 s2", 16, 28, 32, 3, 2, 1, 1);
        resnetConv(ops, n, "layer2 1x1 s2 shortcut", 16, 28, 32, 1, 2, 0, 1);
        resnetConv(ops, n, "layer2 3x3", 32, 14, 32, 3, 1, 1, 3);
        resnetConv(ops, n, "layer3 3x3 s2", 32, 14, 64, 3, 2, 1, 1);
        resnetConv(ops, n, "layer3 1x1 s2 shortcut", 32, 14, 64, 1, 2, 0, 1);
        resnetConv(ops, n, "layer3 3x3", 64, 7, 64, 3, 1, 1, 3);
        return ops;
    }

    private void resnetConv(List<Op> ops, int n, String label, int cin, int size, int cout, int k, int stride, int pad,
                            int perStep) {
        ConvGeometry g = new ConvGeometry(n, cin, size, size, cout, k, k, stride, stride, pad, pad, 1, 1);
        Buffer x = rand(g.inputLength()), w = rand(g.weightLength());
        Buffer y = zeros(g.outputLength()), dy = rand(g.outputLength()), dx = zeros(g.inputLength());
        Buffer dw = zeros(g.weightLength());
        double f = g.forwardFlops();
        String shape = n + "x" + cin + "x" + size + "x" + size + "->" + cout + " k" + k + " s" + stride;
        String l = "resnet b" + n + " " + label;
        ops.add(new Op(l + " forward", shape, f, 0, true, () -> b.conv2dForward(g, x, w, null, y), perStep));
        if (cin > 1) { // the stem's input is the images: no gradient is asked of it
            ops.add(new Op(l + " backward data", shape, f, 0, true, () -> b.conv2dBackwardData(g, w, dy, dx), perStep));
        }
        ops.add(new Op(l + " backward weight", shape, f, 0, true, () -> b.conv2dBackwardWeight(g, x, dy, dw), perStep));
    }

    /**
     * A MobileNet block's depthwise convolution and a U-Net's and ResNet's shape ops at the large shape: all move far
     * more bytes than they compute, so they are rated in GB/s (input and output once each).
     */
    private void shapeOps(List<Op> ops, String label) {
        ConvGeometry dw = new ConvGeometry(32, 64, 56, 56, 64, 3, 3, 1, 1, 1, 1, 1, 1, 64);
        Buffer x = rand(dw.inputLength()), w = rand(dw.weightLength()), y = zeros(dw.outputLength());
        Buffer dy = rand(dw.outputLength()), dx = zeros(dw.inputLength()), dwt = zeros(dw.weightLength());
        String shape = "32x64x56x56 k3 g64";
        double io = 4.0 * (dw.inputLength() + dw.outputLength());
        ops.add(new Op(label + " depthwise conv forward", shape, 0, io, false, () -> b.conv2dForward(dw, x, w, null, y)));
        ops.add(new Op(label + " depthwise conv backward data", shape, 0, io, false,
                () -> b.conv2dBackwardData(dw, w, dy, dx)));
        ops.add(new Op(label + " depthwise conv backward weight", shape, 0, io, false,
                () -> b.conv2dBackwardWeight(dw, x, dy, dwt)));
        AdaptivePoolGeometry global = new AdaptivePoolGeometry(32, 64, 56, 56, 1, 1);
        Buffer pooled = zeros(global.outputLength());
        ops.add(new Op(label + " global avgpool forward", "32x64x56x56->1x1", 0, 4.0 * global.inputLength(), false,
                () -> b.adaptiveAvgPool2dForward(global, x, pooled)));
        ops.add(new Op(label + " global avgpool backward", "32x64x56x56->1x1", 0, 4.0 * global.inputLength(), false,
                () -> b.adaptiveAvgPool2dBackward(global, pooled, dx)));
        UpsampleGeometry up = new UpsampleGeometry(32, 64, 28, 28, 2, 2);
        double upBytes = 4.0 * (up.inputLength() + up.outputLength());
        ops.add(new Op(label + " upsample nearest x2 forward", "32x64x28x28", 0, upBytes, false,
                () -> b.upsampleNearest2dForward(up, x, y)));
        ops.add(new Op(label + " upsample nearest x2 backward", "32x64x28x28", 0, upBytes, false,
                () -> b.upsampleNearest2dBackward(up, dy, dx)));
        ops.add(new Op(label + " cat (two halves, dim 1)", "2x 32x32x56x56", 0, 8.0 * dw.inputLength(), false, () -> {
            b.copySlice(x, 32, 32, 0, y, 64, 0, 32, 56 * 56);
            b.copySlice(dx, 32, 32, 0, y, 64, 32, 32, 56 * 56);
        }));
    }

    /** Simple kernels for the machine's peak, run on {@code threads} threads at once. */
    static final class Peak {

        private Peak() {
        }

        /**
         * The machine's FMA peak in FLOP/s: {@link VectorFmaPeak} (register-resident vector FMAs, the machine's true
         * arithmetic ceiling) when the JVM has the Vector API module, else {@link #scalarChainFlops} (what C2's
         * auto-vectorised loops reach, below the ceiling).
         */
        static double flops(int threads) {
            return vectorApiPresent() ? VectorFmaPeak.flops(threads) : scalarChainFlops(threads);
        }

        /** How {@link #flops} measured, for the report. */
        static String flopsKernel() {
            return vectorApiPresent()
                    ? "Vector API FMAs, " + VectorFmaPeak.ACCUMULATORS + " independent " + VectorFmaPeak.bits()
                    + "-bit accumulators in registers"
                    : "auto-vectorised FMA chains through memory; start the JVM with --add-modules"
                    + " jdk.incubator.vector for the register-resident peak";
        }

        static boolean vectorApiPresent() {
            return ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent();
        }

        /** FLOP/s of independent chains of vectorised float FMAs held in L1 (8 FMA = 16 FLOP per element). */
        static double scalarChainFlops(int threads) {
            int len = 512;
            int reps = 40_000;
            double best = 0;
            for (int attempt = 0; attempt < 10; attempt++) {
                double seconds = runOnThreads(threads, () -> {
                    float[] v = new float[len];
                    Arrays.fill(v, 1f);
                    float a = 0.999f, c = 0.001f;
                    for (int r = 0; r < reps; r++) {
                        fma8(v, a, c);
                    }
                    return v[0];
                });
                best = Math.max(best, (double) threads * reps * len * 16 / seconds);
            }
            return best;
        }

        private static void fma8(float[] v, float a, float c) {
            for (int i = 0; i < v.length; i++) {
                float x = v[i];
                x = Math.fma(x, a, c);
                x = Math.fma(x, a, c);
                x = Math.fma(x, a, c);
                x = Math.fma(x, a, c);
                x = Math.fma(x, a, c);
                x = Math.fma(x, a, c);
                x = Math.fma(x, a, c);
                x = Math.fma(x, a, c);
                v[i] = x;
            }
        }

        /** Bytes/s of {@code a[i] = b[i] + s * c[i]} over arrays far larger than the caches (12 bytes per element). */
        static double triadBytes(int threads) {
            int len = 8 << 20; // 32 MiB per array per thread
            double best = 0;
            float[][][] arrays = new float[threads][3][];
            for (int t = 0; t < threads; t++) {
                for (int k = 0; k < 3; k++) {
                    arrays[t][k] = new float[len];
                    Arrays.fill(arrays[t][k], 1f);
                }
            }
            int[] next = {0};
            for (int attempt = 0; attempt < 6; attempt++) {
                next[0] = 0;
                double seconds = runOnThreads(threads, () -> {
                    int t;
                    synchronized (next) {
                        t = next[0]++;
                    }
                    float[] x = arrays[t][0], y = arrays[t][1], z = arrays[t][2];
                    for (int r = 0; r < 4; r++) {
                        triad(x, y, z, 0.5f);
                    }
                    return x[0];
                });
                best = Math.max(best, (double) threads * 4 * len * 12 / seconds);
            }
            return best;
        }

        private static void triad(float[] a, float[] b, float[] c, float s) {
            for (int i = 0; i < a.length; i++) {
                a[i] = b[i] + s * c[i];
            }
        }

        interface Work {
            float run();
        }

        static volatile float sink;

        /** Wall time from the first worker's start to the last one's end, measured by the workers themselves. */
        static double runOnThreads(int threads, Work w) {
            Thread[] ts = new Thread[threads];
            long[] begin = new long[threads], end = new long[threads];
            java.util.concurrent.CyclicBarrier start = new java.util.concurrent.CyclicBarrier(threads);
            for (int i = 0; i < threads; i++) {
                int id = i;
                ts[i] = new Thread(() -> {
                    try {
                        start.await();
                    } catch (Exception e) {
                        throw new IllegalStateException(e);
                    }
                    begin[id] = System.nanoTime();
                    sink = w.run();
                    end[id] = System.nanoTime();
                });
                ts[i].setDaemon(true);
                ts[i].start();
            }
            try {
                for (Thread t : ts) {
                    t.join();
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException(e);
            }
            return (Arrays.stream(end).max().getAsLong() - Arrays.stream(begin).min().getAsLong()) / 1e9;
        }
    }
}
