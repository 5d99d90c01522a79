package dev.kiln.cuda;

import jcuda.Pointer;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUevent;
import jcuda.driver.CUfunction;
import jcuda.driver.CUgraph;
import jcuda.driver.CUgraphExec;
import jcuda.driver.CUgraphNode;
import jcuda.driver.CUmodule;
import jcuda.driver.CUstream;
import jcuda.jcublas.cublasHandle;
import jcuda.jcudnn.cudnnActivationDescriptor;
import jcuda.jcudnn.cudnnConvolutionBwdDataAlgoPerf;
import jcuda.jcudnn.cudnnConvolutionBwdFilterAlgoPerf;
import jcuda.jcudnn.cudnnConvolutionDescriptor;
import jcuda.jcudnn.cudnnConvolutionFwdAlgoPerf;
import jcuda.jcudnn.cudnnFilterDescriptor;
import jcuda.jcudnn.cudnnHandle;
import jcuda.jcudnn.cudnnPoolingDescriptor;
import jcuda.jcudnn.cudnnTensorDescriptor;
import jcuda.runtime.cudaStream_t;

import java.nio.ByteBuffer;

/**
 * Every call the CUDA backend makes into the driver, cuBLAS and cuDNN, in one narrow seam: the production
 * implementation ({@link JCudaApi}) forwards each method to the JCuda static method of the same name, with the same
 * argument order and meaning (failures throw {@code jcuda.CudaException}); a test implementation can record and check
 * the calls on a machine without a GPU. Two methods are not JCuda's: {@link #launchKernel} takes the kernel's
 * arguments as values (so a checker can read them), and {@link #hostBuffer} exposes page-locked host memory.
 * {@link CudaDiagnostics} and {@link CudaProbe} stay on JCuda directly: they describe the real machine.
 */
interface CudaApi {

    /** Makes every failing call throw instead of returning a status. */
    void enableExceptions();

    /**
     * Launches {@code kernel} ({@code function}, from this module) on {@code grid} blocks of {@code block} threads.
     * Arguments as {@link CudaKernels#params} passes them: a Pointer (device address) or null, Integer, Long, Float,
     * Double, or an int[]/long[] by-value struct.
     */
    void launchKernel(CUfunction function, String kernel, int grid, int block, CUstream stream, Object[] args);

    /** The {@code bytes} of page-locked host memory at {@code host} (from {@link #cuMemAllocHost}), native order. */
    ByteBuffer hostBuffer(Pointer host, long bytes);

    void cuCtxGetCurrent(CUcontext ctx);

    void cuCtxSetCurrent(CUcontext ctx);

    void cuDeviceGet(CUdevice device, int ordinal);

    void cuDeviceGetAttribute(int[] value, int attribute, CUdevice device);

    void cuDeviceGetCount(int[] count);

    void cuDeviceGetName(byte[] name, int length, CUdevice device);

    void cuDevicePrimaryCtxRelease(CUdevice device);

    void cuDevicePrimaryCtxRetain(CUcontext ctx, CUdevice device);

    void cuDeviceTotalMem(long[] bytes, CUdevice device);

    void cuEventCreate(CUevent event, int flags);

    void cuEventDestroy(CUevent event);

    void cuEventRecord(CUevent event, CUstream stream);

    void cuEventSynchronize(CUevent event);

    void cuGraphDestroy(CUgraph graph);

    void cuGraphExecDestroy(CUgraphExec exec);

    void cuGraphGetNodes(CUgraph graph, CUgraphNode[] nodes, long[] count);

    void cuGraphInstantiate(CUgraphExec exec, CUgraph graph, long flags);

    void cuGraphLaunch(CUgraphExec exec, CUstream stream);

    void cuGraphUpload(CUgraphExec exec, CUstream stream);

    void cuInit(int flags);

    void cuMemAlloc(CUdeviceptr dptr, long bytes);

    void cuMemAllocHost(Pointer host, long bytes);

    void cuMemFree(CUdeviceptr dptr);

    void cuMemFreeHost(Pointer host);

    void cuMemGetInfo(long[] free, long[] total);

    void cuMemcpyDtoDAsync(CUdeviceptr dst, CUdeviceptr src, long bytes, CUstream stream);

    void cuMemcpyDtoHAsync(Pointer dst, CUdeviceptr src, long bytes, CUstream stream);

    void cuMemcpyHtoDAsync(CUdeviceptr dst, Pointer src, long bytes, CUstream stream);

    void cuMemsetD32Async(CUdeviceptr dst, int value, long count, CUstream stream);

    void cuModuleGetFunction(CUfunction function, CUmodule module, String name);

    void cuModuleLoadData(CUmodule module, byte[] image);

    void cuModuleUnload(CUmodule module);

    void cuStreamBeginCapture(CUstream stream, int mode);

    void cuStreamCreate(CUstream stream, int flags);

    void cuStreamDestroy(CUstream stream);

    void cuStreamEndCapture(CUstream stream, CUgraph graph);

    void cuStreamSynchronize(CUstream stream);

    void cublasCreate(cublasHandle handle);

    void cublasDestroy(cublasHandle handle);

    void cublasSetMathMode(cublasHandle handle, int mode);

    void cublasSetStream(cublasHandle handle, cudaStream_t stream);

    void cublasSetWorkspace(cublasHandle handle, Pointer workspace, long workspaceBytes);

    void cublasSgemm(cublasHandle handle, int transa, int transb, int m, int n, int k, Pointer alpha, Pointer A, int lda,
            Pointer B, int ldb, Pointer beta, Pointer C, int ldc);

    void cudnnActivationBackward(cudnnHandle handle, cudnnActivationDescriptor activation, Pointer alpha,
            cudnnTensorDescriptor yDesc, Pointer y, cudnnTensorDescriptor dyDesc, Pointer dy,
            cudnnTensorDescriptor xDesc, Pointer x, Pointer beta, cudnnTensorDescriptor dxDesc, Pointer dx);

    void cudnnActivationForward(cudnnHandle handle, cudnnActivationDescriptor activation, Pointer alpha,
            cudnnTensorDescriptor xDesc, Pointer x, Pointer beta, cudnnTensorDescriptor yDesc, Pointer y);

    void cudnnAddTensor(cudnnHandle handle, Pointer alpha, cudnnTensorDescriptor aDesc, Pointer A, Pointer beta,
            cudnnTensorDescriptor cDesc, Pointer C);

    void cudnnBatchNormalizationBackward(cudnnHandle handle, int mode, Pointer alphaData, Pointer betaData,
            Pointer alphaParam, Pointer betaParam, cudnnTensorDescriptor xDesc, Pointer x, cudnnTensorDescriptor dyDesc,
            Pointer dy, cudnnTensorDescriptor dxDesc, Pointer dx, cudnnTensorDescriptor paramDesc, Pointer scale,
            Pointer dScale, Pointer dBias, double epsilon, Pointer savedMean, Pointer savedInvVariance);

    void cudnnBatchNormalizationForwardInference(cudnnHandle handle, int mode, Pointer alpha, Pointer beta,
            cudnnTensorDescriptor xDesc, Pointer x, cudnnTensorDescriptor yDesc, Pointer y,
            cudnnTensorDescriptor paramDesc, Pointer scale, Pointer bias, Pointer estimatedMean,
            Pointer estimatedVariance, double epsilon);

    void cudnnBatchNormalizationForwardTraining(cudnnHandle handle, int mode, Pointer alpha, Pointer beta,
            cudnnTensorDescriptor xDesc, Pointer x, cudnnTensorDescriptor yDesc, Pointer y,
            cudnnTensorDescriptor paramDesc, Pointer scale, Pointer bias, double factor, Pointer runningMean,
            Pointer runningVariance, double epsilon, Pointer saveMean, Pointer saveInvVariance);

    void cudnnConvolutionBackwardBias(cudnnHandle handle, Pointer alpha, cudnnTensorDescriptor dyDesc, Pointer dy,
            Pointer beta, cudnnTensorDescriptor dbDesc, Pointer db);

    void cudnnConvolutionBackwardData(cudnnHandle handle, Pointer alpha, cudnnFilterDescriptor wDesc, Pointer w,
            cudnnTensorDescriptor dyDesc, Pointer dy, cudnnConvolutionDescriptor convDesc, int algo, Pointer workspace,
            long workspaceBytes, Pointer beta, cudnnTensorDescriptor dxDesc, Pointer dx);

    void cudnnConvolutionBackwardFilter(cudnnHandle handle, Pointer alpha, cudnnTensorDescriptor xDesc, Pointer x,
            cudnnTensorDescriptor dyDesc, Pointer dy, cudnnConvolutionDescriptor convDesc, int algo, Pointer workspace,
            long workspaceBytes, Pointer beta, cudnnFilterDescriptor dwDesc, Pointer dw);

    void cudnnConvolutionForward(cudnnHandle handle, Pointer alpha, cudnnTensorDescriptor xDesc, Pointer x,
            cudnnFilterDescriptor wDesc, Pointer w, cudnnConvolutionDescriptor convDesc, int algo, Pointer workspace,
            long workspaceBytes, Pointer beta, cudnnTensorDescriptor yDesc, Pointer y);

    void cudnnCreate(cudnnHandle handle);

    void cudnnCreateActivationDescriptor(cudnnActivationDescriptor d);

    void cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor d);

    void cudnnCreateFilterDescriptor(cudnnFilterDescriptor d);

    void cudnnCreatePoolingDescriptor(cudnnPoolingDescriptor d);

    void cudnnCreateTensorDescriptor(cudnnTensorDescriptor d);

    void cudnnDestroy(cudnnHandle handle);

    void cudnnDestroyActivationDescriptor(cudnnActivationDescriptor d);

    void cudnnDestroyConvolutionDescriptor(cudnnConvolutionDescriptor d);

    void cudnnDestroyFilterDescriptor(cudnnFilterDescriptor d);

    void cudnnDestroyPoolingDescriptor(cudnnPoolingDescriptor d);

    void cudnnDestroyTensorDescriptor(cudnnTensorDescriptor d);

    void cudnnGetConvolutionBackwardDataAlgorithm_v7(cudnnHandle handle, cudnnFilterDescriptor wDesc,
            cudnnTensorDescriptor dyDesc, cudnnConvolutionDescriptor convDesc, cudnnTensorDescriptor dxDesc,
            int requested, int[] returned, cudnnConvolutionBwdDataAlgoPerf[] perf);

    void cudnnGetConvolutionBackwardDataWorkspaceSize(cudnnHandle handle, cudnnFilterDescriptor wDesc,
            cudnnTensorDescriptor dyDesc, cudnnConvolutionDescriptor convDesc, cudnnTensorDescriptor dxDesc, int algo,
            long[] bytes);

    void cudnnGetConvolutionBackwardFilterAlgorithm_v7(cudnnHandle handle, cudnnTensorDescriptor xDesc,
            cudnnTensorDescriptor dyDesc, cudnnConvolutionDescriptor convDesc, cudnnFilterDescriptor dwDesc,
            int requested, int[] returned, cudnnConvolutionBwdFilterAlgoPerf[] perf);

    void cudnnGetConvolutionBackwardFilterWorkspaceSize(cudnnHandle handle, cudnnTensorDescriptor xDesc,
            cudnnTensorDescriptor dyDesc, cudnnConvolutionDescriptor convDesc, cudnnFilterDescriptor dwDesc, int algo,
            long[] bytes);

    void cudnnGetConvolutionForwardAlgorithm_v7(cudnnHandle handle, cudnnTensorDescriptor xDesc,
            cudnnFilterDescriptor wDesc, cudnnConvolutionDescriptor convDesc, cudnnTensorDescriptor yDesc, int requested,
            int[] returned, cudnnConvolutionFwdAlgoPerf[] perf);

    void cudnnGetConvolutionForwardWorkspaceSize(cudnnHandle handle, cudnnTensorDescriptor xDesc,
            cudnnFilterDescriptor wDesc, cudnnConvolutionDescriptor convDesc, cudnnTensorDescriptor yDesc, int algo,
            long[] bytes);

    void cudnnPoolingBackward(cudnnHandle handle, cudnnPoolingDescriptor pooling, Pointer alpha,
            cudnnTensorDescriptor yDesc, Pointer y, cudnnTensorDescriptor dyDesc, Pointer dy,
            cudnnTensorDescriptor xDesc, Pointer x, Pointer beta, cudnnTensorDescriptor dxDesc, Pointer dx);

    void cudnnPoolingForward(cudnnHandle handle, cudnnPoolingDescriptor pooling, Pointer alpha,
            cudnnTensorDescriptor xDesc, Pointer x, Pointer beta, cudnnTensorDescriptor yDesc, Pointer y);

    void cudnnSetActivationDescriptor(cudnnActivationDescriptor d, int mode, int nanOpt, double coef);

    void cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor d, int padH, int padW, int strideH, int strideW,
            int dilationH, int dilationW, int mode, int dataType);

    void cudnnSetConvolutionMathType(cudnnConvolutionDescriptor d, int mathType);

    void cudnnSetConvolutionGroupCount(cudnnConvolutionDescriptor d, int groupCount);

    void cudnnSetFilter4dDescriptor(cudnnFilterDescriptor d, int dataType, int format, int k, int c, int h, int w);

    void cudnnSetPooling2dDescriptor(cudnnPoolingDescriptor d, int mode, int nanOpt, int windowH, int windowW, int padH,
            int padW, int strideH, int strideW);

    void cudnnSetStream(cudnnHandle handle, cudaStream_t stream);

    void cudnnSetTensor4dDescriptor(cudnnTensorDescriptor d, int format, int dataType, int n, int c, int h, int w);

    void cudnnSoftmaxBackward(cudnnHandle handle, int algo, int mode, Pointer alpha, cudnnTensorDescriptor yDesc,
            Pointer y, cudnnTensorDescriptor dyDesc, Pointer dy, Pointer beta, cudnnTensorDescriptor dxDesc,
            Pointer dx);

    void cudnnSoftmaxForward(cudnnHandle handle, int algo, int mode, Pointer alpha, cudnnTensorDescriptor xDesc,
            Pointer x, Pointer beta, cudnnTensorDescriptor yDesc, Pointer y);
}
