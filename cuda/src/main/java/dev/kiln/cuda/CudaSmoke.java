package dev.kiln.cuda;

import dev.kiln.backend.Activation;
import dev.kiln.backend.AdaptivePoolGeometry;
import dev.kiln.backend.AdamHyper;
import dev.kiln.backend.BatchNormGeometry;
import dev.kiln.backend.BinaryOp;
import dev.kiln.backend.Buffer;
import dev.kiln.backend.ConvGeometry;
import dev.kiln.backend.GraphCapture;
import dev.kiln.backend.PoolGeometry;
import dev.kiln.backend.RecordedWork;
import dev.kiln.backend.ScalarOp;
import dev.kiln.backend.SgdHyper;
import dev.kiln.backend.UnaryOp;
import dev.kiln.backend.UpsampleGeometry;
import jcuda.jcudnn.JCudnn;

import java.io.IOException;
import java.io.PrintStream;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.Consumer;

/**
 * The first program to run on a GPU host: it starts a {@link CudaBackend} and makes every kind of call once -
 * convolution forward and both backwards, a GEMM, every PTX kernel, batch norm (training, inference, backward,
 * running statistics), pooling, softmax, one graph capture and replay, a download that brings the device error flag,
 * and {@code close()} - each followed by a synchronisation, so a fault is reported at the call that caused it. One
 * line per call: {@code OK}, {@code FAILED} with the exception, or {@code SKIPPED} with why. Exit status 0 when nothing
 * failed. {@code java -cp kiln.jar dev.kiln.cuda.CudaSmoke [--device N] [--tf32]}; where it fails, rerun it under
 * {@code compute-sanitizer --tool memcheck}.
 */
public final class CudaSmoke {

    private static final ConvGeometry CONV = new ConvGeometry(2, 3, 12, 12, 4, 3, 3, 1, 1, 1, 1, 1, 1);
    private static final BatchNormGeometry BN = new BatchNormGeometry(2, 4, 144);
    private static final PoolGeometry POOL = new PoolGeometry(2, 4, 12, 12, 2, 2, 2, 2, 0, 0);
    /** Depthwise over CONV's output: cudnnSetConvolutionGroupCount with a one-channel filter per group. */
    private static final ConvGeometry DEPTHWISE = new ConvGeometry(2, 4, 12, 12, 4, 3, 3, 2, 1, 1, 1, 1, 2, 4);
    /** Over the batch norm's output, with windows of different sizes that overlap. */
    private static final AdaptivePoolGeometry ADAPTIVE = new AdaptivePoolGeometry(2, 4, 12, 12, 5, 3);
    /** The pooled (2, 4, 6, 6) back to 12x12. */
    private static final UpsampleGeometry UPSAMPLE = new UpsampleGeometry(2, 4, 6, 6, 2, 2);

    private final Consumer<String> out;
    private final boolean deviceHasContents;
    private final List<String> failed = new ArrayList<>();
    private final Set<String> launched = new TreeSet<>();
    private CudaBackend backend;

    private CudaSmoke(Consumer<String> out, boolean deviceHasContents) {
        this.out = out;
        this.deviceHasContents = deviceHasContents;
    }

    public static void main(String[] args) throws IOException {
        int device = 0;
        boolean tf32 = false;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--device" -> device = Integer.parseInt(args[++i]);
                case "--tf32" -> tf32 = true;
                default -> {
                    System.err.println("usage: CudaSmoke [--device N] [--tf32]");
                    System.exit(2);
                }
            }
        }
        PrintStream stdout = System.out;
        CudaOptions options = new CudaOptions(device, tf32, 512L << 20);
        CudaApi api;
        try {
            CudaLibraries.Loaded loaded = CudaLibraries.load(LibrarySearchPath.fromEnvironment());
            for (Map.Entry<String, Path> e : loaded.libraries().entrySet()) {
                stdout.println("library " + e.getKey() + " = " + e.getValue() + " -> " + realPath(e.getValue()));
            }
            stdout.println("library libcublas.so.12 is " + (loaded.cublasShim() ? "Kiln's shim forwarding to libcublas.so.13"
                    : "the real CUDA 12 cuBLAS"));
            stdout.println("library cuDNN version " + JCudnn.cudnnGetVersion());
            api = JCudaApi.INSTANCE;
        } catch (RuntimeException | LinkageError e) {
            stdout.println(line("FAILED", "load the CUDA libraries", e.toString()));
            System.exit(1);
            return;
        }
        int failures = run(api, options, stdout::println, true);
        stdout.println(failures == 0 ? "smoke: every call OK" : "smoke: " + failures + " call(s) FAILED");
        stdout.flush();
        System.exit(failures == 0 ? 0 : 1);
    }

    private static String realPath(Path p) {
        try {
            return p.toRealPath().toString();
        } catch (IOException e) {
            return "(" + e.getMessage() + ")";
        }
    }

    /**
     * Runs every call on a backend over {@code api}, writing one line per call to {@code out}; returns how many
     * failed. {@code deviceHasContents}: whether downloads read what the device computed (a GPU), so results and the
     * error flag can be checked; otherwise those checks are reported as skipped.
     */
    static int run(CudaApi api, CudaOptions options, Consumer<String> out, boolean deviceHasContents) {
        CudaSmoke s = new CudaSmoke(out, deviceHasContents);
        CudaApi counting = s.countingLaunches(api);
        s.step("start", "context, stream, cuBLAS and cuDNN handles, PTX modules, every kernel looked up", () -> {
            s.backend = new CudaBackend(options, counting);
            return s.backend.description();
        });
        if (s.backend != null) {
            s.calls();
            s.step("close", "every resource released", () -> {
                s.backend.close();
                return "";
            });
        }
        return s.failed.size();
    }

    @FunctionalInterface
    private interface Call {
        String run() throws Exception;
    }

    private void step(String name, String what, Call call) {
        long t0 = System.nanoTime();
        try {
            String detail = call.run();
            double ms = (System.nanoTime() - t0) / 1e6;
            out.accept(line("OK", name, String.format(Locale.ROOT, "%.1f ms  %s%s", ms, what,
                    detail == null || detail.isEmpty() ? "" : "  [" + detail + "]")));
        } catch (Skip e) {
            out.accept(line("SKIPPED", name, e.getMessage()));
        } catch (Exception | Error e) {
            failed.add(name);
            out.accept(line("FAILED", name, e.toString()));
            for (Throwable c = e.getCause(); c != null && c != c.getCause(); c = c.getCause()) {
                out.accept(line("", "", "caused by " + c));
            }
        }
    }

    private static String line(String status, String name, String detail) {
        return String.format(Locale.ROOT, "smoke %-8s %-34s %s", status, name, detail);
    }

    private static final class Skip extends RuntimeException {
        Skip(String why) {
            super(why);
        }
    }

    /** {@code api} with every kernel launch's name recorded, to say whether every kernel ran. */
    private CudaApi countingLaunches(CudaApi api) {
        return (CudaApi) Proxy.newProxyInstance(CudaApi.class.getClassLoader(), new Class<?>[]{CudaApi.class},
                (proxy, method, args) -> {
                    if (method.getName().equals("launchKernel")) {
                        synchronized (launched) {
                            launched.add((String) args[1]);
                        }
                    }
                    try {
                        return method.invoke(api, args);
                    } catch (InvocationTargetException e) {
                        throw e.getCause();
                    }
                });
    }

    private Buffer up(float... v) {
        return backend.upload(v, 0, v.length);
    }

    private static float[] ramp(long n, float scale) {
        float[] v = new float[(int) n];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) Math.sin(i * 0.37) * scale;
        }
        return v;
    }

    /** Runs {@code op}, then waits for the device, so a fault shows at this call. */
    private void op(String name, String what, Runnable op) {
        step(name, what, () -> {
            op.run();
            backend.synchronize();
            return "";
        });
    }

    private void calls() {
        CudaBackend b = backend;
        Buffer x = up(ramp(CONV.inputLength(), 1f));
        Buffer w = up(ramp(CONV.weightLength(), 0.2f));
        Buffer bias = up(ramp(CONV.outChannels(), 0.1f));
        Buffer y = b.allocate(CONV.outputLength());
        Buffer dx = b.allocate(CONV.inputLength());
        Buffer dw = b.allocate(CONV.weightLength());
        Buffer db = b.allocate(CONV.outChannels());
        int c = BN.channels();
        Buffer gamma = up(ramp(c, 1f));
        Buffer beta = up(ramp(c, 0.5f));
        Buffer mean = b.allocate(c);
        Buffer invStd = b.allocate(c);
        Buffer runningMean = b.allocate(c);
        Buffer runningVar = up(1f, 1f, 1f, 1f);
        Buffer bnY = b.allocate(BN.length());
        Buffer bnDx = b.allocate(BN.length());
        Buffer dGamma = b.allocate(c);
        Buffer dBeta = b.allocate(c);
        Buffer pooled = b.allocate(POOL.outputLength());
        Buffer poolDx = b.allocate(POOL.inputLength());
        int rows = 4;
        int classes = 10;
        Buffer logits = up(ramp((long) rows * classes, 2f));
        Buffer targets = up(1f, 0f, 9f, 3f);
        Buffer probs = b.allocate((long) rows * classes);
        Buffer loss = b.allocate(1);
        Buffer dLoss = up(1f);
        Buffer dLogits = b.allocate((long) rows * classes);
        Buffer gemmA = up(1f, 2f, 3f, 4f, 5f, 6f);     // (2,3)
        Buffer gemmB = up(1f, 0f, 0f, 1f, 1f, 1f);     // (3,2)
        Buffer gemmC = b.allocate(4);
        Buffer small = up(1f, -2f, 3f, -4f);
        Buffer smallOut = b.allocate(4);
        Buffer row = up(10f, 20f);
        Buffer wide = b.allocate(8);
        Buffer guard = up(0.5f);
        Buffer skipped = b.allocate(1);
        Buffer lr = up(0.01f);
        Buffer adamM = b.allocate(CONV.weightLength());
        Buffer adamV = b.allocate(CONV.weightLength());
        Buffer dwWeight = up(ramp(DEPTHWISE.weightLength(), 0.3f));
        Buffer dwY = b.allocate(DEPTHWISE.outputLength());
        Buffer dwDx = b.allocate(DEPTHWISE.inputLength());
        Buffer dwDw = b.allocate(DEPTHWISE.weightLength());
        Buffer adaptive = b.allocate(ADAPTIVE.outputLength());
        Buffer adaptiveIndices = b.allocate(ADAPTIVE.outputLength());
        Buffer adaptiveDx = b.allocate(ADAPTIVE.inputLength());
        Buffer upsampled = b.allocate(UPSAMPLE.outputLength());
        Buffer slice = b.allocate(BN.length() / 2);
        try {
            op("conv2dForward", "cudnnConvolutionForward + cudnnAddTensor", () -> b.conv2dForward(CONV, x, w, bias, y));
            op("conv2dBackwardData", "cudnnConvolutionBackwardData", () -> b.conv2dBackwardData(CONV, w, y, dx));
            op("conv2dBackwardWeight", "cudnnConvolutionBackwardFilter", () -> b.conv2dBackwardWeight(CONV, x, y, dw));
            op("conv2dBackwardBias", "cudnnConvolutionBackwardBias", () -> b.conv2dBackwardBias(CONV, y, db));
            step("gemm", "cublasSgemm (2x3 by 3x2)", () -> {
                b.gemm(false, false, 2, 2, 3, 1f, gemmA, gemmB, 0f, gemmC);
                b.synchronize();
                return expect(gemmC, new float[]{4f, 5f, 10f, 11f});
            });
            op("batchNormForwardTraining", "cudnnBatchNormalizationForwardTraining",
                    () -> b.batchNormForwardTraining(BN, y, gamma, beta, 1e-5f, bnY, mean, invStd));
            op("batchNormUpdateRunningStats", "kiln_bn_running_stats",
                    () -> b.batchNormUpdateRunningStats(BN, mean, invStd, 1e-5f, 0.1, runningMean, runningVar, guard, skipped));
            op("batchNormBackward", "cudnnBatchNormalizationBackward",
                    () -> b.batchNormBackward(BN, y, bnY, gamma, mean, invStd, bnDx, dGamma, dBeta));
            op("batchNormForwardInference", "kiln_bn_inference_activation",
                    () -> b.batchNormForwardInference(BN, Activation.RELU, y, gamma, beta, runningMean, runningVar, 1e-5f, bnY));
            op("maxPool2dForward", "cudnnPoolingForward (max)", () -> b.maxPool2dForward(POOL, bnY, pooled));
            op("maxPool2dBackward", "kiln_max_pool_backward", () -> b.maxPool2dBackward(POOL, bnY, pooled, pooled, poolDx));
            op("avgPool2dForward", "cudnnPoolingForward (average)", () -> b.avgPool2dForward(POOL, bnY, pooled));
            op("avgPool2dBackward", "cudnnPoolingBackward", () -> b.avgPool2dBackward(POOL, pooled, poolDx));
            op("softmaxForward", "cudnnSoftmaxForward", () -> b.softmaxForward(rows, classes, logits, probs));
            op("softmaxBackward", "cudnnSoftmaxBackward", () -> b.softmaxBackward(rows, classes, probs, logits, dLogits));
            op("activationForward", "kiln_activation_forward", () -> b.activationForward(Activation.TANH, small, smallOut, 4));
            op("activationBackward", "kiln_activation_backward",
                    () -> b.activationBackward(Activation.TANH, small, smallOut, small, wide, 4));
            op("biasActivation", "kiln_bias_activation",
                    () -> b.biasActivation(Activation.RELU, CONV.n(), CONV.outChannels(), CONV.outH() * CONV.outW(), y, bias, y));
            step("unary", "kiln_unary (NEG)", () -> {
                b.unary(UnaryOp.NEG, small, smallOut, 4);
                b.synchronize();
                return expect(smallOut, new float[]{-1f, 2f, -3f, 4f});
            });
            op("scalar", "kiln_scalar (MUL)", () -> b.scalar(ScalarOp.MUL, small, 2f, smallOut, 4));
            op("binary", "kiln_binary_flat (ADD)", () -> b.binary(BinaryOp.ADD, small, new int[]{4}, small, new int[]{4},
                    smallOut, new int[]{4}));
            op("binary broadcast", "kiln_binary (MUL, (2,2) by (1,2))", () -> b.binary(BinaryOp.MUL, small,
                    new int[]{2, 2}, row, new int[]{1, 2}, smallOut, new int[]{2, 2}));
            op("axpy", "kiln_axpy", () -> b.axpy(0.5f, small, smallOut, 4));
            op("broadcastTo", "kiln_broadcast_to", () -> b.broadcastTo(row, new int[]{1, 2}, wide, new int[]{4, 2}));
            op("sumTo", "kiln_sum_to", () -> b.sumTo(wide, new int[]{4, 2}, row, new int[]{1, 2}));
            op("argmax", "kiln_argmax", () -> b.argmax(logits, rows, classes, 1, smallOut));
            op("gatherRows", "kiln_gather_rows", () -> b.gatherRows(wide, 2, new int[]{3, 0}, smallOut));
            op("copySlice", "kiln_copy_slice (channels 1..2 of 4)",
                    () -> b.copySlice(bnY, BN.n(), BN.channels(), 1, slice, 2, 0, 2, BN.spatial()));
            op("conv2d grouped", "cuDNN forward, data, filter with 4 groups", () -> {
                b.conv2dForward(DEPTHWISE, y, dwWeight, null, dwY);
                b.conv2dBackwardData(DEPTHWISE, dwWeight, dwY, dwDx);
                b.conv2dBackwardWeight(DEPTHWISE, y, dwY, dwDw);
            });
            op("adaptiveAvgPool2dForward", "kiln_adaptive_avg_forward", () -> b.adaptiveAvgPool2dForward(ADAPTIVE, bnY, adaptive));
            op("adaptiveAvgPool2dBackward", "kiln_adaptive_avg_backward",
                    () -> b.adaptiveAvgPool2dBackward(ADAPTIVE, adaptive, adaptiveDx));
            op("adaptiveMaxPool2dForward", "kiln_adaptive_max_forward",
                    () -> b.adaptiveMaxPool2dForward(ADAPTIVE, bnY, adaptive, adaptiveIndices));
            op("adaptiveMaxPool2dBackward", "kiln_adaptive_max_backward",
                    () -> b.adaptiveMaxPool2dBackward(ADAPTIVE, adaptiveIndices, adaptive, adaptiveDx));
            op("upsampleNearest2dForward", "kiln_upsample_nearest_forward",
                    () -> b.upsampleNearest2dForward(UPSAMPLE, pooled, upsampled));
            op("upsampleNearest2dBackward", "kiln_upsample_nearest_backward",
                    () -> b.upsampleNearest2dBackward(UPSAMPLE, upsampled, pooled));
            op("softmaxCrossEntropyForward", "kiln_softmax_xent_rows + kiln_mean",
                    () -> b.softmaxCrossEntropyForward(rows, classes, logits, targets, probs, loss));
            op("softmaxCrossEntropyBackward", "kiln_softmax_xent_backward",
                    () -> b.softmaxCrossEntropyBackward(rows, classes, probs, targets, dLoss, dLogits));
            op("sgdStepMany", "kiln_sgd_many (momentum, device rate, guard)", () -> b.sgdStepMany(
                    new SgdHyper(0.01f, 0.9f, 0f, false, 1e-4f, true), lr, guard, skipped,
                    new Buffer[]{w, bias}, new Buffer[]{dw, db}, new Buffer[]{dx, dGamma},
                    new long[]{CONV.weightLength(), CONV.outChannels()}));
            op("adamStep", "kiln_adam", () -> b.adamStep(new AdamHyper(1e-3f, 0.9f, 0.999f, 1e-8f, 0f, true, 1),
                    w, dw, adamM, adamV, CONV.weightLength()));
            step("capture and replay", "cuStreamBeginCapture .. cuGraphInstantiate, two cuGraphLaunch", () -> {
                GraphCapture capture = b.beginCapture();
                try {
                    capture.recorder().conv2dForward(CONV, x, w, bias, y);
                    capture.recorder().activationForward(Activation.RELU, y, y, CONV.outputLength());
                    capture.recorder().softmaxCrossEntropyForward(rows, classes, logits, targets, probs, loss);
                } catch (RuntimeException | Error e) {
                    capture.abort(); // the next calls must not land in a capture that failed
                    throw e;
                }
                try (RecordedWork graph = capture.end()) {
                    graph.replay();
                    graph.replay();
                    b.synchronize();
                    return graph.operations() + " operations";
                }
            });
            step("download with the error flag", "cuMemcpyDtoHAsync of the loss and the flag, one wait", () -> {
                b.softmaxCrossEntropyForward(rows, classes, logits, targets, probs, loss);
                float[] l = new float[1];
                b.download(loss, 0, l, 0, 1);
                return "loss " + l[0];
            });
            step("error flag raised", "a bad target reported at the next download", () -> {
                if (!deviceHasContents) {
                    throw new Skip("the device memory has no contents here: the flag always reads 0");
                }
                try (Buffer bad = up(1f, 0f, 12f, 3f)) {
                    b.softmaxCrossEntropyForward(rows, classes, logits, bad, probs, loss);
                    try {
                        b.download(loss, 0, new float[1], 0, 1);
                    } catch (IllegalArgumentException expected) {
                        return expected.getMessage();
                    }
                }
                throw new IllegalStateException("a target of 12 with 10 classes was not reported");
            });
            step("every kernel launched", "each entry of the shipped PTX ran at least once", () -> {
                Set<String> missing = new TreeSet<>(b.kernelNames());
                synchronized (launched) {
                    missing.removeAll(launched);
                }
                if (!missing.isEmpty()) {
                    throw new IllegalStateException("never launched: " + missing);
                }
                return b.kernelNames().size() + " kernels";
            });
        } finally {
            for (Buffer buf : new Buffer[]{x, w, bias, y, dx, dw, db, gamma, beta, mean, invStd, runningMean,
                    runningVar, bnY, bnDx, dGamma, dBeta, pooled, poolDx, logits, targets, probs, loss, dLoss,
                    dLogits, gemmA, gemmB, gemmC, small, smallOut, row, wide, guard, skipped, lr, adamM, adamV, dwWeight, dwY, dwDx,
                    dwDw, adaptive, adaptiveIndices, adaptiveDx, upsampled, slice}) {
                try {
                    buf.close();
                } catch (RuntimeException e) {
                    out.accept(line("", "", "closing a buffer: " + e));
                }
            }
        }
    }

    /** Compares a small result where the device has contents; says so where it has none. */
    private String expect(Buffer got, float[] want) {
        float[] v = new float[want.length];
        backend.download(got, 0, v, 0, v.length);
        if (!deviceHasContents) {
            return "result not compared: no device memory contents here";
        }
        if (!Arrays.equals(v, want)) {
            throw new IllegalStateException("expected " + Arrays.toString(want) + ", got " + Arrays.toString(v));
        }
        return "result " + Arrays.toString(v);
    }
}
