package dev.kiln.cpu;

import dev.kiln.backend.Activation;
import dev.kiln.backend.AdamHyper;
import dev.kiln.backend.Backend;
import dev.kiln.backend.BatchNormGeometry;
import dev.kiln.backend.BinaryOp;
import dev.kiln.backend.Buffer;
import dev.kiln.backend.AdaptivePoolGeometry;
import dev.kiln.backend.ConvGeometry;
import dev.kiln.backend.UpsampleGeometry;
import dev.kiln.backend.GraphCapture;
import dev.kiln.backend.RecordingBackend;
import dev.kiln.backend.PoolGeometry;
import dev.kiln.backend.ScalarOp;
import dev.kiln.backend.BackendChecks;
import dev.kiln.backend.SgdHyper;
import dev.kiln.backend.UnaryOp;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.Arrays;
import java.util.function.Supplier;

/**
 * The pure-Java reference backend. Work runs synchronously on the calling thread plus this instance's own
 * {@link Parallel} pool; per-thread scratch lives in this instance's {@code ThreadLocal}, so several instances with
 * different thread counts coexist and concurrent calls on independent outputs are safe.
 */
public final class CpuBackend implements Backend {

    private static final Logger LOG = LoggerFactory.getLogger(CpuBackend.class);

    /** Columns of C per chunk of a GEMM with a transposed B: two vectors of 16 floats, the SIMD kernel's width. */
    private static final int TRANSPOSED_B_COLUMNS = 32;

    private final int threads;
    private final Parallel par;
    private final Scratch.PerThread scratch = new Scratch.PerThread();
    private final ArrayPool pool;
    private final BackendChecks check = new BackendChecks(this);
    private volatile boolean closed;
    private volatile CaptureReservation capturing;
    /** Bytes of arrays held by open buffers, their high-water mark, and the bytes of arrays the pool could not supply. */
    private final java.util.concurrent.atomic.AtomicLong outstandingBytes = new java.util.concurrent.atomic.AtomicLong();
    private final java.util.concurrent.atomic.AtomicLong peakOutstandingBytes = new java.util.concurrent.atomic.AtomicLong();
    private final java.util.concurrent.atomic.AtomicLong freshBytes = new java.util.concurrent.atomic.AtomicLong();

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

    /**
     * The array of a buffer {@link BackendChecks} has accepted, or null for an absent optional one; every op takes its
     * arrays through here, which is also where a closed backend refuses work.
     */
    private float[] arr(Buffer b) {
        open();
        return b == null ? null : ((CpuBuffer) b).array();
    }

    // ---------------------------------------------------------------- memory

    @Override
    public Buffer allocate(long length) {
        open();
        check.allocate(length);
        int n = CpuBuffer.checkLength(length);
        float[] a = pool.takeDirty(n);
        if (a == null) {
            a = fresh(n);
        } else {
            Arrays.fill(a, 0f);
        }
        return handOut(a);
    }

    @Override
    public Buffer allocateUninitialized(long length) {
        open();
        check.allocateUninitialized(length);
        int n = CpuBuffer.checkLength(length);
        float[] a = pool.takeDirty(n);
        return handOut(a != null ? a : fresh(n));
    }

    @Override
    public Buffer upload(float[] src, int offset, int length) {
        open();
        check.upload(src, offset, length);
        float[] a = pool.takeDirty(length);
        if (a == null) {
            a = fresh(length);
        }
        System.arraycopy(src, offset, a, 0, length);
        return handOut(a);
    }

    private float[] fresh(int length) {
        freshBytes.addAndGet(4L * length);
        return new float[length];
    }

    private CpuBuffer handOut(float[] a) {
        long now = outstandingBytes.addAndGet(4L * a.length);
        long peak;
        while (now > (peak = peakOutstandingBytes.get()) && !peakOutstandingBytes.compareAndSet(peak, now)) {
            // raised by another thread meanwhile; compare again
        }
        return new CpuBuffer(this, a, capturing);
    }

    /** Bytes of arrays held by open buffers of this backend now. */
    public long outstandingBytes() {
        return outstandingBytes.get();
    }

    /** The most bytes open buffers held at once since the backend was created or {@link #resetPeakOutstanding()}. */
    public long peakOutstandingBytes() {
        return peakOutstandingBytes.get();
    }

    /** Starts a new high-water mark of {@link #outstandingBytes()} at the bytes held now. */
    public void resetPeakOutstanding() {
        peakOutstandingBytes.set(outstandingBytes.get());
    }

    /** Bytes of arrays allocated because the pool had none of the length asked (the rest were reused). */
    public long freshBytes() {
        return freshBytes.get();
    }

    /** Called by {@link CpuBuffer#close()} with the array it no longer references. */
    void release(float[] array, CaptureReservation allocatedDuring) {
        outstandingBytes.addAndGet(-4L * array.length);
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
        check.download(src, srcOffset, dst, dstOffset, length);
        System.arraycopy(arr(src), (int) srcOffset, dst, dstOffset, length);
    }

    @Override
    public void write(float[] src, int srcOffset, Buffer dst, long dstOffset, int length) {
        check.write(src, srcOffset, dst, dstOffset, length);
        System.arraycopy(src, srcOffset, arr(dst), (int) dstOffset, length);
    }

    @Override
    public void copy(Buffer src, long srcOffset, Buffer dst, long dstOffset, long length) {
        check.copy(src, srcOffset, dst, dstOffset, length);
        System.arraycopy(arr(src), (int) srcOffset, arr(dst), (int) dstOffset, (int) length);
    }

    @Override
    public void fill(Buffer dst, long offset, long length, float value) {
        check.fill(dst, offset, length, value);
        Arrays.fill(arr(dst), (int) offset, (int) (offset + length), value);
    }

    @Override
    public void gatherRows(Buffer src, int rowLength, int[] rows, Buffer dst) {
        check.gatherRows(src, rowLength, rows, dst);
        float[] s = arr(src);
        float[] d = arr(dst);
        for (int i = 0; i < rows.length; i++) {
            System.arraycopy(s, rows[i] * rowLength, d, i * rowLength, rowLength);
        }
    }

    @Override
    public void copySlice(Buffer src, int outer, int srcExtent, int srcStart, Buffer dst, int dstExtent, int dstStart,
                          int length, int inner) {
        check.copySlice(src, outer, srcExtent, srcStart, dst, dstExtent, dstStart, length, inner);
        ShapeKernels.copySlice(arr(src), outer, srcExtent, srcStart, arr(dst), dstExtent, dstStart, length, inner, par);
    }

    @Override
    public void synchronize() {
        open();
    }

    // ---------------------------------------------------------------- element-wise

    @Override
    public void unary(UnaryOp op, Buffer x, Buffer y, long n) {
        check.unary(op, x, y, n);
        ElementwiseKernels.unary(op, arr(x), arr(y), (int) n, par);
    }

    @Override
    public void scalar(ScalarOp op, Buffer x, float s, Buffer y, long n) {
        check.scalar(op, x, s, y, n);
        ElementwiseKernels.scalar(op, arr(x), s, arr(y), (int) n, par);
    }

    @Override
    public void binary(BinaryOp op, Buffer a, int[] aShape, Buffer b, int[] bShape, Buffer out, int[] outShape) {
        check.binary(op, a, aShape, b, bShape, out, outShape);
        ElementwiseKernels.binary(op, arr(a), aShape, arr(b), bShape, arr(out), outShape, par);
    }

    @Override
    public void axpy(float alpha, Buffer x, Buffer y, long n) {
        check.axpy(alpha, x, y, n);
        ElementwiseKernels.axpy(alpha, arr(x), arr(y), (int) n, par);
    }

    // ---------------------------------------------------------------- reductions and broadcasting

    @Override
    public void sumTo(Buffer x, int[] xShape, Buffer out, int[] outShape) {
        check.sumTo(x, xShape, out, outShape);
        ReductionKernels.sumTo(arr(x), xShape, arr(out), outShape, scratch.get());
    }

    @Override
    public void broadcastTo(Buffer x, int[] xShape, Buffer out, int[] outShape) {
        check.broadcastTo(x, xShape, out, outShape);
        ReductionKernels.broadcastTo(arr(x), xShape, arr(out), outShape, par);
    }

    @Override
    public void argmax(Buffer x, int outer, int extent, int inner, Buffer out) {
        check.argmax(x, outer, extent, inner, out);
        ReductionKernels.argmax(arr(x), outer, extent, inner, arr(out));
    }

    // ---------------------------------------------------------------- dense

    @Override
    public void gemm(boolean transA, boolean transB, int m, int n, int k,
                     float alpha, Buffer a, Buffer b, float beta, Buffer c) {
        check.gemm(transA, transB, m, n, k, alpha, a, b, beta, c);
        float[] aa = arr(a);
        float[] bb = arr(b);
        float[] cc = arr(c);
        int lda = transA ? m : k;
        int ldb = transB ? k : n;
        long flops = 2L * m * n * k;
        if (flops < (1L << 19) || par.inline()) {
            Sgemm.gemm(transA, transB, m, n, k, alpha, aa, 0, lda, bb, 0, ldb, beta, cc, 0, n, scratch.get());
            return;
        }
        if (transB && n >= 2 * TRANSPOSED_B_COLUMNS) {
            // x W^T (a Linear layer): split columns of C, so each chunk packs only its own rows of B
            int blocks = (n + TRANSPOSED_B_COLUMNS - 1) / TRANSPOSED_B_COLUMNS;
            par.parallelFor(blocks, 1, (lo, hi) -> {
                int j0 = lo * TRANSPOSED_B_COLUMNS, j1 = Math.min(n, hi * TRANSPOSED_B_COLUMNS);
                Sgemm.gemm(transA, true, m, j1 - j0, k, alpha, aa, 0, lda, bb, j0 * ldb, ldb, beta, cc, j0, n,
                        scratch.get());
            });
            return;
        }
        if (m >= 8 * threads || m >= n) {
            // split rows of C in blocks of 4; a transposed B is transposed here once for all chunks (the kernels read
            // the same values in the same order from either layout, so the result is the same bit for bit)
            float[] bRows = transB ? scratch.get().transposedB(k * n) : bb;
            int ldbRows = transB ? n : ldb;
            if (transB) {
                par.parallelFor((k + 15) / 16, 1, (lo, hi) -> Sgemm.transpose(bb, n, k, bRows, lo * 16,
                        Math.min(k, hi * 16)));
            }
            int blocks = (m + 3) / 4;
            par.parallelFor(blocks, 1, (lo, hi) -> {
                int i0 = lo * 4, i1 = Math.min(m, hi * 4);
                int aOff = transA ? i0 : i0 * lda;
                Sgemm.gemm(transA, false, i1 - i0, n, k, alpha, aa, aOff, lda, bRows, 0, ldbRows, beta, cc, i0 * n,
                        n, scratch.get());
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
        check.conv2dForward(g, x, w, bias, y);
        if (DepthwiseConvKernels.applies(g)) {
            DepthwiseConvKernels.forward(g, arr(x), arr(w), arr(bias), arr(y), par);
            return;
        }
        if (g.groups() > 1) {
            GroupedConvKernels.forward(g, arr(x), arr(w), arr(bias), arr(y), par);
            return;
        }
        Conv2dKernels.forward(g, arr(x), arr(w), arr(bias), arr(y), par, scratch);
    }

    @Override
    public void conv2dBackwardData(ConvGeometry g, Buffer w, Buffer dy, Buffer dx) {
        check.conv2dBackwardData(g, w, dy, dx);
        if (DepthwiseConvKernels.applies(g)) {
            DepthwiseConvKernels.backwardData(g, arr(w), arr(dy), arr(dx), par);
            return;
        }
        if (g.groups() > 1) {
            GroupedConvKernels.backwardData(g, arr(w), arr(dy), arr(dx), par);
            return;
        }
        Conv2dKernels.backwardData(g, arr(w), arr(dy), arr(dx), par, scratch);
    }

    @Override
    public void conv2dBackwardWeight(ConvGeometry g, Buffer x, Buffer dy, Buffer dw) {
        check.conv2dBackwardWeight(g, x, dy, dw);
        if (DepthwiseConvKernels.applies(g)) {
            DepthwiseConvKernels.backwardWeight(g, arr(x), arr(dy), arr(dw), par);
            return;
        }
        if (g.groups() > 1) {
            GroupedConvKernels.backwardWeight(g, arr(x), arr(dy), arr(dw), par);
            return;
        }
        Conv2dKernels.backwardWeight(g, arr(x), arr(dy), arr(dw), par, scratch);
    }

    @Override
    public void conv2dBackwardBias(ConvGeometry g, Buffer dy, Buffer db) {
        check.conv2dBackwardBias(g, dy, db);
        Conv2dKernels.backwardBias(g, arr(dy), arr(db), par);
    }

    // ---------------------------------------------------------------- batch normalization

    @Override
    public void batchNormForwardTraining(BatchNormGeometry g, Buffer x, Buffer gamma, Buffer beta, float eps,
                                         Buffer y, Buffer saveMean, Buffer saveInvStd) {
        check.batchNormForwardTraining(g, x, gamma, beta, eps, y, saveMean, saveInvStd);
        BatchNormKernels.forwardTraining(g, arr(x), arr(gamma), arr(beta), eps, arr(y), arr(saveMean),
                arr(saveInvStd), par);
    }

    @Override
    public void batchNormForwardInference(BatchNormGeometry g, Activation a, Buffer x, Buffer gamma, Buffer beta,
                                          Buffer mean, Buffer var, float eps, Buffer y) {
        check.batchNormForwardInference(g, a, x, gamma, beta, mean, var, eps, y);
        BatchNormKernels.forwardInference(g, a, arr(x), arr(gamma), arr(beta), arr(mean), arr(var), eps, arr(y), par);
    }

    @Override
    public void batchNormBackward(BatchNormGeometry g, Buffer x, Buffer dy, Buffer gamma,
                                  Buffer saveMean, Buffer saveInvStd, Buffer dx, Buffer dGamma, Buffer dBeta) {
        check.batchNormBackward(g, x, dy, gamma, saveMean, saveInvStd, dx, dGamma, dBeta);
        BatchNormKernels.backward(g, arr(x), arr(dy), arr(gamma), arr(saveMean), arr(saveInvStd), arr(dx),
                arr(dGamma), arr(dBeta), par);
    }

    @Override
    public void batchNormActivationForwardTraining(BatchNormGeometry g, Activation a, Buffer x, Buffer gamma,
                                                   Buffer beta, float eps, Buffer y, Buffer saveMean,
                                                   Buffer saveInvStd) {
        check.batchNormActivationForwardTraining(g, a, x, gamma, beta, eps, y, saveMean, saveInvStd);
        BatchNormKernels.forwardTraining(g, a, arr(x), arr(gamma), arr(beta), eps, arr(y), arr(saveMean),
                arr(saveInvStd), par);
    }

    @Override
    public void batchNormActivationBackward(BatchNormGeometry g, Activation a, Buffer x, Buffer y, Buffer dy,
                                            Buffer gamma, Buffer saveMean, Buffer saveInvStd, Buffer dx,
                                            Buffer dGamma, Buffer dBeta) {
        check.batchNormActivationBackward(g, a, x, y, dy, gamma, saveMean, saveInvStd, dx, dGamma, dBeta);
        BatchNormKernels.backward(g, a, arr(x), arr(y), arr(dy), arr(gamma), arr(saveMean), arr(saveInvStd), arr(dx),
                arr(dGamma), arr(dBeta), par);
    }

    @Override
    public void batchNormUpdateRunningStats(BatchNormGeometry g, Buffer saveMean, Buffer saveInvStd, float eps,
                                            double factor, Buffer runningMean, Buffer runningVar, Buffer guard,
                                            Buffer skipped) {
        check.batchNormUpdateRunningStats(g, saveMean, saveInvStd, eps, factor, runningMean, runningVar, guard, skipped);
        float[] guardArray = arr(guard);
        if (guardArray != null && !Float.isFinite(guardArray[0])) {
            float[] skippedArray = arr(skipped);
            if (skippedArray != null) {
                skippedArray[0] += 1f;
            }
            return;
        }
        BatchNormKernels.updateRunningStats(g, arr(saveMean), arr(saveInvStd), eps, factor, arr(runningMean),
                arr(runningVar));
    }

    // ---------------------------------------------------------------- pooling

    @Override
    public void avgPool2dForward(PoolGeometry g, Buffer x, Buffer y) {
        check.avgPool2dForward(g, x, y);
        PoolKernels.avgForward(g, arr(x), arr(y), par);
    }

    @Override
    public void avgPool2dBackward(PoolGeometry g, Buffer dy, Buffer dx) {
        check.avgPool2dBackward(g, dy, dx);
        PoolKernels.avgBackward(g, arr(dy), arr(dx), par);
    }

    @Override
    public void maxPool2dForward(PoolGeometry g, Buffer x, Buffer y) {
        check.maxPool2dForward(g, x, y);
        PoolKernels.maxForward(g, arr(x), arr(y), par);
    }

    @Override
    public void maxPool2dBackward(PoolGeometry g, Buffer x, Buffer y, Buffer dy, Buffer dx) {
        check.maxPool2dBackward(g, x, y, dy, dx);
        PoolKernels.maxBackward(g, arr(x), arr(y), arr(dy), arr(dx), par);
    }

    @Override
    public void adaptiveAvgPool2dForward(AdaptivePoolGeometry g, Buffer x, Buffer y) {
        check.adaptiveAvgPool2dForward(g, x, y);
        ShapeKernels.adaptiveAvgForward(g, arr(x), arr(y), par);
    }

    @Override
    public void adaptiveAvgPool2dBackward(AdaptivePoolGeometry g, Buffer dy, Buffer dx) {
        check.adaptiveAvgPool2dBackward(g, dy, dx);
        ShapeKernels.adaptiveAvgBackward(g, arr(dy), arr(dx), par);
    }

    @Override
    public void adaptiveMaxPool2dForward(AdaptivePoolGeometry g, Buffer x, Buffer y, Buffer indices) {
        check.adaptiveMaxPool2dForward(g, x, y, indices);
        ShapeKernels.adaptiveMaxForward(g, arr(x), arr(y), arr(indices), par);
    }

    @Override
    public void adaptiveMaxPool2dBackward(AdaptivePoolGeometry g, Buffer indices, Buffer dy, Buffer dx) {
        check.adaptiveMaxPool2dBackward(g, indices, dy, dx);
        ShapeKernels.adaptiveMaxBackward(g, arr(indices), arr(dy), arr(dx), par);
    }

    // ---------------------------------------------------------------- upsampling

    @Override
    public void upsampleNearest2dForward(UpsampleGeometry g, Buffer x, Buffer y) {
        check.upsampleNearest2dForward(g, x, y);
        ShapeKernels.upsampleNearestForward(g, arr(x), arr(y), par);
    }

    @Override
    public void upsampleNearest2dBackward(UpsampleGeometry g, Buffer dy, Buffer dx) {
        check.upsampleNearest2dBackward(g, dy, dx);
        ShapeKernels.upsampleNearestBackward(g, arr(dy), arr(dx), par);
    }

    // ---------------------------------------------------------------- activations and softmax

    @Override
    public void activationForward(Activation a, Buffer x, Buffer y, long n) {
        check.activationForward(a, x, y, n);
        ActivationKernels.forward(a, arr(x), arr(y), (int) n, par);
    }

    @Override
    public void biasActivation(Activation a, int outer, int channels, int inner, Buffer x, Buffer bias, Buffer y) {
        check.biasActivation(a, outer, channels, inner, x, bias, y);
        ActivationKernels.biasActivation(a, outer, channels, inner, arr(x), arr(bias), arr(y), par);
    }

    @Override
    public void addActivation(Activation a, Buffer x1, Buffer x2, Buffer y, long n) {
        check.addActivation(a, x1, x2, y, n);
        ActivationKernels.addActivation(a, arr(x1), arr(x2), arr(y), (int) n, par);
    }

    @Override
    public void activationBackward(Activation a, Buffer x, Buffer y, Buffer dy, Buffer dx, long n) {
        check.activationBackward(a, x, y, dy, dx, n);
        ActivationKernels.backward(a, arr(x), arr(y), arr(dy), arr(dx), (int) n, par);
    }

    @Override
    public void softmaxForward(int rows, int cols, Buffer x, Buffer y) {
        check.softmaxForward(rows, cols, x, y);
        SoftmaxKernels.forward(rows, cols, arr(x), arr(y), par);
    }

    @Override
    public void softmaxBackward(int rows, int cols, Buffer y, Buffer dy, Buffer dx) {
        check.softmaxBackward(rows, cols, y, dy, dx);
        SoftmaxKernels.backward(rows, cols, arr(y), arr(dy), arr(dx), par);
    }

    @Override
    public void softmaxCrossEntropyForward(int rows, int classes, Buffer logits, Buffer targets, Buffer probs,
                                           Buffer loss) {
        check.softmaxCrossEntropyForward(rows, classes, logits, targets, probs, loss);
        SoftmaxKernels.crossEntropyForward(rows, classes, arr(logits), arr(targets), arr(probs), arr(loss));
    }

    @Override
    public void softmaxCrossEntropyBackward(int rows, int classes, Buffer probs, Buffer targets, Buffer dLoss,
                                            Buffer dLogits) {
        check.softmaxCrossEntropyBackward(rows, classes, probs, targets, dLoss, dLogits);
        SoftmaxKernels.crossEntropyBackward(rows, classes, arr(probs), arr(targets), arr(dLoss), arr(dLogits));
    }

    // ---------------------------------------------------------------- optimizers

    @Override
    public void sgdStepMany(SgdHyper h, Buffer lr, Buffer guard, Buffer skipped,
                            Buffer[] params, Buffer[] grads, Buffer[] momentumBuffers, long[] lengths) {
        check.sgdStepMany(h, lr, guard, skipped, params, grads, momentumBuffers, lengths);
        int count = params.length;
        float[][] p = new float[count][];
        float[][] g = new float[count][];
        float[][] b = new float[count][];
        int[] n = new int[count];
        for (int i = 0; i < count; i++) {
            n[i] = (int) lengths[i];
            p[i] = arr(params[i]);
            g[i] = arr(grads[i]);
            b[i] = momentumBuffers == null ? null : arr(momentumBuffers[i]);
        }
        float[] lrArray = arr(lr);
        float[] guardArray = arr(guard);
        float[] skippedArray = arr(skipped);
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
        check.adamStep(h, param, grad, expAvg, expAvgSq, n);
        OptimizerKernels.adam(h, arr(param), arr(grad), arr(expAvg), arr(expAvgSq), (int) n, par);
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        par.close();
        pool.clear();
        scratch.release();
        LOG.debug("closed cpu backend ({} threads)", threads);
    }

    @Override
    public String toString() {
        return description();
    }
}
