package dev.kiln.cpu;

import dev.kiln.backend.Activation;
import dev.kiln.backend.AdamHyper;
import dev.kiln.backend.Backend;
import dev.kiln.backend.BatchNormGeometry;
import dev.kiln.backend.BinaryOp;
import dev.kiln.backend.Buffer;
import dev.kiln.backend.ConvGeometry;
import dev.kiln.backend.GraphCapture;
import dev.kiln.backend.RecordingBackend;
import dev.kiln.backend.PoolGeometry;
import dev.kiln.backend.ScalarOp;
import dev.kiln.backend.ArgumentChecks;
import dev.kiln.backend.SgdHyper;
import dev.kiln.backend.UnaryOp;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.Arrays;
import java.util.Objects;
import java.util.function.Supplier;

/**
 * The pure-Java reference backend. Work runs synchronously on the calling thread plus this instance's own
 * {@link Parallel} pool; per-thread scratch lives in this instance's {@code ThreadLocal}, so several instances with
 * different thread counts coexist and concurrent calls on independent outputs are safe.
 */
public final class CpuBackend implements Backend {

    private static final Logger LOG = LoggerFactory.getLogger(CpuBackend.class);

    private final int threads;
    private final Parallel par;
    private final ThreadLocal<Scratch> scratchLocal = ThreadLocal.withInitial(Scratch::new);
    private final Supplier<Scratch> scratch = scratchLocal::get;
    private final ArrayPool pool;
    private volatile boolean closed;
    private volatile CaptureReservation capturing;

    /** Default bound of the array pool: a quarter of the heap, at most 512 MiB ({@code -Dkiln.cpu.poolBytes}). */
    static long defaultPoolBytes() {
        String p = System.getProperty("kiln.cpu.poolBytes");
        if (p != null) {
            try {
                return Math.max(0L, Long.parseLong(p.trim()));
            } catch (NumberFormatException e) {
                LOG.warn("ignoring kiln.cpu.poolBytes={} (not a number)", p);
            }
        }
        return Math.min(512L << 20, Runtime.getRuntime().maxMemory() / 4);
    }

    public CpuBackend(int threads) {
        this(threads, defaultPoolBytes());
    }

    /** @param poolBytes bound of the pool of reusable arrays (0: no pool) */
    public CpuBackend(int threads, long poolBytes) {
        if (threads < 1) {
            throw new IllegalArgumentException("cpu backend: threads must be >= 1, got " + threads);
        }
        if (poolBytes < 0) {
            throw new IllegalArgumentException("cpu backend: poolBytes must be >= 0, got " + poolBytes);
        }
        this.threads = threads;
        this.par = new Parallel(threads);
        this.pool = new ArrayPool(poolBytes);
        LOG.debug("created cpu backend with {} threads", threads);
    }

    public int threads() {
        return threads;
    }

    /** Bytes of arrays the pool holds for reuse now. */
    public long pooledBytes() {
        return pool.pooledBytes();
    }

    @Override
    public String name() {
        return "cpu";
    }

    @Override
    public String description() {
        return "cpu (" + threads + (threads == 1 ? " thread, " : " threads, ") + SimdSupport.describe() + " kernels)";
    }

    // ---------------------------------------------------------------- validation

    private void open() {
        if (closed) {
            throw new IllegalStateException("cpu backend is closed");
        }
    }

    /** The array of {@code b}, checked to be an open buffer of this backend holding at least {@code need} floats. */
    private float[] arr(String op, String name, Buffer b, long need) {
        if (b == null) {
            throw new IllegalArgumentException(op + ": buffer '" + name + "' is null");
        }
        if (!(b instanceof CpuBuffer cb)) {
            throw new IllegalArgumentException(op + ": buffer '" + name + "' belongs to backend "
                    + describe(b) + ", not to this cpu backend");
        }
        if (cb.backend() != this) {
            throw new IllegalArgumentException(op + ": buffer '" + name + "' belongs to another cpu backend instance");
        }
        float[] a = cb.array();
        if (need < 0 || a.length < need) {
            throw new IllegalArgumentException(op + ": buffer '" + name + "' is too short: expected at least "
                    + need + " floats, found " + a.length);
        }
        return a;
    }

    /** Like {@link #arr} but null means absent. */
    private float[] opt(String op, String name, Buffer b, long need) {
        return b == null ? null : arr(op, name, b, need);
    }

    private static String describe(Buffer b) {
        try {
            Backend owner = b.backend();
            return owner == null ? b.getClass().getName() : owner.name();
        } catch (RuntimeException e) {
            return b.getClass().getName();
        }
    }

    private static int len(String op, long n) {
        if (n < 0 || n > CpuBuffer.MAX_LENGTH) {
            throw new IllegalArgumentException(op + ": element count must be in [0, " + CpuBuffer.MAX_LENGTH
                    + "], got " + n);
        }
        return (int) n;
    }

    private static void range(String op, String what, long offset, long length, long size) {
        if (offset < 0 || length < 0 || offset + length > size) {
            throw new IllegalArgumentException(op + ": " + what + " range [" + offset + ", " + (offset + length)
                    + ") is outside [0, " + size + ")");
        }
    }

    private static void checkShapes(String op, int[] outShape, int[]... shapes) {
        Objects.requireNonNull(outShape, op + ": shape is null");
        for (int d : outShape) {
            if (d < 0) {
                throw new IllegalArgumentException(op + ": negative dimension in " + Arrays.toString(outShape));
            }
        }
        for (int[] s : shapes) {
            Objects.requireNonNull(s, op + ": shape is null");
            if (s.length != outShape.length) {
                throw new IllegalArgumentException(op + ": shapes " + Arrays.toString(s) + " and "
                        + Arrays.toString(outShape) + " have different ranks (the caller left-pads with ones)");
            }
            for (int d = 0; d < s.length; d++) {
                if (s[d] != outShape[d] && s[d] != 1) {
                    throw new IllegalArgumentException(op + ": shape " + Arrays.toString(s)
                            + " does not broadcast to " + Arrays.toString(outShape) + " (dimension " + d + ")");
                }
            }
        }
    }

    // ---------------------------------------------------------------- memory

    @Override
    public Buffer allocate(long length) {
        open();
        return new CpuBuffer(this, pool.take(CpuBuffer.checkLength(length)), capturing);
    }

    @Override
    public Buffer allocateUninitialized(long length) {
        open();
        int n = CpuBuffer.checkLength(length);
        float[] a = pool.takeDirty(n);
        return new CpuBuffer(this, a != null ? a : new float[n], capturing);
    }

    @Override
    public Buffer upload(float[] src, int offset, int length) {
        open();
        Objects.requireNonNull(src, "upload: src is null");
        range("upload", "source", offset, length, src.length);
        float[] a = pool.takeDirty(length);
        if (a == null) {
            return new CpuBuffer(this, Arrays.copyOfRange(src, offset, offset + length), capturing);
        }
        System.arraycopy(src, offset, a, 0, length);
        return new CpuBuffer(this, a, capturing);
    }

    /** Called by {@link CpuBuffer#close()} with the array it no longer references. */
    void release(float[] array, CaptureReservation allocatedDuring) {
        if (closed) {
            return;
        }
        if (allocatedDuring != null && allocatedDuring.hold(array)) {
            return;
        }
        CaptureReservation now = capturing;
        if (now != null && now.hold(array)) {
            return;
        }
        pool.give(array);
    }

    /**
     * Graph capture by recording calls ({@link RecordingBackend}); one capture at a time per backend instance. While
     * it records, every freed array is held back from the pool, since the recording may still reference it.
     */
    @Override
    public GraphCapture beginCapture() {
        open();
        CaptureReservation r = new CaptureReservation();
        synchronized (this) {
            if (capturing != null) {
                throw new IllegalStateException("cpu backend: a graph capture is already in progress");
            }
            capturing = r;
        }
        return new RecordingBackend(this, b -> ((CpuBuffer) b).alias(), () -> {
            synchronized (this) {
                r.stopRecording();
                if (capturing == r) {
                    capturing = null;
                }
            }
        }, () -> r.releaseTo(pool));
    }

    /** One line about the array pool (for benchmarks and debugging). */
    public String poolStats() {
        return pool.stats();
    }

    @Override
    public void download(Buffer src, long srcOffset, float[] dst, int dstOffset, int length) {
        open();
        float[] s = arr("download", "src", src, 0);
        Objects.requireNonNull(dst, "download: dst is null");
        range("download", "source", srcOffset, length, s.length);
        range("download", "destination", dstOffset, length, dst.length);
        System.arraycopy(s, (int) srcOffset, dst, dstOffset, length);
    }

    @Override
    public void write(float[] src, int srcOffset, Buffer dst, long dstOffset, int length) {
        open();
        Objects.requireNonNull(src, "write: src is null");
        float[] d = arr("write", "dst", dst, 0);
        range("write", "source", srcOffset, length, src.length);
        range("write", "destination", dstOffset, length, d.length);
        System.arraycopy(src, srcOffset, d, (int) dstOffset, length);
    }

    @Override
    public void copy(Buffer src, long srcOffset, Buffer dst, long dstOffset, long length) {
        open();
        float[] s = arr("copy", "src", src, 0);
        float[] d = arr("copy", "dst", dst, 0);
        range("copy", "source", srcOffset, length, s.length);
        range("copy", "destination", dstOffset, length, d.length);
        System.arraycopy(s, (int) srcOffset, d, (int) dstOffset, (int) length);
    }

    @Override
    public void fill(Buffer dst, long offset, long length, float value) {
        open();
        float[] d = arr("fill", "dst", dst, 0);
        range("fill", "destination", offset, length, d.length);
        Arrays.fill(d, (int) offset, (int) (offset + length), value);
    }

    @Override
    public void gatherRows(Buffer src, int rowLength, int[] rows, Buffer dst) {
        open();
        Objects.requireNonNull(rows, "gatherRows: rows is null");
        if (rowLength < 0) {
            throw new IllegalArgumentException("gatherRows: rowLength must be >= 0, got " + rowLength);
        }
        float[] s = arr("gatherRows", "src", src, 0);
        float[] d = arr("gatherRows", "dst", dst, (long) rows.length * rowLength);
        long srcRows = rowLength == 0 ? Long.MAX_VALUE : s.length / rowLength;
        for (int i = 0; i < rows.length; i++) {
            if (rows[i] < 0 || rows[i] >= srcRows) {
                throw new IllegalArgumentException("gatherRows: row index " + rows[i] + " at position " + i
                        + " is outside [0, " + srcRows + ")");
            }
        }
        for (int i = 0; i < rows.length; i++) {
            System.arraycopy(s, rows[i] * rowLength, d, i * rowLength, rowLength);
        }
    }

    @Override
    public void synchronize() {
        open();
    }

    // ---------------------------------------------------------------- element-wise

    @Override
    public void unary(UnaryOp op, Buffer x, Buffer y, long n) {
        open();
        int len = len("unary", n);
        ElementwiseKernels.unary(Objects.requireNonNull(op, "unary: op is null"),
                arr("unary", "x", x, len), arr("unary", "y", y, len), len, par);
    }

    @Override
    public void scalar(ScalarOp op, Buffer x, float s, Buffer y, long n) {
        open();
        int len = len("scalar", n);
        ElementwiseKernels.scalar(Objects.requireNonNull(op, "scalar: op is null"),
                arr("scalar", "x", x, len), s, arr("scalar", "y", y, len), len, par);
    }

    @Override
    public void binary(BinaryOp op, Buffer a, int[] aShape, Buffer b, int[] bShape, Buffer out, int[] outShape) {
        open();
        Objects.requireNonNull(op, "binary: op is null");
        checkShapes("binary", outShape, aShape, bShape);
        ElementwiseKernels.binary(op, arr("binary", "a", a, BroadcastPlan.volume(aShape)), aShape,
                arr("binary", "b", b, BroadcastPlan.volume(bShape)), bShape,
                arr("binary", "out", out, BroadcastPlan.volume(outShape)), outShape, par);
    }

    @Override
    public void axpy(float alpha, Buffer x, Buffer y, long n) {
        open();
        int len = len("axpy", n);
        ElementwiseKernels.axpy(alpha, arr("axpy", "x", x, len), arr("axpy", "y", y, len), len, par);
    }

    // ---------------------------------------------------------------- reductions and broadcasting

    @Override
    public void sumTo(Buffer x, int[] xShape, Buffer out, int[] outShape) {
        open();
        checkShapes("sumTo", xShape, outShape);
        ReductionKernels.sumTo(arr("sumTo", "x", x, BroadcastPlan.volume(xShape)), xShape,
                arr("sumTo", "out", out, BroadcastPlan.volume(outShape)), outShape, scratch.get());
    }

    @Override
    public void broadcastTo(Buffer x, int[] xShape, Buffer out, int[] outShape) {
        open();
        checkShapes("broadcastTo", outShape, xShape);
        ReductionKernels.broadcastTo(arr("broadcastTo", "x", x, BroadcastPlan.volume(xShape)), xShape,
                arr("broadcastTo", "out", out, BroadcastPlan.volume(outShape)), outShape, par);
    }

    @Override
    public void argmax(Buffer x, int outer, int extent, int inner, Buffer out) {
        open();
        if (outer < 0 || extent < 1 || inner < 0) {
            throw new IllegalArgumentException("argmax: need outer >= 0, extent >= 1, inner >= 0, got ("
                    + outer + "," + extent + "," + inner + ")");
        }
        ReductionKernels.argmax(arr("argmax", "x", x, (long) outer * extent * inner), outer, extent, inner,
                arr("argmax", "out", out, (long) outer * inner));
    }

    // ---------------------------------------------------------------- dense

    @Override
    public void gemm(boolean transA, boolean transB, int m, int n, int k,
                     float alpha, Buffer a, Buffer b, float beta, Buffer c) {
        open();
        if (m < 0 || n < 0 || k < 0) {
            throw new IllegalArgumentException("gemm: m, n, k must be >= 0, got (" + m + "," + n + "," + k + ")");
        }
        float[] aa = arr("gemm", "a", a, (long) m * k);
        float[] bb = arr("gemm", "b", b, (long) k * n);
        float[] cc = arr("gemm", "c", c, (long) m * n);
        int lda = transA ? m : k;
        int ldb = transB ? k : n;
        long flops = 2L * m * n * k;
        if (flops < (1L << 19) || par.inline()) {
            Sgemm.gemm(transA, transB, m, n, k, alpha, aa, 0, lda, bb, 0, ldb, beta, cc, 0, n, scratch.get());
            return;
        }
        if (m >= 8 * threads || m >= n) {
            // split rows of C in blocks of 4
            int blocks = (m + 3) / 4;
            par.parallelFor(blocks, 1, (lo, hi) -> {
                int i0 = lo * 4, i1 = Math.min(m, hi * 4);
                int aOff = transA ? i0 : i0 * lda;
                Sgemm.gemm(transA, transB, i1 - i0, n, k, alpha, aa, aOff, lda, bb, 0, ldb, beta, cc, i0 * n, n,
                        scratch.get());
            });
        } else {
            // split columns of C in blocks of 16
            int blocks = (n + 15) / 16;
            par.parallelFor(blocks, 1, (lo, hi) -> {
                int j0 = lo * 16, j1 = Math.min(n, hi * 16);
                int bOff = transB ? j0 * ldb : j0;
                Sgemm.gemm(transA, transB, m, j1 - j0, k, alpha, aa, 0, lda, bb, bOff, ldb, beta, cc, j0, n,
                        scratch.get());
            });
        }
    }

    // ---------------------------------------------------------------- convolution

    @Override
    public void conv2dForward(ConvGeometry g, Buffer x, Buffer w, Buffer bias, Buffer y) {
        open();
        Objects.requireNonNull(g, "conv2dForward: geometry is null");
        Conv2dKernels.forward(g, arr("conv2dForward", "x", x, g.inputLength()),
                arr("conv2dForward", "w", w, g.weightLength()),
                opt("conv2dForward", "bias", bias, g.outChannels()),
                arr("conv2dForward", "y", y, g.outputLength()), par, scratch);
    }

    @Override
    public void conv2dBackwardData(ConvGeometry g, Buffer w, Buffer dy, Buffer dx) {
        open();
        Objects.requireNonNull(g, "conv2dBackwardData: geometry is null");
        Conv2dKernels.backwardData(g, arr("conv2dBackwardData", "w", w, g.weightLength()),
                arr("conv2dBackwardData", "dy", dy, g.outputLength()),
                arr("conv2dBackwardData", "dx", dx, g.inputLength()), par, scratch);
    }

    @Override
    public void conv2dBackwardWeight(ConvGeometry g, Buffer x, Buffer dy, Buffer dw) {
        open();
        Objects.requireNonNull(g, "conv2dBackwardWeight: geometry is null");
        Conv2dKernels.backwardWeight(g, arr("conv2dBackwardWeight", "x", x, g.inputLength()),
                arr("conv2dBackwardWeight", "dy", dy, g.outputLength()),
                arr("conv2dBackwardWeight", "dw", dw, g.weightLength()), par, scratch);
    }

    @Override
    public void conv2dBackwardBias(ConvGeometry g, Buffer dy, Buffer db) {
        open();
        Objects.requireNonNull(g, "conv2dBackwardBias: geometry is null");
        Conv2dKernels.backwardBias(g, arr("conv2dBackwardBias", "dy", dy, g.outputLength()),
                arr("conv2dBackwardBias", "db", db, g.outChannels()), par);
    }

    // ---------------------------------------------------------------- batch normalization

    @Override
    public void batchNormForwardTraining(BatchNormGeometry g, Buffer x, Buffer gamma, Buffer beta, float eps,
                                         Buffer y, Buffer saveMean, Buffer saveInvStd) {
        open();
        String op = "batchNormForwardTraining";
        Objects.requireNonNull(g, op + ": geometry is null");
        int c = g.channels();
        BatchNormKernels.forwardTraining(g, arr(op, "x", x, g.length()), opt(op, "gamma", gamma, c),
                opt(op, "beta", beta, c), eps, arr(op, "y", y, g.length()), arr(op, "saveMean", saveMean, c),
                arr(op, "saveInvStd", saveInvStd, c), par);
    }

    @Override
    public void batchNormForwardInference(BatchNormGeometry g, Buffer x, Buffer gamma, Buffer beta,
                                          Buffer mean, Buffer var, float eps, Buffer y) {
        open();
        String op = "batchNormForwardInference";
        Objects.requireNonNull(g, op + ": geometry is null");
        int c = g.channels();
        BatchNormKernels.forwardInference(g, arr(op, "x", x, g.length()), opt(op, "gamma", gamma, c),
                opt(op, "beta", beta, c), arr(op, "mean", mean, c), arr(op, "var", var, c), eps,
                arr(op, "y", y, g.length()), par);
    }

    @Override
    public void batchNormInferenceActivation(BatchNormGeometry g, Activation a, Buffer x, Buffer gamma, Buffer beta,
                                             Buffer mean, Buffer var, float eps, Buffer y) {
        open();
        String op = "batchNormInferenceActivation";
        Objects.requireNonNull(g, op + ": geometry is null");
        Objects.requireNonNull(a, op + ": activation is null");
        int c = g.channels();
        BatchNormKernels.forwardInferenceActivation(g, a, arr(op, "x", x, g.length()), opt(op, "gamma", gamma, c),
                opt(op, "beta", beta, c), arr(op, "mean", mean, c), arr(op, "var", var, c), eps,
                arr(op, "y", y, g.length()), par);
    }

    @Override
    public void batchNormBackward(BatchNormGeometry g, Buffer x, Buffer dy, Buffer gamma,
                                  Buffer saveMean, Buffer saveInvStd, Buffer dx, Buffer dGamma, Buffer dBeta) {
        open();
        String op = "batchNormBackward";
        Objects.requireNonNull(g, op + ": geometry is null");
        int c = g.channels();
        BatchNormKernels.backward(g, arr(op, "x", x, g.length()), arr(op, "dy", dy, g.length()),
                opt(op, "gamma", gamma, c), arr(op, "saveMean", saveMean, c), arr(op, "saveInvStd", saveInvStd, c),
                opt(op, "dx", dx, g.length()), opt(op, "dGamma", dGamma, c), opt(op, "dBeta", dBeta, c), par);
    }

    @Override
    public void batchNormUpdateRunningStats(BatchNormGeometry g, Buffer saveMean, Buffer saveInvStd, float eps,
                                            double factor, Buffer runningMean, Buffer runningVar, Buffer guard,
                                            Buffer skipped) {
        open();
        String op = "batchNormUpdateRunningStats";
        Objects.requireNonNull(g, op + ": geometry is null");
        int c = g.channels();
        float[] mean = arr(op, "saveMean", saveMean, c);
        float[] invStd = arr(op, "saveInvStd", saveInvStd, c);
        float[] rm = arr(op, "runningMean", runningMean, c);
        float[] rv = arr(op, "runningVar", runningVar, c);
        float[] guardArray = opt(op, "guard", guard, 1);
        float[] skippedArray = opt(op, "skipped", skipped, 1);
        if (guardArray != null && !Float.isFinite(guardArray[0])) {
            if (g.valuesPerChannel() < 2) {
                BatchNormKernels.updateRunningStats(g, mean, invStd, eps, factor, rm, rv);   // throws: bad geometry
            }
            if (skippedArray != null) {
                skippedArray[0] += 1f;
            }
            return;
        }
        BatchNormKernels.updateRunningStats(g, mean, invStd, eps, factor, rm, rv);
    }

    // ---------------------------------------------------------------- pooling

    @Override
    public void avgPool2dForward(PoolGeometry g, Buffer x, Buffer y) {
        open();
        Objects.requireNonNull(g, "avgPool2dForward: geometry is null");
        PoolKernels.avgForward(g, arr("avgPool2dForward", "x", x, g.inputLength()),
                arr("avgPool2dForward", "y", y, g.outputLength()), par);
    }

    @Override
    public void avgPool2dBackward(PoolGeometry g, Buffer dy, Buffer dx) {
        open();
        Objects.requireNonNull(g, "avgPool2dBackward: geometry is null");
        PoolKernels.avgBackward(g, arr("avgPool2dBackward", "dy", dy, g.outputLength()),
                arr("avgPool2dBackward", "dx", dx, g.inputLength()), par);
    }

    @Override
    public void maxPool2dForward(PoolGeometry g, Buffer x, Buffer y) {
        open();
        Objects.requireNonNull(g, "maxPool2dForward: geometry is null");
        PoolKernels.maxForward(g, arr("maxPool2dForward", "x", x, g.inputLength()),
                arr("maxPool2dForward", "y", y, g.outputLength()), par);
    }

    @Override
    public void maxPool2dBackward(PoolGeometry g, Buffer x, Buffer y, Buffer dy, Buffer dx) {
        open();
        Objects.requireNonNull(g, "maxPool2dBackward: geometry is null");
        String op = "maxPool2dBackward";
        PoolKernels.maxBackward(g, arr(op, "x", x, g.inputLength()), arr(op, "y", y, g.outputLength()),
                arr(op, "dy", dy, g.outputLength()), arr(op, "dx", dx, g.inputLength()), par);
    }

    // ---------------------------------------------------------------- activations and softmax

    @Override
    public void activationForward(Activation a, Buffer x, Buffer y, long n) {
        open();
        int len = len("activationForward", n);
        ActivationKernels.forward(Objects.requireNonNull(a, "activationForward: activation is null"),
                arr("activationForward", "x", x, len), arr("activationForward", "y", y, len), len, par);
    }

    @Override
    public void biasActivation(Activation a, int outer, int channels, int inner, Buffer x, Buffer bias, Buffer y) {
        open();
        String op = "biasActivation";
        Objects.requireNonNull(a, op + ": activation is null");
        long n = ArgumentChecks.biasActivationLength(op, outer, channels, inner);
        int len = len(op, n);
        ActivationKernels.biasActivation(a, outer, channels, inner, arr(op, "x", x, len), arr(op, "bias", bias, channels),
                arr(op, "y", y, len), par);
    }


    @Override
    public void activationBackward(Activation a, Buffer x, Buffer y, Buffer dy, Buffer dx, long n) {
        open();
        String op = "activationBackward";
        int len = len(op, n);
        // every supported activation's derivative is computed from the forward output y; x is not read
        ActivationKernels.backward(Objects.requireNonNull(a, op + ": activation is null"),
                opt(op, "x", x, len), arr(op, "y", y, len), arr(op, "dy", dy, len), arr(op, "dx", dx, len), len, par);
    }

    private static void checkMatrix(String op, int rows, int cols) {
        if (rows < 0 || cols < 1) {
            throw new IllegalArgumentException(op + ": need rows >= 0 and columns >= 1, got (" + rows + "," + cols + ")");
        }
    }

    @Override
    public void softmaxForward(int rows, int cols, Buffer x, Buffer y) {
        open();
        checkMatrix("softmaxForward", rows, cols);
        long len = (long) rows * cols;
        SoftmaxKernels.forward(rows, cols, arr("softmaxForward", "x", x, len), arr("softmaxForward", "y", y, len), par);
    }

    @Override
    public void softmaxBackward(int rows, int cols, Buffer y, Buffer dy, Buffer dx) {
        open();
        checkMatrix("softmaxBackward", rows, cols);
        long len = (long) rows * cols;
        SoftmaxKernels.backward(rows, cols, arr("softmaxBackward", "y", y, len), arr("softmaxBackward", "dy", dy, len),
                arr("softmaxBackward", "dx", dx, len), par);
    }

    @Override
    public void softmaxCrossEntropyForward(int rows, int classes, Buffer logits, Buffer targets, Buffer probs,
                                           Buffer loss) {
        open();
        String op = "softmaxCrossEntropyForward";
        checkMatrix(op, rows, classes);
        if (rows < 1) {
            throw new IllegalArgumentException(op + ": the mean over rows needs at least one row, got 0");
        }
        long len = (long) rows * classes;
        SoftmaxKernels.crossEntropyForward(rows, classes, arr(op, "logits", logits, len),
                arr(op, "targets", targets, rows), arr(op, "probs", probs, len), arr(op, "loss", loss, 1));
    }

    @Override
    public void softmaxCrossEntropyBackward(int rows, int classes, Buffer probs, Buffer targets, Buffer dLoss,
                                            Buffer dLogits) {
        open();
        String op = "softmaxCrossEntropyBackward";
        checkMatrix(op, rows, classes);
        if (rows < 1) {
            throw new IllegalArgumentException(op + ": the mean over rows needs at least one row, got 0");
        }
        long len = (long) rows * classes;
        SoftmaxKernels.crossEntropyBackward(rows, classes, arr(op, "probs", probs, len),
                arr(op, "targets", targets, rows), arr(op, "dLoss", dLoss, 1), arr(op, "dLogits", dLogits, len));
    }

    // ---------------------------------------------------------------- optimizers

    @Override
    public void sgdStep(SgdHyper h, Buffer param, Buffer grad, Buffer momentumBuffer, long n) {
        open();
        Objects.requireNonNull(h, "sgdStep: hyper-parameters are null");
        int len = len("sgdStep", n);
        float[] buf = h.momentum() == 0f ? opt("sgdStep", "momentumBuffer", momentumBuffer, len)
                : arr("sgdStep", "momentumBuffer", momentumBuffer, len);
        OptimizerKernels.sgd(h, arr("sgdStep", "param", param, len), arr("sgdStep", "grad", grad, len), buf, len, par);
    }

    @Override
    public void sgdStepMany(SgdHyper h, Buffer lr, Buffer guard, Buffer skipped,
                            Buffer[] params, Buffer[] grads, Buffer[] momentumBuffers, long[] lengths) {
        open();
        String op = "sgdStepMany";
        Objects.requireNonNull(h, op + ": hyper-parameters are null");
        int count = ArgumentChecks.sgdGroup(op, h, params, grads, momentumBuffers, lengths);
        float[][] p = new float[count][];
        float[][] g = new float[count][];
        float[][] b = new float[count][];
        int[] n = new int[count];
        for (int i = 0; i < count; i++) {
            n[i] = len(op, lengths[i]);
            p[i] = arr(op, "params[" + i + "]", params[i], n[i]);
            g[i] = arr(op, "grads[" + i + "]", grads[i], n[i]);
            Buffer m = momentumBuffers == null ? null : momentumBuffers[i];
            b[i] = h.momentum() == 0f ? opt(op, "momentumBuffers[" + i + "]", m, n[i])
                    : arr(op, "momentumBuffers[" + i + "]", m, n[i]);
        }
        float[] lrArray = opt(op, "lr", lr, 1);
        float[] guardArray = opt(op, "guard", guard, 1);
        float[] skippedArray = opt(op, "skipped", skipped, 1);
        if (guardArray != null && !Float.isFinite(guardArray[0])) {
            if (skippedArray != null) {
                skippedArray[0] += 1f;
            }
            return;
        }
        SgdHyper step = lrArray == null ? h
                : new SgdHyper(lrArray[0], h.momentum(), h.dampening(), h.nesterov(), h.weightDecay(), h.firstStep());
        for (int i = 0; i < count; i++) {
            OptimizerKernels.sgd(step, p[i], g[i], b[i], n[i], par);
        }
    }

    @Override
    public void adamStep(AdamHyper h, Buffer param, Buffer grad, Buffer expAvg, Buffer expAvgSq, long n) {
        open();
        Objects.requireNonNull(h, "adamStep: hyper-parameters are null");
        int len = len("adamStep", n);
        OptimizerKernels.adam(h, arr("adamStep", "param", param, len), arr("adamStep", "grad", grad, len),
                arr("adamStep", "expAvg", expAvg, len), arr("adamStep", "expAvgSq", expAvgSq, len), len, par);
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        par.close();
        pool.clear();
        LOG.debug("closed cpu backend ({} threads)", threads);
    }

    @Override
    public String toString() {
        return description();
    }
}
