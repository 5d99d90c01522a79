package dev.kiln.cuda;

import dev.kiln.backend.Activation;
import dev.kiln.backend.AdamHyper;
import dev.kiln.backend.Backend;
import dev.kiln.backend.BatchNormGeometry;
import dev.kiln.backend.BinaryOp;
import dev.kiln.backend.Buffer;
import dev.kiln.backend.AdaptivePoolGeometry;
import dev.kiln.backend.ConvGeometry;
import dev.kiln.backend.UpsampleGeometry;
import dev.kiln.backend.PoolGeometry;
import dev.kiln.backend.ScalarOp;
import dev.kiln.backend.BackendChecks;
import dev.kiln.backend.SgdHyper;
import dev.kiln.backend.UnaryOp;
import dev.kiln.backend.GraphCapture;
import dev.kiln.backend.GraphCaptureException;
import jcuda.CudaException;
import jcuda.Pointer;
import jcuda.driver.CUgraph;
import jcuda.driver.CUgraphExec;
import jcuda.driver.CUstreamCaptureMode;
import jcuda.driver.CUdeviceptr;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.Arrays;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.function.Supplier;

import static jcuda.jcublas.cublasOperation.CUBLAS_OP_N;
import static jcuda.jcublas.cublasOperation.CUBLAS_OP_T;

/**
 * The CUDA backend: cuDNN for convolution, batch norm, pooling, activations and softmax; cuBLAS SGEMM for dense
 * layers; Kiln's PTX kernels (src/main/cuda) for element-wise ops, broadcasting, reductions, the loss, running
 * statistics and optimizers. All work is queued on one stream; {@link #download} and {@link #synchronize} wait.
 * Calls are serialised by one lock (cuBLAS/cuDNN handles are bound to the single stream), so concurrent callers are
 * safe. TF32 is off unless {@link CudaOptions#tf32()}.
 */
public final class CudaBackend implements Backend {

    private static final Logger LOG = LoggerFactory.getLogger(CudaBackend.class);
    private static final int MAX_RANK = 8;

    private final Object lock = new Object();
    private final BackendChecks check = new BackendChecks(this);
    private final CudaOptions options;
    private final CudaApi api;
    private final CudaContext ctx;
    private final CachingAllocator allocator;
    private final PinnedStaging staging;
    private final CudaKernels kernels;
    private final CudnnOps cudnn;
    private final CUdeviceptr errorFlag;
    private final Map<Integer, CUdeviceptr> ones = new HashMap<>();
    private final Map<Integer, CUdeviceptr> zeros = new HashMap<>();
    private final CudnnWorkspace workspace;
    /** Graphs captured and not yet destroyed, by their reservation; close() destroys them. */
    private final Map<DeviceReservation, CUgraphExec> liveGraphs = new IdentityHashMap<>();
    private final Map<DeviceReservation, CUgraph> liveGraphDefinitions = new IdentityHashMap<>();
    /** Whether a kernel that reports through the error flag ran since the flag was last read. */
    private boolean deviceCheckPending;
    private int lastClasses;
    private boolean closed;
    /** The stream capture in progress, if any (see {@link #beginCapture()}). */
    private CudaGraphCapture capturing;

    public CudaBackend(CudaOptions options) {
        this(options, loadLibraries());
    }

    private static CudaApi loadLibraries() {
        CudaLibraries.load(LibrarySearchPath.fromEnvironment());
        return JCudaApi.INSTANCE;
    }

    /** A backend whose driver, cuBLAS and cuDNN calls all go through {@code api}. */
    CudaBackend(CudaOptions options, CudaApi api) {
        this.options = options;
        this.api = api;
        this.ctx = new CudaContext(api, options.deviceIndex(), options.tf32()); // releases its own on failure
        this.allocator = new CachingAllocator(ctx);
        this.workspace = new CudnnWorkspace(allocator);
        PinnedStaging pinned = null;
        CudaKernels loaded = null;
        try {
            pinned = new PinnedStaging(ctx);
            loaded = new CudaKernels(ctx);
            this.cudnn = new CudnnOps(api, ctx.cudnn, options.tf32(), options.workspaceLimitBytes(), this::workspace);
            this.errorFlag = allocator.allocate(Integer.BYTES);
            api.cuMemsetD32Async(errorFlag, 0, 1, ctx.stream);
        } catch (RuntimeException e) {
            // nothing of a backend that never started may stay allocated: the caller has no object to close
            ReleaseSteps r = new ReleaseSteps();
            if (loaded != null) {
                r.run(loaded::close);
            }
            if (pinned != null) {
                r.run(pinned::close);
            }
            r.run(allocator::close);
            r.run(ctx::close);
            throw r.attachTo(e);
        }
        this.staging = pinned;
        this.kernels = loaded;
        LOG.debug("cuda backend started: {}", description());
    }

    public CudaOptions options() {
        return options;
    }

    @Override
    public String name() {
        return "cuda";
    }

    @Override
    public String description() {
        return String.format(Locale.ROOT, "cuda:%d %s (compute %d.%d, %.1f GiB)%s", ctx.index, ctx.name, ctx.ccMajor,
                ctx.ccMinor, ctx.totalMemory / (1024.0 * 1024 * 1024), options.tf32() ? ", TF32 on" : "");
    }

    /** The kernels of the shipped PTX, every one looked up when the backend started. */
    Set<String> kernelNames() {
        return kernels.kernelNames();
    }

    /** Allocator statistics for logs and benchmarks. */
    public String memoryStats() {
        synchronized (lock) {
            return allocator.stats();
        }
    }

    /**
     * Device bytes in blocks handed out to open buffers (and the cuDNN workspace) now, in the allocator's size classes
     * ({@code torch.cuda.memory_allocated}).
     */
    public long allocatedBytes() {
        synchronized (lock) {
            return allocator.inUseBytes();
        }
    }

    /** Device bytes of the cuDNN workspace (and workspaces retired while graphs may still use them). */
    long workspaceBytes() {
        synchronized (lock) {
            return workspace.currentBytes() + workspace.retiredBytes();
        }
    }

    /** The most {@link #allocatedBytes()} at once since the backend started or {@link #resetPeakAllocated()}. */
    public long peakAllocatedBytes() {
        synchronized (lock) {
            return allocator.peakInUseBytes();
        }
    }

    /** Starts a new high-water mark of {@link #allocatedBytes()} ({@code torch.cuda.reset_peak_memory_stats}). */
    public void resetPeakAllocated() {
        synchronized (lock) {
            allocator.resetPeak();
        }
    }

    /** Returns all cached (unused) device memory to the driver. */
    public void emptyCache() {
        onStream(() -> {
            notWhileCapturing("emptyCache");
            allocator.emptyCache();
        });
    }

    // ================================================================ memory

    private void enter() {
        if (closed) {
            throw new IllegalStateException("cuda backend is closed");
        }
        // Everything queued on the one stream during a capture would land in the graph: other threads wait.
        while (capturing != null && capturing.thread != Thread.currentThread()) {
            try {
                lock.wait();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("cuda: interrupted while another thread was capturing a graph", e);
            }
            if (closed) {
                throw new IllegalStateException("cuda backend is closed");
            }
        }
        ctx.makeCurrent();
    }

    /**
     * Runs {@code body} under the lock after {@link #enter()}: every op's work on the one stream goes through here.
     * Ops validate their arguments before calling it, so a bad call fails without waiting for the lock.
     */
    private void onStream(Runnable body) {
        synchronized (lock) {
            enter();
            body.run();
        }
    }

    /** {@link #onStream(Runnable)} for an op that returns what it made. */
    private <T> T onStreamReturning(Supplier<T> body) {
        synchronized (lock) {
            enter();
            return body.get();
        }
    }

    /** Host transfers and waits cannot be part of a graph. */
    private void notWhileCapturing(String what) {
        if (capturing != null) {
            throw new GraphCaptureException(what + " during graph capture: captured work cannot exchange data with the"
                    + " host (read results after a replay; put inputs in place before it)");
        }
    }

    /** A buffer {@link BackendChecks} has accepted for an op (null-free, open, ours, long enough). */
    private CudaBuffer cuda(Buffer b, String what, long needed) {
        CudaBuffer cb = (CudaBuffer) b;
        if (capturing != null) {
            capturing.touched.add(cb);
        }
        return cb;
    }

    private CUdeviceptr ptr(Buffer b, String what, long needed) {
        return cuda(b, what, needed).ptr();
    }

    private CUdeviceptr optional(Buffer b, String what, long needed) {
        return b == null ? null : ptr(b, what, needed);
    }

    void release(CUdeviceptr p, long length) {
        synchronized (lock) {
            if (!closed) {
                allocator.release(p, Math.max(1, length) * Float.BYTES);
            }
        }
    }

    private CudaBuffer newBuffer(long length) {
        if (length < 0) {
            throw new IllegalArgumentException("cuda: buffer length must be >= 0, got " + length);
        }
        CUdeviceptr p = allocator.allocate(Math.max(1, length) * Float.BYTES);
        return new CudaBuffer(this, p, length);
    }

    private Pointer workspace(long bytes) {
        return workspace.get(bytes, capturing == null ? null : capturing.reservation);
    }

    private CUdeviceptr constant(Map<Integer, CUdeviceptr> cache, int n, float value) {
        if (capturing != null && !cache.containsKey(n)) {
            // its fill would only run at the first replay, and eager users of the constant would read garbage before
            throw new GraphCaptureException("cuda: a constant vector of " + n + " floats (batch norm without affine"
                    + " parameters) is first needed inside a graph capture; run the step once eagerly before capturing");
        }
        return cache.computeIfAbsent(n, k -> {
            CUdeviceptr p = allocator.allocate((long) k * Float.BYTES);
            api.cuMemsetD32Async(p, Float.floatToRawIntBits(value), k, ctx.stream);
            return p;
        });
    }

    @Override
    public Buffer allocate(long length) {
        check.allocate(length);
        return onStreamReturning(() -> {
            CudaBuffer b = newBuffer(length);
            if (length > 0) {
                api.cuMemsetD32Async(b.ptr(), 0, length, ctx.stream);
            }
            return b;
        });
    }

    @Override
    public Buffer allocateUninitialized(long length) {
        check.allocateUninitialized(length);
        return onStreamReturning(() -> newBuffer(length));
    }

    @Override
    public Buffer upload(float[] src, int offset, int length) {
        check.upload(src, offset, length);
        return onStreamReturning(() -> {
            notWhileCapturing("upload of " + length + " floats");
            CudaBuffer b = newBuffer(length);
            staging.upload(src, offset, length, b.ptr());
            return b;
        });
    }

    @Override
    public void download(Buffer src, long srcOffset, float[] dst, int dstOffset, int length) {
        check.download(src, srcOffset, dst, dstOffset, length);
        onStream(() -> {
            notWhileCapturing("download of " + length + " floats");
            CudaBuffer b = cuda(src, "download source", 0);
            // the error flag, when a kernel may have raised it, travels with the data: one wait, not two
            int flag = staging.download(b.at(srcOffset), dst, dstOffset, length, deviceCheckPending ? errorFlag : null);
            if (deviceCheckPending) {
                deviceCheckPending = false;
                raiseDeviceError(flag);
            }
        });
    }

    @Override
    public void write(float[] src, int srcOffset, Buffer dst, long dstOffset, int length) {
        check.write(src, srcOffset, dst, dstOffset, length);
        onStream(() -> {
            notWhileCapturing("write of " + length + " floats");
            CudaBuffer b = cuda(dst, "write destination", 0);
            staging.upload(src, srcOffset, length, b.at(dstOffset));
        });
    }

    @Override
    public void copy(Buffer src, long srcOffset, Buffer dst, long dstOffset, long length) {
        check.copy(src, srcOffset, dst, dstOffset, length);
        onStream(() -> {
            CudaBuffer s = cuda(src, "copy source", 0);
            CudaBuffer d = cuda(dst, "copy destination", 0);
            if (length > 0) {
                api.cuMemcpyDtoDAsync(d.at(dstOffset), s.at(srcOffset), length * Float.BYTES, ctx.stream);
            }
        });
    }

    @Override
    public void fill(Buffer dst, long offset, long length, float value) {
        check.fill(dst, offset, length, value);
        onStream(() -> {
            CudaBuffer d = cuda(dst, "fill destination", 0);
            if (length > 0) {
                api.cuMemsetD32Async(d.at(offset), Float.floatToRawIntBits(value), length, ctx.stream);
            }
        });
    }

    @Override
    public void gatherRows(Buffer src, int rowLength, int[] rows, Buffer dst) {
        check.gatherRows(src, rowLength, rows, dst);
        onStream(() -> {
            notWhileCapturing("gatherRows (uploads its row indices)");
            CudaBuffer s = cuda(src, "gatherRows source", 0);
            CUdeviceptr d = ptr(dst, "gatherRows destination", (long) rows.length * rowLength);
            if (rows.length == 0 || rowLength == 0) {
                return;
            }
            CUdeviceptr idx = allocator.allocate((long) rows.length * Integer.BYTES);
            try {
                staging.uploadInts(rows, idx);
                kernels.launch("elementwise", "kiln_gather_rows", (long) rows.length * rowLength,
                        s.ptr(), rowLength, idx, rows.length, d);
            } finally {
                allocator.release(idx, (long) rows.length * Integer.BYTES); // stream order keeps it alive for the kernel
            }
        });
    }

    @Override
    public void copySlice(Buffer src, int outer, int srcExtent, int srcStart, Buffer dst, int dstExtent, int dstStart,
                          int length, int inner) {
        check.copySlice(src, outer, srcExtent, srcStart, dst, dstExtent, dstStart, length, inner);
        onStream(() -> kernels.launch("nn", "kiln_copy_slice", (long) outer * length * inner, outer, srcExtent, srcStart,
                dstExtent, dstStart, length, inner, ptr(src, "copySlice src", (long) outer * srcExtent * inner),
                ptr(dst, "copySlice dst", (long) outer * dstExtent * inner)));
    }

    @Override
    public void synchronize() {
        onStream(() -> {
            notWhileCapturing("synchronize");
            ctx.synchronize();
            checkDeviceErrors();
        });
    }

    /**
     * The device error flag for a kernel that switches on an operation code, which raises it for a code it does not
     * know (see ops.cuh); the flag is then read at the next wait point.
     */
    private CUdeviceptr coded() {
        deviceCheckPending = true;
        return errorFlag;
    }

    /** Errors kernels report through the device flag (ops.cuh), surfaced at the next wait point. */
    private void checkDeviceErrors() {
        if (!deviceCheckPending) {
            return;
        }
        deviceCheckPending = false;
        raiseDeviceError(staging.downloadInt(errorFlag));
    }

    /** Turns a raised device error flag (ops.cuh: < 0 an unknown op code, > 0 a cross-entropy row) into an exception. */
    private void raiseDeviceError(int flag) {
        if (flag < 0) {
            api.cuMemsetD32Async(errorFlag, 0, 1, ctx.stream);
            int kind = (-flag - 1) / 65536;
            int code = (-flag - 1) % 65536;
            String[] kinds = {"?", "unary", "scalar", "binary", "activation"};
            throw new IllegalStateException("cuda: a kernel received " + (kind < kinds.length ? kinds[kind] : "?")
                    + " operation code " + code + ", which its switch does not know: the shipped PTX and the Java op"
                    + " declarations differ (rebuild with tools/build-ptx.sh)");
        }
        if (flag != 0) {
            api.cuMemsetD32Async(errorFlag, 0, 1, ctx.stream);
            throw new IllegalArgumentException("cross-entropy: target of row " + (flag - 1) + " is outside [0, "
                    + lastClasses + ") or not an integer (detected on the GPU; reported at this synchronisation point)");
        }
    }

    // ================================================================ element-wise

    @Override
    public void unary(UnaryOp op, Buffer x, Buffer y, long n) {
        check.unary(op, x, y, n);
        onStream(() -> kernels.launch("elementwise", "kiln_unary", n, op.code(), ptr(x, "x", n), ptr(y, "y", n), n, coded()));
    }

    @Override
    public void scalar(ScalarOp op, Buffer x, float s, Buffer y, long n) {
        check.scalar(op, x, s, y, n);
        onStream(() -> kernels.launch("elementwise", "kiln_scalar", n, op.code(), ptr(x, "x", n), s, ptr(y, "y", n), n, coded()));
    }

    @Override
    public void binary(BinaryOp op, Buffer a, int[] aShape, Buffer b, int[] bShape, Buffer out, int[] outShape) {
        check.binary(op, a, aShape, b, bShape, out, outShape);
        long n = numel(outShape);
        onStream(() -> {
            CUdeviceptr pa = ptr(a, "a", numel(aShape));
            CUdeviceptr pb = ptr(b, "b", numel(bShape));
            CUdeviceptr po = ptr(out, "out", n);
            if (Arrays.equals(aShape, outShape) && Arrays.equals(bShape, outShape)) {
                kernels.launch("elementwise", "kiln_binary_flat", n, op.code(), pa, pb, po, n, coded());
                return;
            }
            int[] g = broadcastStruct(outShape, aShape, bShape);
            kernels.launch("elementwise", "kiln_binary", n, op.code(), pa, pb, po, n, g, coded());
        });
    }

    /** The kernels' {@code Broadcast} struct: rank, outShape[8], aStride[8], bStride[8] (0 where broadcast). */
    static int[] broadcastStruct(int[] outShape, int[] aShape, int[] bShape) {
        int[] dims = collapse(outShape);
        int rank = outShape.length;
        if (rank > MAX_RANK) {
            throw new IllegalArgumentException("cuda: broadcasting supports rank <= " + MAX_RANK + ", got "
                    + Arrays.toString(outShape));
        }
        int[] g = new int[1 + 3 * MAX_RANK];
        g[0] = Math.max(rank, 1);
        if (rank == 0) {
            g[1] = 1;
            return g;
        }
        int sa = 1;
        int sb = 1;
        for (int d = rank - 1; d >= 0; d--) {
            g[1 + d] = dims[d];
            g[1 + MAX_RANK + d] = aShape[d] == 1 ? 0 : sa;
            g[1 + 2 * MAX_RANK + d] = bShape == null || bShape[d] == 1 ? 0 : sb;
            sa *= aShape[d];
            if (bShape != null) {
                sb *= bShape[d];
            }
        }
        return g;
    }

    private static int[] collapse(int[] shape) {
        return shape.clone();
    }

    private static long numel(int[] shape) {
        long n = 1;
        for (int s : shape) {
            if (s < 0) {
                throw new IllegalArgumentException("cuda: negative dimension in " + Arrays.toString(shape));
            }
            n *= s;
        }
        return n;
    }

    @Override
    public void axpy(float alpha, Buffer x, Buffer y, long n) {
        check.axpy(alpha, x, y, n);
        onStream(() -> kernels.launch("elementwise", "kiln_axpy", n, alpha, ptr(x, "x", n), ptr(y, "y", n), n));
    }

    // ================================================================ reductions and broadcasting

    @Override
    public void sumTo(Buffer x, int[] xShape, Buffer out, int[] outShape) {
        check.sumTo(x, xShape, out, outShape);
        if (xShape.length != outShape.length || xShape.length > MAX_RANK) {
            throw new IllegalArgumentException("cuda sumTo: shapes " + Arrays.toString(xShape) + " -> "
                    + Arrays.toString(outShape) + " must have the same rank (<= " + MAX_RANK + ")");
        }
        int[] g = new int[2 + 4 * MAX_RANK];
        int kept = 0;
        int red = 0;
        long reducedProduct = 1;
        long stride = 1;
        int[] strides = new int[xShape.length];
        for (int d = xShape.length - 1; d >= 0; d--) {
            strides[d] = (int) stride;
            stride *= xShape[d];
        }
        for (int d = 0; d < xShape.length; d++) {
            if (outShape[d] == xShape[d]) {
                g[1 + kept] = xShape[d];
                g[1 + MAX_RANK + kept] = strides[d];
                kept++;
            } else if (outShape[d] == 1) {
                g[2 + 2 * MAX_RANK + red] = xShape[d];
                g[2 + 3 * MAX_RANK + red] = strides[d];
                red++;
                reducedProduct *= xShape[d];
            } else {
                throw new IllegalArgumentException("cuda sumTo: cannot sum " + Arrays.toString(xShape) + " to "
                        + Arrays.toString(outShape) + " (dimension " + d + ")");
            }
        }
        g[0] = kept;
        g[1 + 2 * MAX_RANK] = red;
        long outCount = numel(outShape);
        long redCount = reducedProduct; // the on-stream body needs it effectively final
        onStream(() -> {
            CUdeviceptr px = ptr(x, "x", numel(xShape));
            CUdeviceptr po = ptr(out, "out", outCount);
            if (outCount == 0) {
                return;
            }
            if (redCount == 0) {
                api.cuMemsetD32Async(po, 0, outCount, ctx.stream);
                return;
            }
            kernels.launchGrid("elementwise", "kiln_sum_to", (int) Math.min(outCount, 65535), px, po, outCount, redCount, g);
        });
    }

    @Override
    public void broadcastTo(Buffer x, int[] xShape, Buffer out, int[] outShape) {
        check.broadcastTo(x, xShape, out, outShape);
        long n = numel(outShape);
        onStream(() -> {
            int[] g = broadcastStruct(outShape, xShape, null);
            kernels.launch("elementwise", "kiln_broadcast_to", n, ptr(x, "x", numel(xShape)), ptr(out, "out", n), n, g);
        });
    }

    @Override
    public void argmax(Buffer x, int outer, int extent, int inner, Buffer out) {
        check.argmax(x, outer, extent, inner, out);
        long total = (long) outer * inner;
        onStream(() -> kernels.launch("elementwise", "kiln_argmax", total, ptr(x, "x", total * extent), outer, extent, inner,
                ptr(out, "out", total)));
    }

    // ================================================================ dense

    /**
     * Row-major GEMM through column-major cuBLAS without transposing anything: a row-major (r,c) matrix is the
     * column-major (c,r) matrix, so C = op(A) op(B) (row-major) is C^T = op(B)^T op(A)^T (column-major), i.e.
     * cublasSgemm(opB, opA, n, m, k, B, A, C) with the leading dimensions of the stored row-major matrices.
     */
    @Override
    public void gemm(boolean transA, boolean transB, int m, int n, int k, float alpha, Buffer a, Buffer b, float beta, Buffer c) {
        check.gemm(transA, transB, m, n, k, alpha, a, b, beta, c);
        onStream(() -> {
            CUdeviceptr pa = ptr(a, "gemm A", (long) m * k);
            CUdeviceptr pb = ptr(b, "gemm B", (long) k * n);
            CUdeviceptr pc = ptr(c, "gemm C", (long) m * n);
            if (m == 0 || n == 0) {
                return;
            }
            int lda = transA ? m : k;
            int ldb = transB ? k : n;
            api.cublasSgemm(ctx.cublas, transB ? CUBLAS_OP_T : CUBLAS_OP_N, transA ? CUBLAS_OP_T : CUBLAS_OP_N,
                    n, m, k, Pointer.to(new float[]{alpha}), pb, Math.max(1, ldb), pa, Math.max(1, lda),
                    Pointer.to(new float[]{beta}), pc, Math.max(1, n));
        });
    }

    // ================================================================ convolution

    @Override
    public void conv2dForward(ConvGeometry g, Buffer x, Buffer w, Buffer bias, Buffer y) {
        check.conv2dForward(g, x, w, bias, y);
        onStream(() -> cudnn.convForward(g, ptr(x, "conv2d x", g.inputLength()), ptr(w, "conv2d weight", g.weightLength()),
                optional(bias, "conv2d bias", g.outChannels()), ptr(y, "conv2d y", g.outputLength())));
    }

    @Override
    public void conv2dBackwardData(ConvGeometry g, Buffer w, Buffer dy, Buffer dx) {
        check.conv2dBackwardData(g, w, dy, dx);
        onStream(() -> cudnn.convBackwardData(g, ptr(w, "conv2d weight", g.weightLength()), ptr(dy, "conv2d dy", g.outputLength()),
                ptr(dx, "conv2d dx", g.inputLength())));
    }

    @Override
    public void conv2dBackwardWeight(ConvGeometry g, Buffer x, Buffer dy, Buffer dw) {
        check.conv2dBackwardWeight(g, x, dy, dw);
        onStream(() -> cudnn.convBackwardWeight(g, ptr(x, "conv2d x", g.inputLength()), ptr(dy, "conv2d dy", g.outputLength()),
                ptr(dw, "conv2d dw", g.weightLength())));
    }

    @Override
    public void conv2dBackwardBias(ConvGeometry g, Buffer dy, Buffer db) {
        check.conv2dBackwardBias(g, dy, db);
        onStream(() -> cudnn.convBackwardBias(g, ptr(dy, "conv2d dy", g.outputLength()), ptr(db, "conv2d db", g.outChannels())));
    }

    // ================================================================ batch norm

    @Override
    public void batchNormForwardTraining(BatchNormGeometry g, Buffer x, Buffer gamma, Buffer beta, float eps,
                                         Buffer y, Buffer saveMean, Buffer saveInvStd) {
        check.batchNormForwardTraining(g, x, gamma, beta, eps, y, saveMean, saveInvStd);
        int c = g.channels();
        onStream(() -> {
            CUdeviceptr pg = gamma == null ? constant(ones, c, 1f) : ptr(gamma, "batch norm gamma", c);
            CUdeviceptr pb = beta == null ? constant(zeros, c, 0f) : ptr(beta, "batch norm beta", c);
            cudnn.bnForwardTraining(g, ptr(x, "batch norm x", g.length()), pg, pb, eps, ptr(y, "batch norm y", g.length()),
                    ptr(saveMean, "batch norm saveMean", c), ptr(saveInvStd, "batch norm saveInvStd", c));
        });
    }

    @Override
    public void batchNormForwardInference(BatchNormGeometry g, Activation a, Buffer x, Buffer gamma, Buffer beta,
                                          Buffer mean, Buffer var, float eps, Buffer y) {
        check.batchNormForwardInference(g, a, x, gamma, beta, mean, var, eps, y);
        long n = g.length();
        int c = g.channels();
        onStream(() -> kernels.launch("nn", "kiln_bn_inference_activation", n, a.code(), n, c, g.spatial(),
                ptr(x, "x", n), optional(gamma, "gamma", c), optional(beta, "beta", c), ptr(mean, "mean", c),
                ptr(var, "var", c), eps, ptr(y, "y", n), coded()));
    }

    @Override
    public void batchNormBackward(BatchNormGeometry g, Buffer x, Buffer dy, Buffer gamma, Buffer saveMean,
                                  Buffer saveInvStd, Buffer dx, Buffer dGamma, Buffer dBeta) {
        check.batchNormBackward(g, x, dy, gamma, saveMean, saveInvStd, dx, dGamma, dBeta);
        int c = g.channels();
        onStream(() -> {
            CUdeviceptr pg = gamma == null ? constant(ones, c, 1f) : ptr(gamma, "batch norm gamma", c);
            // cuDNN always writes dx, dGamma and dBeta: unwanted ones go to scratch released right after (stream order).
            CUdeviceptr pdx = dx == null ? allocator.allocate(g.length() * Float.BYTES) : ptr(dx, "batch norm dx", g.length());
            CUdeviceptr pdg = dGamma == null ? allocator.allocate((long) c * Float.BYTES) : ptr(dGamma, "batch norm dGamma", c);
            CUdeviceptr pdb = dBeta == null ? allocator.allocate((long) c * Float.BYTES) : ptr(dBeta, "batch norm dBeta", c);
            try {
                // epsilon is unused when the saved statistics are passed; cuDNN still validates it
                cudnn.bnBackward(g, ptr(x, "batch norm x", g.length()), ptr(dy, "batch norm dy", g.length()), pg,
                        ptr(saveMean, "batch norm saveMean", c), ptr(saveInvStd, "batch norm saveInvStd", c), 1e-5,
                        pdx, pdg, pdb);
            } finally {
                if (dx == null) {
                    allocator.release(pdx, g.length() * Float.BYTES);
                }
                if (dGamma == null) {
                    allocator.release(pdg, (long) c * Float.BYTES);
                }
                if (dBeta == null) {
                    allocator.release(pdb, (long) c * Float.BYTES);
                }
            }
        });
    }

    @Override
    public void batchNormActivationForwardTraining(BatchNormGeometry g, Activation a, Buffer x, Buffer gamma,
                                                   Buffer beta, float eps, Buffer y, Buffer saveMean,
                                                   Buffer saveInvStd) {
        check.batchNormActivationForwardTraining(g, a, x, gamma, beta, eps, y, saveMean, saveInvStd);
        // cuDNN's training forward, then the activation in place on the same stream
        batchNormForwardTraining(g, x, gamma, beta, eps, y, saveMean, saveInvStd);
        if (a != Activation.IDENTITY) {
            activationForward(a, y, y, g.length());
        }
    }

    @Override
    public void batchNormActivationBackward(BatchNormGeometry g, Activation a, Buffer x, Buffer y, Buffer dy,
                                            Buffer gamma, Buffer saveMean, Buffer saveInvStd, Buffer dx,
                                            Buffer dGamma, Buffer dBeta) {
        check.batchNormActivationBackward(g, a, x, y, dy, gamma, saveMean, saveInvStd, dx, dGamma, dBeta);
        if (a == Activation.IDENTITY) {
            batchNormBackward(g, x, dy, gamma, saveMean, saveInvStd, dx, dGamma, dBeta);
            return;
        }
        // dy through the activation's derivative into a temporary, then cuDNN's backward; the temporary goes back to
        // the allocator in stream order, after the backward that reads it
        try (Buffer through = allocateUninitialized(g.length())) {
            activationBackward(a, y, y, dy, through, g.length());
            batchNormBackward(g, x, through, gamma, saveMean, saveInvStd, dx, dGamma, dBeta);
        }
    }

    @Override
    public void batchNormUpdateRunningStats(BatchNormGeometry g, Buffer saveMean, Buffer saveInvStd, float eps,
                                            double factor, Buffer runningMean, Buffer runningVar, Buffer guard,
                                            Buffer skipped) {
        check.batchNormUpdateRunningStats(g, saveMean, saveInvStd, eps, factor, runningMean, runningVar, guard, skipped);
        long m = g.valuesPerChannel();
        int c = g.channels();
        onStream(() -> kernels.launch("nn", "kiln_bn_running_stats", c, c, ptr(saveMean, "saveMean", c),
                ptr(saveInvStd, "saveInvStd", c), eps, factor, (double) m / (m - 1),
                ptr(runningMean, "runningMean", c), ptr(runningVar, "runningVar", c),
                DeviceAddress.of(optional(guard, "guard", 1)), DeviceAddress.of(optional(skipped, "skipped", 1))));
    }

    // ================================================================ pooling

    @Override
    public void avgPool2dForward(PoolGeometry g, Buffer x, Buffer y) {
        check.avgPool2dForward(g, x, y);
        onStream(() -> cudnn.avgPoolForward(g, ptr(x, "avgpool x", g.inputLength()), ptr(y, "avgpool y", g.outputLength())));
    }

    @Override
    public void avgPool2dBackward(PoolGeometry g, Buffer dy, Buffer dx) {
        check.avgPool2dBackward(g, dy, dx);
        onStream(() -> cudnn.avgPoolBackward(g, ptr(dy, "avgpool dy", g.outputLength()), ptr(dx, "avgpool dx", g.inputLength())));
    }

    @Override
    public void maxPool2dForward(PoolGeometry g, Buffer x, Buffer y) {
        check.maxPool2dForward(g, x, y);
        onStream(() -> cudnn.maxPoolForward(g, ptr(x, "maxpool x", g.inputLength()), ptr(y, "maxpool y", g.outputLength())));
    }

    /** A PTX gather kernel rather than cuDNN: the SPI fixes the tie rule (first maximal position in the window). */
    @Override
    public void maxPool2dBackward(PoolGeometry g, Buffer x, Buffer y, Buffer dy, Buffer dx) {
        check.maxPool2dBackward(g, x, y, dy, dx);
        onStream(() -> kernels.launch("nn", "kiln_max_pool_backward", g.inputLength(), g.n(), g.channels(), g.inH(), g.inW(),
                g.outH(), g.outW(), g.kernelH(), g.kernelW(), g.strideH(), g.strideW(), g.padH(), g.padW(),
                ptr(x, "maxpool x", g.inputLength()), ptr(y, "maxpool y", g.outputLength()),
                ptr(dy, "maxpool dy", g.outputLength()), ptr(dx, "maxpool dx", g.inputLength())));
    }

    // ================================================================ adaptive pooling and upsampling (PTX)

    @Override
    public void adaptiveAvgPool2dForward(AdaptivePoolGeometry g, Buffer x, Buffer y) {
        check.adaptiveAvgPool2dForward(g, x, y);
        onStream(() -> kernels.launch("nn", "kiln_adaptive_avg_forward", g.outputLength(), g.n() * g.channels(), g.inH(),
                g.inW(), g.outH(), g.outW(), ptr(x, "adaptive avgpool x", g.inputLength()),
                ptr(y, "adaptive avgpool y", g.outputLength())));
    }

    @Override
    public void adaptiveAvgPool2dBackward(AdaptivePoolGeometry g, Buffer dy, Buffer dx) {
        check.adaptiveAvgPool2dBackward(g, dy, dx);
        onStream(() -> kernels.launch("nn", "kiln_adaptive_avg_backward", g.inputLength(), g.n() * g.channels(), g.inH(),
                g.inW(), g.outH(), g.outW(), ptr(dy, "adaptive avgpool dy", g.outputLength()),
                ptr(dx, "adaptive avgpool dx", g.inputLength())));
    }

    @Override
    public void adaptiveMaxPool2dForward(AdaptivePoolGeometry g, Buffer x, Buffer y, Buffer indices) {
        check.adaptiveMaxPool2dForward(g, x, y, indices);
        onStream(() -> kernels.launch("nn", "kiln_adaptive_max_forward", g.outputLength(), g.n() * g.channels(), g.inH(),
                g.inW(), g.outH(), g.outW(), ptr(x, "adaptive maxpool x", g.inputLength()),
                ptr(y, "adaptive maxpool y", g.outputLength()), ptr(indices, "adaptive maxpool indices", g.outputLength())));
    }

    @Override
    public void adaptiveMaxPool2dBackward(AdaptivePoolGeometry g, Buffer indices, Buffer dy, Buffer dx) {
        check.adaptiveMaxPool2dBackward(g, indices, dy, dx);
        onStream(() -> kernels.launch("nn", "kiln_adaptive_max_backward", g.inputLength(), g.n() * g.channels(), g.inH(),
                g.inW(), g.outH(), g.outW(), ptr(indices, "adaptive maxpool indices", g.outputLength()),
                ptr(dy, "adaptive maxpool dy", g.outputLength()), ptr(dx, "adaptive maxpool dx", g.inputLength())));
    }

    @Override
    public void upsampleNearest2dForward(UpsampleGeometry g, Buffer x, Buffer y) {
        check.upsampleNearest2dForward(g, x, y);
        onStream(() -> kernels.launch("nn", "kiln_upsample_nearest_forward", g.outputLength(), g.n() * g.channels(),
                g.inH(), g.inW(), g.scaleH(), g.scaleW(), ptr(x, "upsample x", g.inputLength()),
                ptr(y, "upsample y", g.outputLength())));
    }

    @Override
    public void upsampleNearest2dBackward(UpsampleGeometry g, Buffer dy, Buffer dx) {
        check.upsampleNearest2dBackward(g, dy, dx);
        onStream(() -> kernels.launch("nn", "kiln_upsample_nearest_backward", g.inputLength(), g.n() * g.channels(),
                g.inH(), g.inW(), g.scaleH(), g.scaleW(), ptr(dy, "upsample dy", g.outputLength()),
                ptr(dx, "upsample dx", g.inputLength())));
    }

    // ================================================================ activations and softmax

    @Override
    public void activationForward(Activation a, Buffer x, Buffer y, long n) {
        check.activationForward(a, x, y, n);
        onStream(() -> kernels.launch("nn", "kiln_activation_forward", n, a.code(), ptr(x, "activation x", n),
                ptr(y, "activation y", n), n, coded()));
    }

    @Override
    public void biasActivation(Activation a, int outer, int channels, int inner, Buffer x, Buffer bias, Buffer y) {
        check.biasActivation(a, outer, channels, inner, x, bias, y);
        long n = (long) outer * channels * inner;
        onStream(() -> kernels.launch("nn", "kiln_bias_activation", n, a.code(), n, channels, inner, ptr(x, "x", n),
                ptr(bias, "bias", channels), ptr(y, "y", n), coded()));
    }

    @Override
    public void addActivation(Activation a, Buffer x1, Buffer x2, Buffer y, long n) {
        check.addActivation(a, x1, x2, y, n);
        int[] shape = {(int) n};
        binary(BinaryOp.ADD, x1, shape, x2, shape, y, shape);
        activationForward(a, y, y, n);
    }

    @Override
    public void activationBackward(Activation a, Buffer x, Buffer y, Buffer dy, Buffer dx, long n) {
        check.activationBackward(a, x, y, dy, dx, n);
        onStream(() -> kernels.launch("nn", "kiln_activation_backward", n, a.code(), ptr(x, "activation x", n),
                ptr(y, "activation y", n), ptr(dy, "activation dy", n), ptr(dx, "activation dx", n), n, coded()));
    }

    @Override
    public void softmaxForward(int rows, int cols, Buffer x, Buffer y) {
        check.softmaxForward(rows, cols, x, y);
        long n = (long) rows * cols;
        onStream(() -> {
            if (n > 0) {
                cudnn.softmaxForward(rows, cols, ptr(x, "softmax x", n), ptr(y, "softmax y", n));
            }
        });
    }

    @Override
    public void softmaxBackward(int rows, int cols, Buffer y, Buffer dy, Buffer dx) {
        check.softmaxBackward(rows, cols, y, dy, dx);
        long n = (long) rows * cols;
        onStream(() -> {
            if (n > 0) {
                cudnn.softmaxBackward(rows, cols, ptr(y, "softmax y", n), ptr(dy, "softmax dy", n), ptr(dx, "softmax dx", n));
            }
        });
    }

    /**
     * Per-row loss into scratch, then a one-block mean into {@code loss[0]}: reduced on the device, no host wait.
     * An out-of-range target raises a device flag read at the next {@link #download}/{@link #synchronize}.
     */
    @Override
    public void softmaxCrossEntropyForward(int rows, int classes, Buffer logits, Buffer targets, Buffer probs, Buffer loss) {
        check.softmaxCrossEntropyForward(rows, classes, logits, targets, probs, loss);
        long n = (long) rows * classes;
        onStream(() -> {
            CUdeviceptr rowLoss = allocator.allocate((long) rows * Float.BYTES);
            try {
                kernels.launchGrid("nn", "kiln_softmax_xent_rows", Math.min(rows, 65535), rows, classes,
                        ptr(logits, "logits", n), ptr(targets, "targets", rows), ptr(probs, "probs", n), rowLoss, errorFlag);
                kernels.launchGrid("nn", "kiln_mean", 1, rowLoss, rows, ptr(loss, "loss", 1));
            } finally {
                allocator.release(rowLoss, (long) rows * Float.BYTES);
            }
            deviceCheckPending = true;
            lastClasses = classes;
            if (capturing != null) {
                capturing.crossEntropy = true;
            }
        });
    }

    @Override
    public void softmaxCrossEntropyBackward(int rows, int classes, Buffer probs, Buffer targets, Buffer dLoss, Buffer dLogits) {
        check.softmaxCrossEntropyBackward(rows, classes, probs, targets, dLoss, dLogits);
        long n = (long) rows * classes;
        onStream(() -> kernels.launch("nn", "kiln_softmax_xent_backward", n, rows, classes, ptr(probs, "probs", n),
                ptr(targets, "targets", rows), ptr(dLoss, "dLoss", 1), ptr(dLogits, "dLogits", n)));
    }

    // ================================================================ optimizers

    /** Mirrors KILN_SGD_MAX_TENSORS in nn.cu: the by-value table of one kiln_sgd_many launch. */
    static final int SGD_MAX_TENSORS = 32;

    @Override
    public void sgdStepMany(SgdHyper h, Buffer lr, Buffer guard, Buffer skipped,
                            Buffer[] params, Buffer[] grads, Buffer[] momentumBuffers, long[] lengths) {
        check.sgdStepMany(h, lr, guard, skipped, params, grads, momentumBuffers, lengths);
        int count = params.length;
        onStream(() -> {
            long[] paramAt = new long[count];
            long[] gradAt = new long[count];
            long[] bufAt = new long[count];
            for (int i = 0; i < count; i++) {
                long n = lengths[i];
                paramAt[i] = DeviceAddress.of(ptr(params[i], "params[" + i + "]", n));
                gradAt[i] = DeviceAddress.of(ptr(grads[i], "grads[" + i + "]", n));
                Buffer m = momentumBuffers == null ? null : momentumBuffers[i];
                bufAt[i] = DeviceAddress.of(h.momentum() != 0f ? ptr(m, "momentumBuffers[" + i + "]", n)
                        : optional(m, "momentumBuffers[" + i + "]", n));
            }
            long lrAt = DeviceAddress.of(optional(lr, "lr", 1));
            long guardAt = DeviceAddress.of(optional(guard, "guard", 1));
            long skippedAt = DeviceAddress.of(optional(skipped, "skipped", 1));
            for (int start = 0; start < count; start += SGD_MAX_TENSORS) {
                int chunk = Math.min(SGD_MAX_TENSORS, count - start);
                // struct SgdTable: param[32], grad[32], buf[32], n[32] (8 bytes each), then int count (+4 padding)
                long[] table = new long[4 * SGD_MAX_TENSORS + 1];
                long longest = 0;
                for (int k = 0; k < chunk; k++) {
                    table[k] = paramAt[start + k];
                    table[SGD_MAX_TENSORS + k] = gradAt[start + k];
                    table[2 * SGD_MAX_TENSORS + k] = bufAt[start + k];
                    table[3 * SGD_MAX_TENSORS + k] = lengths[start + k];
                    longest = Math.max(longest, lengths[start + k]);
                }
                table[4 * SGD_MAX_TENSORS] = chunk;
                int grid = (int) Math.min(CudaKernels.MAX_GRID, Math.max(1, (longest + CudaKernels.BLOCK - 1) / CudaKernels.BLOCK));
                kernels.launchGrid("nn", "kiln_sgd_many", grid, table, lrAt, h.lr(), guardAt, skippedAt,
                        start == 0 ? 1 : 0, h.momentum(), 1f - h.dampening(), h.nesterov() ? 1 : 0, h.weightDecay(),
                        h.firstStep() ? 1 : 0);
            }
        });
    }

    @Override
    public void adamStep(AdamHyper h, Buffer param, Buffer grad, Buffer expAvg, Buffer expAvgSq, long n) {
        check.adamStep(h, param, grad, expAvg, expAvgSq, n);
        double bc1 = 1.0 - Math.pow(h.beta1(), h.step());
        double bc2 = 1.0 - Math.pow(h.beta2(), h.step());
        float stepSize = (float) (h.lr() / bc1);
        float bc2Sqrt = (float) Math.sqrt(bc2);
        float decay = (float) (1.0 - (double) h.lr() * h.weightDecay());
        onStream(() -> kernels.launch("nn", "kiln_adam", n, h.beta1(), h.beta2(), h.eps(), h.weightDecay(),
                h.decoupledWeightDecay() ? 1 : 0, decay, stepSize, bc2Sqrt, ptr(param, "param", n),
                ptr(grad, "grad", n), ptr(expAvg, "expAvg", n), ptr(expAvgSq, "expAvgSq", n), n));
    }

    // ================================================================ graph capture

    /**
     * Stream capture in relaxed mode (the caching allocator may still call cuMemAlloc for a size it has not cached;
     * the capturing thread makes no other unsafe call). cuDNN and cuBLAS calls are captured like kernel launches;
     * convolution algorithms were chosen by the eager steps before, so no search runs inside.
     */
    @Override
    public GraphCapture beginCapture() {
        return onStreamReturning(() -> {
            if (capturing != null) {
                throw new IllegalStateException("cuda: a graph capture is already running on this backend");
            }
            CudaGraphCapture c = new CudaGraphCapture(this);
            api.cuStreamBeginCapture(ctx.stream, CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_RELAXED);
            allocator.beginReservation(c.reservation);
            capturing = c;
            return c;
        });
    }

    void finishCapture(CudaGraphCapture c, CUgraph graph, CUgraphExec exec, int[] nodes) {
        synchronized (lock) {
            if (closed) {
                throw new IllegalStateException("cuda backend is closed: close() abandoned this graph capture");
            }
            ctx.makeCurrent();
            try {
                api.cuStreamEndCapture(ctx.stream, graph);
            } catch (CudaException e) {
                stopCapture(c);
                workspace.graphReleased(c.reservation);
                allocator.releaseReservation(c.reservation);
                throw new GraphCaptureException("cuda: stream capture failed: " + e.getMessage(), e);
            }
            stopCapture(c);
            try {
                nodes[0] = nodeCount(graph);
                api.cuGraphInstantiate(exec, graph, 0L);
                // uploading now keeps the first replay as cheap as the others
                api.cuGraphUpload(exec, ctx.stream);
            } catch (CudaException e) {
                CudaGraphCapture.destroyQuietly(api, graph, null);
                workspace.graphReleased(c.reservation);
                allocator.releaseReservation(c.reservation);
                throw new GraphCaptureException("cuda: could not instantiate the captured graph: " + e.getMessage(), e);
            }
            liveGraphs.put(c.reservation, exec);
            liveGraphDefinitions.put(c.reservation, graph);
            LOG.debug("cuda graph captured: {} nodes", nodes[0]);
        }
    }

    private int nodeCount(CUgraph graph) {
        try {
            long[] count = new long[1];
            api.cuGraphGetNodes(graph, null, count); // a null node array asks for the count only
            return (int) count[0];
        } catch (RuntimeException e) {
            LOG.debug("cuGraphGetNodes: {}", e.toString());
            return -1;
        }
    }

    void abortCapture(CudaGraphCapture c) {
        synchronized (lock) {
            if (closed) {
                return; // close() ended the capture and released what it held
            }
            ctx.makeCurrent();
            CUgraph partial = new CUgraph();
            try {
                api.cuStreamEndCapture(ctx.stream, partial);
                CudaGraphCapture.destroyQuietly(api, partial, null);
            } catch (CudaException e) {
                LOG.debug("ending an aborted capture: {}", e.getMessage()); // an invalidated capture has no graph
            }
            stopCapture(c);
            workspace.graphReleased(c.reservation);
            allocator.releaseReservation(c.reservation);
        }
    }

    private void stopCapture(CudaGraphCapture c) {
        allocator.endReservation(c.reservation);
        if (capturing == c) {
            capturing = null;
        }
        lock.notifyAll();
    }

    void launchGraph(CUgraphExec exec, boolean crossEntropy) {
        onStream(() -> {
            notWhileCapturing("replay of a captured graph");
            api.cuGraphLaunch(exec, ctx.stream);
            deviceCheckPending = true; // op-coded kernels and the loss in the graph report through the flag
        });
    }

    void destroyGraph(CUgraph graph, CUgraphExec exec, DeviceReservation reservation) {
        synchronized (lock) {
            if (closed) {
                return; // the context and everything in it are gone
            }
            ctx.makeCurrent();
            CudaGraphCapture.destroyQuietly(api, graph, exec);
            liveGraphs.remove(reservation);
            liveGraphDefinitions.remove(reservation);
            workspace.graphReleased(reservation);
            allocator.releaseReservation(reservation);
        }
    }

    // ================================================================ lifecycle

    /**
     * Frees everything, each resource on its own, even after a sticky error or with a capture still open (the capture
     * is ended first: a capturing stream can be neither synchronised nor destroyed). Throws the first failure after
     * everything was tried.
     */
    @Override
    public void close() {
        synchronized (lock) {
            if (closed) {
                return;
            }
            closed = true;
            ReleaseSteps r = new ReleaseSteps();
            r.run(ctx::makeCurrent);
            CudaGraphCapture open = capturing;
            if (open != null) {
                LOG.warn("cuda backend closed during a graph capture: the capture is abandoned");
                r.run(() -> endAbandonedCapture(open));
            }
            r.run(ctx::synchronize);
            LOG.debug("closing cuda backend: {}", allocator.stats());
            // The CUDA runtime inside cuBLAS/cuDNN keeps the primary context alive after Kiln releases it, so
            // nothing may be left to the context's teardown: graphs, workspace, flag, constants, every block.
            for (DeviceReservation res : liveGraphs.keySet()) {
                CUgraph graph = liveGraphDefinitions.get(res);
                CUgraphExec exec = liveGraphs.get(res);
                r.run(() -> CudaGraphCapture.destroyQuietly(api, graph, exec));
                r.run(() -> allocator.releaseReservation(res));
            }
            liveGraphs.clear();
            liveGraphDefinitions.clear();
            r.run(workspace::releaseAll);
            r.run(() -> allocator.release(errorFlag, Integer.BYTES));
            ones.forEach((n, p) -> r.run(() -> allocator.release(p, (long) n * Float.BYTES)));
            zeros.forEach((n, p) -> r.run(() -> allocator.release(p, (long) n * Float.BYTES)));
            ones.clear();
            zeros.clear();
            r.run(cudnn::close);
            r.run(kernels::close);
            r.run(staging::close);
            r.run(allocator::close); // frees every block it ever allocated, including those of buffers still open
            r.run(ctx::close);
            lock.notifyAll(); // threads waiting for the capture to end find the backend closed
            r.finish();
        }
    }

    /** Ends a capture its thread never ended, and drops the partial graph and the capture's reservation. */
    private void endAbandonedCapture(CudaGraphCapture c) {
        ReleaseSteps r = new ReleaseSteps();
        CUgraph partial = new CUgraph();
        r.run(() -> {
            api.cuStreamEndCapture(ctx.stream, partial);
            CudaGraphCapture.destroyQuietly(api, partial, null);
        });
        r.run(() -> stopCapture(c));
        r.run(() -> workspace.graphReleased(c.reservation));
        r.run(() -> allocator.releaseReservation(c.reservation));
        r.finish();
    }
}
