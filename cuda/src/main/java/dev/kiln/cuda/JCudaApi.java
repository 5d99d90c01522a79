package dev.kiln.cuda;

import jcuda.CudaException;
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
import jcuda.driver.JCudaDriver;
import jcuda.jcublas.JCublas2;
import jcuda.jcudnn.JCudnn;

import java.nio.ByteOrder;
import java.util.function.IntFunction;

/** The production {@link CudaApi}: each method is the JCuda call of the same name. */
final class JCudaApi implements CudaApi {

    static final JCudaApi INSTANCE = new JCudaApi();

    private JCudaApi() {
    }

    @Override
    public void enableExceptions() {
        JCudaDriver.setExceptionsEnabled(true);
        JCublas2.setExceptionsEnabled(true);
        // cuDNN results are checked here instead (cudnn below): JCudnn's own exceptions name a status its 11.7.0
        // classes do not know (cuDNN 9's codes) as "INVALID cudnnStatus: 3000"
        JCudnn.setExceptionsEnabled(false);
    }

    /** Throws, naming the call and cuDNN's own description of the status, unless {@code status} is success. */
    private static void cudnn(String call, int status) {
        if (status != 0) {
            throw new CudaException(cudnnFailure(call, status, JCudnn::cudnnGetErrorString));
        }
    }

    /**
     * The message for a failed cuDNN call: the library's own text for the status ({@code cudnnGetErrorString}, which
     * knows every code of the loaded cuDNN), and the number.
     */
    static String cudnnFailure(String call, int status, IntFunction<String> errorString) {
        String text;
        try {
            text = errorString.apply(status);
        } catch (RuntimeException | LinkageError e) {
            text = null;
        }
        return call + " failed: " + (text == null || text.isBlank() ? "cuDNN status" : text) + " (" + status + ")";
    }

    @Override
    public void launchKernel(CUfunction function, String kernel, int grid, int block, CUstream stream, Object[] args) {
        JCudaDriver.cuLaunchKernel(function, grid, 1, 1, block, 1, 1, 0, stream, CudaKernels.params(args), null);
    }

    @Override
    public ByteBuffer hostBuffer(Pointer host, long bytes) {
        return host.getByteBuffer(0, bytes).order(ByteOrder.nativeOrder());
    }

    @Override
    public void cuCtxGetCurrent(CUcontext ctx) {
        JCudaDriver.cuCtxGetCurrent(ctx);
    }

    @Override
    public void cuCtxSetCurrent(CUcontext ctx) {
        JCudaDriver.cuCtxSetCurrent(ctx);
    }

    @Override
    public void cuDeviceGet(CUdevice device, int ordinal) {
        JCudaDriver.cuDeviceGet(device, ordinal);
    }

    @Override
    public void cuDeviceGetAttribute(int[] value, int attribute, CUdevice device) {
        JCudaDriver.cuDeviceGetAttribute(value, attribute, device);
    }

    @Override
    public void cuDeviceGetCount(int[] count) {
        JCudaDriver.cuDeviceGetCount(count);
    }

    @Override
    public void cuDeviceGetName(byte[] name, int length, CUdevice device) {
        JCudaDriver.cuDeviceGetName(name, length, device);
    }

    @Override
    public void cuDevicePrimaryCtxRelease(CUdevice device) {
        JCudaDriver.cuDevicePrimaryCtxRelease(device);
    }

    @Override
    public void cuDevicePrimaryCtxRetain(CUcontext ctx, CUdevice device) {
        JCudaDriver.cuDevicePrimaryCtxRetain(ctx, device);
    }

    @Override
    public void cuDeviceTotalMem(long[] bytes, CUdevice device) {
        JCudaDriver.cuDeviceTotalMem(bytes, device);
    }

    @Override
    public void cuEventCreate(CUevent event, int flags) {
        JCudaDriver.cuEventCreate(event, flags);
    }

    @Override
    public void cuEventDestroy(CUevent event) {
        JCudaDriver.cuEventDestroy(event);
    }

    @Override
    public void cuEventRecord(CUevent event, CUstream stream) {
        JCudaDriver.cuEventRecord(event, stream);
    }

    @Override
    public void cuEventSynchronize(CUevent event) {
        JCudaDriver.cuEventSynchronize(event);
    }

    @Override
    public void cuGraphDestroy(CUgraph graph) {
        JCudaDriver.cuGraphDestroy(graph);
    }

    @Override
    public void cuGraphExecDestroy(CUgraphExec exec) {
        JCudaDriver.cuGraphExecDestroy(exec);
    }

    @Override
    public void cuGraphGetNodes(CUgraph graph, CUgraphNode[] nodes, long[] count) {
        JCudaDriver.cuGraphGetNodes(graph, nodes, count);
    }

    @Override
    public void cuGraphInstantiate(CUgraphExec exec, CUgraph graph, long flags) {
        JCudaDriver.cuGraphInstantiate(exec, graph, flags);
    }

    @Override
    public void cuGraphLaunch(CUgraphExec exec, CUstream stream) {
        JCudaDriver.cuGraphLaunch(exec, stream);
    }

    @Override
    public void cuGraphUpload(CUgraphExec exec, CUstream stream) {
        JCudaDriver.cuGraphUpload(exec, stream);
    }

    @Override
    public void cuInit(int flags) {
        JCudaDriver.cuInit(flags);
    }

    @Override
    public void cuMemAlloc(CUdeviceptr dptr, long bytes) {
        JCudaDriver.cuMemAlloc(dptr, bytes);
    }

    @Override
    public void cuMemAllocHost(Pointer host, long bytes) {
        JCudaDriver.cuMemAllocHost(host, bytes);
    }

    @Override
    public void cuMemFree(CUdeviceptr dptr) {
        JCudaDriver.cuMemFree(dptr);
    }

    @Override
    public void cuMemFreeHost(Pointer host) {
        JCudaDriver.cuMemFreeHost(host);
    }

    @Override
    public void cuMemGetInfo(long[] free, long[] total) {
        JCudaDriver.cuMemGetInfo(free, total);
    }

    @Override
    public void cuMemcpyDtoDAsync(CUdeviceptr dst, CUdeviceptr src, long bytes, CUstream stream) {
        JCudaDriver.cuMemcpyDtoDAsync(dst, src, bytes, stream);
    }

    @Override
    public void cuMemcpyDtoHAsync(Pointer dst, CUdeviceptr src, long bytes, CUstream stream) {
        JCudaDriver.cuMemcpyDtoHAsync(dst, src, bytes, stream);
    }

    @Override
    public void cuMemcpyHtoDAsync(CUdeviceptr dst, Pointer src, long bytes, CUstream stream) {
        JCudaDriver.cuMemcpyHtoDAsync(dst, src, bytes, stream);
    }

    @Override
    public void cuMemsetD32Async(CUdeviceptr dst, int value, long count, CUstream stream) {
        JCudaDriver.cuMemsetD32Async(dst, value, count, stream);
    }

    @Override
    public void cuModuleGetFunction(CUfunction function, CUmodule module, String name) {
        JCudaDriver.cuModuleGetFunction(function, module, name);
    }

    @Override
    public void cuModuleLoadData(CUmodule module, byte[] image) {
        JCudaDriver.cuModuleLoadData(module, image);
    }

    @Override
    public void cuModuleUnload(CUmodule module) {
        JCudaDriver.cuModuleUnload(module);
    }

    @Override
    public void cuStreamBeginCapture(CUstream stream, int mode) {
        JCudaDriver.cuStreamBeginCapture(stream, mode);
    }

    @Override
    public void cuStreamCreate(CUstream stream, int flags) {
        JCudaDriver.cuStreamCreate(stream, flags);
    }

    @Override
    public void cuStreamDestroy(CUstream stream) {
        JCudaDriver.cuStreamDestroy(stream);
    }

    @Override
    public void cuStreamEndCapture(CUstream stream, CUgraph graph) {
        JCudaDriver.cuStreamEndCapture(stream, graph);
    }

    @Override
    public void cuStreamSynchronize(CUstream stream) {
        JCudaDriver.cuStreamSynchronize(stream);
    }

    @Override
    public void cublasCreate(cublasHandle handle) {
        JCublas2.cublasCreate(handle);
    }

    @Override
    public void cublasDestroy(cublasHandle handle) {
        JCublas2.cublasDestroy(handle);
    }

    @Override
    public void cublasSetMathMode(cublasHandle handle, int mode) {
        JCublas2.cublasSetMathMode(handle, mode);
    }

    @Override
    public void cublasSetStream(cublasHandle handle, cudaStream_t stream) {
        JCublas2.cublasSetStream(handle, stream);
    }

    @Override
    public void cublasSetWorkspace(cublasHandle handle, Pointer workspace, long workspaceBytes) {
        JCublas2.cublasSetWorkspace(handle, workspace, workspaceBytes);
    }

    @Override
    public void cublasSgemm(cublasHandle handle, int transa, int transb, int m, int n, int k, Pointer alpha, Pointer A,
            int lda, Pointer B, int ldb, Pointer beta, Pointer C, int ldc) {
        JCublas2.cublasSgemm(handle, transa, transb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
    }

    @Override
    public void cudnnActivationBackward(cudnnHandle handle, cudnnActivationDescriptor activation, Pointer alpha,
            cudnnTensorDescriptor yDesc, Pointer y, cudnnTensorDescriptor dyDesc, Pointer dy,
            cudnnTensorDescriptor xDesc, Pointer x, Pointer beta, cudnnTensorDescriptor dxDesc, Pointer dx) {
        cudnn("cudnnActivationBackward", JCudnn.cudnnActivationBackward(handle, activation, alpha, yDesc, y, dyDesc,
                dy, xDesc, x, beta, dxDesc, dx));
    }

    @Override
    public void cudnnActivationForward(cudnnHandle handle, cudnnActivationDescriptor activation, Pointer alpha,
            cudnnTensorDescriptor xDesc, Pointer x, Pointer beta, cudnnTensorDescriptor yDesc, Pointer y) {
        cudnn("cudnnActivationForward", JCudnn.cudnnActivationForward(handle, activation, alpha, xDesc, x, beta,
                yDesc, y));
    }

    @Override
    public void cudnnAddTensor(cudnnHandle handle, Pointer alpha, cudnnTensorDescriptor aDesc, Pointer A, Pointer beta,
            cudnnTensorDescriptor cDesc, Pointer C) {
        cudnn("cudnnAddTensor", JCudnn.cudnnAddTensor(handle, alpha, aDesc, A, beta, cDesc, C));
    }

    @Override
    public void cudnnBatchNormalizationBackward(cudnnHandle handle, int mode, Pointer alphaData, Pointer betaData,
            Pointer alphaParam, Pointer betaParam, cudnnTensorDescriptor xDesc, Pointer x, cudnnTensorDescriptor dyDesc,
            Pointer dy, cudnnTensorDescriptor dxDesc, Pointer dx, cudnnTensorDescriptor paramDesc, Pointer scale,
            Pointer dScale, Pointer dBias, double epsilon, Pointer savedMean, Pointer savedInvVariance) {
        cudnn("cudnnBatchNormalizationBackward", JCudnn.cudnnBatchNormalizationBackward(handle, mode, alphaData,
                betaData, alphaParam, betaParam, xDesc, x, dyDesc, dy, dxDesc, dx, paramDesc, scale, dScale, dBias,
                epsilon, savedMean, savedInvVariance));
    }

    @Override
    public void cudnnBatchNormalizationForwardInference(cudnnHandle handle, int mode, Pointer alpha, Pointer beta,
            cudnnTensorDescriptor xDesc, Pointer x, cudnnTensorDescriptor yDesc, Pointer y,
            cudnnTensorDescriptor paramDesc, Pointer scale, Pointer bias, Pointer estimatedMean,
            Pointer estimatedVariance, double epsilon) {
        cudnn("cudnnBatchNormalizationForwardInference", JCudnn.cudnnBatchNormalizationForwardInference(handle, mode,
                alpha, beta, xDesc, x, yDesc, y, paramDesc, scale, bias, estimatedMean, estimatedVariance, epsilon));
    }

    @Override
    public void cudnnBatchNormalizationForwardTraining(cudnnHandle handle, int mode, Pointer alpha, Pointer beta,
            cudnnTensorDescriptor xDesc, Pointer x, cudnnTensorDescriptor yDesc, Pointer y,
            cudnnTensorDescriptor paramDesc, Pointer scale, Pointer bias, double factor, Pointer runningMean,
            Pointer runningVariance, double epsilon, Pointer saveMean, Pointer saveInvVariance) {
        cudnn("cudnnBatchNormalizationForwardTraining", JCudnn.cudnnBatchNormalizationForwardTraining(handle, mode,
                alpha, beta, xDesc, x, yDesc, y, paramDesc, scale, bias, factor, runningMean, runningVariance,
                epsilon, saveMean, saveInvVariance));
    }

    @Override
    public void cudnnConvolutionBackwardBias(cudnnHandle handle, Pointer alpha, cudnnTensorDescriptor dyDesc, Pointer dy,
            Pointer beta, cudnnTensorDescriptor dbDesc, Pointer db) {
        cudnn("cudnnConvolutionBackwardBias", JCudnn.cudnnConvolutionBackwardBias(handle, alpha, dyDesc, dy, beta,
                dbDesc, db));
    }

    @Override
    public void cudnnConvolutionBackwardData(cudnnHandle handle, Pointer alpha, cudnnFilterDescriptor wDesc, Pointer w,
            cudnnTensorDescriptor dyDesc, Pointer dy, cudnnConvolutionDescriptor convDesc, int algo, Pointer workspace,
            long workspaceBytes, Pointer beta, cudnnTensorDescriptor dxDesc, Pointer dx) {
        cudnn("cudnnConvolutionBackwardData", JCudnn.cudnnConvolutionBackwardData(handle, alpha, wDesc, w, dyDesc, dy,
                convDesc, algo, workspace, workspaceBytes, beta, dxDesc, dx));
    }

    @Override
    public void cudnnConvolutionBackwardFilter(cudnnHandle handle, Pointer alpha, cudnnTensorDescriptor xDesc, Pointer x,
            cudnnTensorDescriptor dyDesc, Pointer dy, cudnnConvolutionDescriptor convDesc, int algo, Pointer workspace,
            long workspaceBytes, Pointer beta, cudnnFilterDescriptor dwDesc, Pointer dw) {
        cudnn("cudnnConvolutionBackwardFilter", JCudnn.cudnnConvolutionBackwardFilter(handle, alpha, xDesc, x, dyDesc,
                dy, convDesc, algo, workspace, workspaceBytes, beta, dwDesc, dw));
    }

    @Override
    public void cudnnConvolutionForward(cudnnHandle handle, Pointer alpha, cudnnTensorDescriptor xDesc, Pointer x,
            cudnnFilterDescriptor wDesc, Pointer w, cudnnConvolutionDescriptor convDesc, int algo, Pointer workspace,
            long workspaceBytes, Pointer beta, cudnnTensorDescriptor yDesc, Pointer y) {
        cudnn("cudnnConvolutionForward", JCudnn.cudnnConvolutionForward(handle, alpha, xDesc, x, wDesc, w, convDesc,
                algo, workspace, workspaceBytes, beta, yDesc, y));
    }

    @Override
    public void cudnnCreate(cudnnHandle handle) {
        cudnn("cudnnCreate", JCudnn.cudnnCreate(handle));
    }

    @Override
    public void cudnnCreateActivationDescriptor(cudnnActivationDescriptor d) {
        cudnn("cudnnCreateActivationDescriptor", JCudnn.cudnnCreateActivationDescriptor(d));
    }

    @Override
    public void cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor d) {
        cudnn("cudnnCreateConvolutionDescriptor", JCudnn.cudnnCreateConvolutionDescriptor(d));
    }

    @Override
    public void cudnnCreateFilterDescriptor(cudnnFilterDescriptor d) {
        cudnn("cudnnCreateFilterDescriptor", JCudnn.cudnnCreateFilterDescriptor(d));
    }

    @Override
    public void cudnnCreatePoolingDescriptor(cudnnPoolingDescriptor d) {
        cudnn("cudnnCreatePoolingDescriptor", JCudnn.cudnnCreatePoolingDescriptor(d));
    }

    @Override
    public void cudnnCreateTensorDescriptor(cudnnTensorDescriptor d) {
        cudnn("cudnnCreateTensorDescriptor", JCudnn.cudnnCreateTensorDescriptor(d));
    }

    @Override
    public void cudnnDestroy(cudnnHandle handle) {
        cudnn("cudnnDestroy", JCudnn.cudnnDestroy(handle));
    }

    @Override
    public void cudnnDestroyActivationDescriptor(cudnnActivationDescriptor d) {
        cudnn("cudnnDestroyActivationDescriptor", JCudnn.cudnnDestroyActivationDescriptor(d));
    }

    @Override
    public void cudnnDestroyConvolutionDescriptor(cudnnConvolutionDescriptor d) {
        cudnn("cudnnDestroyConvolutionDescriptor", JCudnn.cudnnDestroyConvolutionDescriptor(d));
    }

    @Override
    public void cudnnDestroyFilterDescriptor(cudnnFilterDescriptor d) {
        cudnn("cudnnDestroyFilterDescriptor", JCudnn.cudnnDestroyFilterDescriptor(d));
    }

    @Override
    public void cudnnDestroyPoolingDescriptor(cudnnPoolingDescriptor d) {
        cudnn("cudnnDestroyPoolingDescriptor", JCudnn.cudnnDestroyPoolingDescriptor(d));
    }

    @Override
    public void cudnnDestroyTensorDescriptor(cudnnTensorDescriptor d) {
        cudnn("cudnnDestroyTensorDescriptor", JCudnn.cudnnDestroyTensorDescriptor(d));
    }

    @Override
    public void cudnnGetConvolutionBackwardDataAlgorithm_v7(cudnnHandle handle, cudnnFilterDescriptor wDesc,
            cudnnTensorDescriptor dyDesc, cudnnConvolutionDescriptor convDesc, cudnnTensorDescriptor dxDesc,
            int requested, int[] returned, cudnnConvolutionBwdDataAlgoPerf[] perf) {
        cudnn("cudnnGetConvolutionBackwardDataAlgorithm_v7", JCudnn.cudnnGetConvolutionBackwardDataAlgorithm_v7(
                handle, wDesc, dyDesc, convDesc, dxDesc, requested, returned, perf));
    }

    @Override
    public void cudnnGetConvolutionBackwardDataWorkspaceSize(cudnnHandle handle, cudnnFilterDescriptor wDesc,
            cudnnTensorDescriptor dyDesc, cudnnConvolutionDescriptor convDesc, cudnnTensorDescriptor dxDesc, int algo,
            long[] bytes) {
        cudnn("cudnnGetConvolutionBackwardDataWorkspaceSize", JCudnn.cudnnGetConvolutionBackwardDataWorkspaceSize(
                handle, wDesc, dyDesc, convDesc, dxDesc, algo, bytes));
    }

    @Override
    public void cudnnGetConvolutionBackwardFilterAlgorithm_v7(cudnnHandle handle, cudnnTensorDescriptor xDesc,
            cudnnTensorDescriptor dyDesc, cudnnConvolutionDescriptor convDesc, cudnnFilterDescriptor dwDesc,
            int requested, int[] returned, cudnnConvolutionBwdFilterAlgoPerf[] perf) {
        cudnn("cudnnGetConvolutionBackwardFilterAlgorithm_v7", JCudnn.cudnnGetConvolutionBackwardFilterAlgorithm_v7(
                handle, xDesc, dyDesc, convDesc, dwDesc, requested, returned, perf));
    }

    @Override
    public void cudnnGetConvolutionBackwardFilterWorkspaceSize(cudnnHandle handle, cudnnTensorDescriptor xDesc,
            cudnnTensorDescriptor dyDesc, cudnnConvolutionDescriptor convDesc, cudnnFilterDescriptor dwDesc, int algo,
            long[] bytes) {
        cudnn("cudnnGetConvolutionBackwardFilterWorkspaceSize", JCudnn.cudnnGetConvolutionBackwardFilterWorkspaceSize(
                handle, xDesc, dyDesc, convDesc, dwDesc, algo, bytes));
    }

    @Override
    public void cudnnGetConvolutionForwardAlgorithm_v7(cudnnHandle handle, cudnnTensorDescriptor xDesc,
            cudnnFilterDescriptor wDesc, cudnnConvolutionDescriptor convDesc, cudnnTensorDescriptor yDesc, int requested,
            int[] returned, cudnnConvolutionFwdAlgoPerf[] perf) {
        cudnn("cudnnGetConvolutionForwardAlgorithm_v7", JCudnn.cudnnGetConvolutionForwardAlgorithm_v7(handle, xDesc,
                wDesc, convDesc, yDesc, requested, returned, perf));
    }

    @Override
    public void cudnnGetConvolutionForwardWorkspaceSize(cudnnHandle handle, cudnnTensorDescriptor xDesc,
            cudnnFilterDescriptor wDesc, cudnnConvolutionDescriptor convDesc, cudnnTensorDescriptor yDesc, int algo,
            long[] bytes) {
        cudnn("cudnnGetConvolutionForwardWorkspaceSize", JCudnn.cudnnGetConvolutionForwardWorkspaceSize(handle, xDesc,
                wDesc, convDesc, yDesc, algo, bytes));
    }

    @Override
    public void cudnnPoolingBackward(cudnnHandle handle, cudnnPoolingDescriptor pooling, Pointer alpha,
            cudnnTensorDescriptor yDesc, Pointer y, cudnnTensorDescriptor dyDesc, Pointer dy,
            cudnnTensorDescriptor xDesc, Pointer x, Pointer beta, cudnnTensorDescriptor dxDesc, Pointer dx) {
        cudnn("cudnnPoolingBackward", JCudnn.cudnnPoolingBackward(handle, pooling, alpha, yDesc, y, dyDesc, dy, xDesc,
                x, beta, dxDesc, dx));
    }

    @Override
    public void cudnnPoolingForward(cudnnHandle handle, cudnnPoolingDescriptor pooling, Pointer alpha,
            cudnnTensorDescriptor xDesc, Pointer x, Pointer beta, cudnnTensorDescriptor yDesc, Pointer y) {
        cudnn("cudnnPoolingForward", JCudnn.cudnnPoolingForward(handle, pooling, alpha, xDesc, x, beta, yDesc, y));
    }

    @Override
    public void cudnnSetActivationDescriptor(cudnnActivationDescriptor d, int mode, int nanOpt, double coef) {
        cudnn("cudnnSetActivationDescriptor", JCudnn.cudnnSetActivationDescriptor(d, mode, nanOpt, coef));
    }

    @Override
    public void cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor d, int padH, int padW, int strideH,
            int strideW, int dilationH, int dilationW, int mode, int dataType) {
        cudnn("cudnnSetConvolution2dDescriptor", JCudnn.cudnnSetConvolution2dDescriptor(d, padH, padW, strideH,
                strideW, dilationH, dilationW, mode, dataType));
    }

    @Override
    public void cudnnSetConvolutionMathType(cudnnConvolutionDescriptor d, int mathType) {
        cudnn("cudnnSetConvolutionMathType", JCudnn.cudnnSetConvolutionMathType(d, mathType));
    }

    @Override
    public void cudnnSetConvolutionGroupCount(cudnnConvolutionDescriptor d, int groupCount) {
        cudnn("cudnnSetConvolutionGroupCount", JCudnn.cudnnSetConvolutionGroupCount(d, groupCount));
    }

    @Override
    public void cudnnSetFilter4dDescriptor(cudnnFilterDescriptor d, int dataType, int format, int k, int c, int h,
            int w) {
        cudnn("cudnnSetFilter4dDescriptor", JCudnn.cudnnSetFilter4dDescriptor(d, dataType, format, k, c, h, w));
    }

    @Override
    public void cudnnSetPooling2dDescriptor(cudnnPoolingDescriptor d, int mode, int nanOpt, int windowH, int windowW,
            int padH, int padW, int strideH, int strideW) {
        cudnn("cudnnSetPooling2dDescriptor", JCudnn.cudnnSetPooling2dDescriptor(d, mode, nanOpt, windowH, windowW,
                padH, padW, strideH, strideW));
    }

    @Override
    public void cudnnSetStream(cudnnHandle handle, cudaStream_t stream) {
        cudnn("cudnnSetStream", JCudnn.cudnnSetStream(handle, stream));
    }

    @Override
    public void cudnnSetTensor4dDescriptor(cudnnTensorDescriptor d, int format, int dataType, int n, int c, int h,
            int w) {
        cudnn("cudnnSetTensor4dDescriptor", JCudnn.cudnnSetTensor4dDescriptor(d, format, dataType, n, c, h, w));
    }

    @Override
    public void cudnnSoftmaxBackward(cudnnHandle handle, int algo, int mode, Pointer alpha, cudnnTensorDescriptor yDesc,
            Pointer y, cudnnTensorDescriptor dyDesc, Pointer dy, Pointer beta, cudnnTensorDescriptor dxDesc,
            Pointer dx) {
        cudnn("cudnnSoftmaxBackward", JCudnn.cudnnSoftmaxBackward(handle, algo, mode, alpha, yDesc, y, dyDesc, dy,
                beta, dxDesc, dx));
    }

    @Override
    public void cudnnSoftmaxForward(cudnnHandle handle, int algo, int mode, Pointer alpha, cudnnTensorDescriptor xDesc,
            Pointer x, Pointer beta, cudnnTensorDescriptor yDesc, Pointer y) {
        cudnn("cudnnSoftmaxForward", JCudnn.cudnnSoftmaxForward(handle, algo, mode, alpha, xDesc, x, beta, yDesc, y));
    }
}
