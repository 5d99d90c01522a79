package dev.kiln.cuda;

import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdevice_attribute;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUstream;
import jcuda.driver.CUstream_flags;
import jcuda.jcublas.cublasHandle;
import jcuda.jcublas.cublasMath;
import jcuda.jcudnn.cudnnHandle;
import jcuda.runtime.cudaStream_t;

import java.nio.charset.StandardCharsets;

/**
 * One GPU: its primary context (shared with the CUDA runtime inside cuBLAS/cuDNN), one stream, and a cuBLAS and a
 * cuDNN handle bound to that stream. Every thread that calls into the backend makes the context current first
 * ({@link #makeCurrent}).
 */
final class CudaContext implements AutoCloseable {

    final CudaApi api;
    final int index;
    final CUdevice device = new CUdevice();
    final CUcontext context = new CUcontext();
    final CUstream stream = new CUstream();
    final cublasHandle cublas = new cublasHandle();
    final cudnnHandle cudnn = new cudnnHandle();
    final String name;
    final long totalMemory;
    final int ccMajor;
    final int ccMinor;
    private boolean closed;
    private static final long CUBLAS_WORKSPACE_BYTES = 32L << 20;
    private final CUdeviceptr cublasWorkspace = new CUdeviceptr();

    /** What the constructor has created so far: {@link #close()} releases exactly these. */
    private boolean retained;
    private boolean streamCreated;
    private boolean cublasCreated;
    private boolean workspaceAllocated;
    private boolean cudnnCreated;

    /** Opens device {@code index}; when a step fails, what the earlier steps created is released before the throw. */
    CudaContext(CudaApi api, int index, boolean tf32) {
        this.api = api;
        this.index = index;
        try {
            api.enableExceptions();
            api.cuInit(0);
            int[] count = new int[1];
            api.cuDeviceGetCount(count);
            if (index >= count[0]) {
                throw new IllegalArgumentException("cuda:" + index + " does not exist: this host has " + count[0]
                        + " CUDA device(s)");
            }
            api.cuDeviceGet(device, index);
            api.cuDevicePrimaryCtxRetain(context, device);
            retained = true;
            api.cuCtxSetCurrent(context);
            // Non-blocking: no implicit synchronisation with the legacy NULL stream, so legacy-stream work elsewhere in
            // the process neither serialises with Kiln's kernels nor invalidates a capture in progress.
            api.cuStreamCreate(stream, CUstream_flags.CU_STREAM_NON_BLOCKING);
            streamCreated = true;
            byte[] nameBytes = new byte[256];
            api.cuDeviceGetName(nameBytes, nameBytes.length, device);
            int len = 0;
            while (len < nameBytes.length && nameBytes[len] != 0) {
                len++;
            }
            name = new String(nameBytes, 0, len, StandardCharsets.UTF_8);
            long[] total = new long[1];
            api.cuDeviceTotalMem(total, device);
            totalMemory = total[0];
            ccMajor = attribute(CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
            ccMinor = attribute(CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);

            cudaStream_t rtStream = new cudaStream_t(stream);
            api.cublasCreate(cublas);
            cublasCreated = true;
            // cublasSetStream resets the workspace to cuBLAS's own pool: the stream first, then the workspace.
            api.cublasSetStream(cublas, rtStream);
            // A workspace of our own, so cuBLAS never allocates behind a graph capture's back (32 MiB: NVIDIA's
            // figure for Hopper).
            api.cuMemAlloc(cublasWorkspace, CUBLAS_WORKSPACE_BYTES);
            workspaceAllocated = true;
            api.cublasSetWorkspace(cublas, cublasWorkspace, CUBLAS_WORKSPACE_BYTES);
            setTf32(tf32);
            api.cudnnCreate(cudnn);
            cudnnCreated = true;
            api.cudnnSetStream(cudnn, rtStream);
        } catch (RuntimeException e) {
            throw release(e);
        }
    }

    /** cuBLAS math mode: CUBLAS_DEFAULT_MATH (FP32 FMA, no TF32) unless TF32 is allowed. */
    void setTf32(boolean tf32) {
        api.cublasSetMathMode(cublas, tf32 ? cublasMath.CUBLAS_TF32_TENSOR_OP_MATH : cublasMath.CUBLAS_DEFAULT_MATH);
    }

    int attribute(int attribute) {
        int[] v = new int[1];
        api.cuDeviceGetAttribute(v, attribute, device);
        return v[0];
    }

    /**
     * Makes this context current on the calling thread unless it already is. Asks the driver rather than remembering
     * per thread: anything else in the process (cuBLAS's runtime, another library, {@link CudaDiagnostics}) may have
     * switched the thread to another context since.
     */
    void makeCurrent() {
        CUcontext now = new CUcontext();
        api.cuCtxGetCurrent(now);
        if (!context.equals(now)) {
            api.cuCtxSetCurrent(context);
        }
    }

    void synchronize() {
        api.cuStreamSynchronize(stream);
    }

    long[] memoryInfo() {
        long[] free = new long[1];
        long[] total = new long[1];
        api.cuMemGetInfo(free, total);
        return new long[]{free[0], total[0]};
    }

    /**
     * Releases the handles, the workspace, the stream and the context, each on its own: after a sticky error the
     * synchronisation and some destroys fail, and the rest must still be released.
     */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        ReleaseSteps r = new ReleaseSteps();
        r.run(this::makeCurrent);
        if (streamCreated) {
            r.run(() -> api.cuStreamSynchronize(stream));
        }
        releaseCreated(r);
        r.finish();
    }

    private RuntimeException release(RuntimeException cause) {
        closed = true;
        ReleaseSteps r = new ReleaseSteps();
        releaseCreated(r);
        return r.attachTo(cause);
    }

    private void releaseCreated(ReleaseSteps r) {
        if (cudnnCreated) {
            r.run(() -> api.cudnnDestroy(cudnn));
            cudnnCreated = false;
        }
        if (cublasCreated) {
            r.run(() -> api.cublasDestroy(cublas));
            cublasCreated = false;
        }
        if (workspaceAllocated) {
            r.run(() -> api.cuMemFree(cublasWorkspace));
            workspaceAllocated = false;
        }
        if (streamCreated) {
            r.run(() -> api.cuStreamDestroy(stream));
            streamCreated = false;
        }
        if (retained) {
            r.run(() -> api.cuDevicePrimaryCtxRelease(device));
            retained = false;
        }
    }
}
