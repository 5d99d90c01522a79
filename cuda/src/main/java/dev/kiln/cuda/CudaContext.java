package dev.kiln.cuda;

import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdevice_attribute;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUstream;
import jcuda.driver.JCudaDriver;
import jcuda.jcublas.JCublas2;
import jcuda.jcublas.cublasHandle;
import jcuda.jcublas.cublasMath;
import jcuda.jcudnn.JCudnn;
import jcuda.jcudnn.cudnnHandle;
import jcuda.runtime.cudaStream_t;

import java.nio.charset.StandardCharsets;

/**
 * One GPU: its primary context (shared with the CUDA runtime inside cuBLAS/cuDNN), one stream, and a cuBLAS and a
 * cuDNN handle bound to that stream. Every thread that calls into the backend makes the context current first
 * ({@link #makeCurrent}).
 */
final class CudaContext implements AutoCloseable {

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
    private final ThreadLocal<Boolean> current = ThreadLocal.withInitial(() -> Boolean.FALSE);
    private boolean closed;
    private static final long CUBLAS_WORKSPACE_BYTES = 32L << 20;
    private final CUdeviceptr cublasWorkspace = new CUdeviceptr();

    CudaContext(int index, boolean tf32) {
        this.index = index;
        JCudaDriver.setExceptionsEnabled(true);
        JCublas2.setExceptionsEnabled(true);
        JCudnn.setExceptionsEnabled(true);
        JCudaDriver.cuInit(0);
        int[] count = new int[1];
        JCudaDriver.cuDeviceGetCount(count);
        if (index >= count[0]) {
            throw new IllegalArgumentException("cuda:" + index + " does not exist: this host has " + count[0] + " CUDA device(s)");
        }
        JCudaDriver.cuDeviceGet(device, index);
        JCudaDriver.cuDevicePrimaryCtxRetain(context, device);
        JCudaDriver.cuCtxSetCurrent(context);
        current.set(Boolean.TRUE);
        JCudaDriver.cuStreamCreate(stream, 0);
        byte[] nameBytes = new byte[256];
        JCudaDriver.cuDeviceGetName(nameBytes, nameBytes.length, device);
        int len = 0;
        while (len < nameBytes.length && nameBytes[len] != 0) {
            len++;
        }
        name = new String(nameBytes, 0, len, StandardCharsets.UTF_8);
        long[] total = new long[1];
        JCudaDriver.cuDeviceTotalMem(total, device);
        totalMemory = total[0];
        ccMajor = attribute(CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
        ccMinor = attribute(CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);

        cudaStream_t rtStream = new cudaStream_t(stream);
        JCublas2.cublasCreate(cublas);
        JCublas2.cublasSetStream(cublas, rtStream);
        // A workspace of our own, so cuBLAS never allocates behind a graph capture's back (32 MiB: NVIDIA's figure for Hopper).
        JCudaDriver.cuMemAlloc(cublasWorkspace, CUBLAS_WORKSPACE_BYTES);
        JCublas2.cublasSetWorkspace(cublas, cublasWorkspace, CUBLAS_WORKSPACE_BYTES);
        setTf32(tf32);
        JCudnn.cudnnCreate(cudnn);
        JCudnn.cudnnSetStream(cudnn, rtStream);
    }

    /** cuBLAS math mode: CUBLAS_DEFAULT_MATH (FP32 FMA, no TF32) unless TF32 is allowed. */
    void setTf32(boolean tf32) {
        JCublas2.cublasSetMathMode(cublas, tf32 ? cublasMath.CUBLAS_TF32_TENSOR_OP_MATH : cublasMath.CUBLAS_DEFAULT_MATH);
    }

    int attribute(int attribute) {
        int[] v = new int[1];
        JCudaDriver.cuDeviceGetAttribute(v, attribute, device);
        return v[0];
    }

    void makeCurrent() {
        if (!current.get()) {
            JCudaDriver.cuCtxSetCurrent(context);
            current.set(Boolean.TRUE);
        }
    }

    void synchronize() {
        JCudaDriver.cuStreamSynchronize(stream);
    }

    long[] memoryInfo() {
        long[] free = new long[1];
        long[] total = new long[1];
        JCudaDriver.cuMemGetInfo(free, total);
        return new long[]{free[0], total[0]};
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        makeCurrent();
        JCudaDriver.cuStreamSynchronize(stream);
        JCudnn.cudnnDestroy(cudnn);
        JCublas2.cublasDestroy(cublas);
        JCudaDriver.cuMemFree(cublasWorkspace);
        JCudaDriver.cuStreamDestroy(stream);
        JCudaDriver.cuDevicePrimaryCtxRelease(device);
    }
}
