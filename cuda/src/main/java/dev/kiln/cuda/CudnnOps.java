package dev.kiln.cuda;

import dev.kiln.backend.BatchNormGeometry;
import dev.kiln.backend.ConvGeometry;
import dev.kiln.backend.PoolGeometry;
import jcuda.Pointer;
import jcuda.jcudnn.cudnnHandle;
import jcuda.jcudnn.cudnnPoolingDescriptor;
import jcuda.jcudnn.cudnnTensorDescriptor;

import java.util.HashMap;
import java.util.Map;
import java.util.function.LongFunction;

import static jcuda.jcudnn.cudnnBatchNormMode.CUDNN_BATCHNORM_SPATIAL;
import static jcuda.jcudnn.cudnnNanPropagation.CUDNN_PROPAGATE_NAN;
import static jcuda.jcudnn.cudnnPoolingMode.CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING;
import static jcuda.jcudnn.cudnnPoolingMode.CUDNN_POOLING_MAX_DETERMINISTIC;
import static jcuda.jcudnn.cudnnSoftmaxAlgorithm.CUDNN_SOFTMAX_ACCURATE;
import static jcuda.jcudnn.cudnnSoftmaxMode.CUDNN_SOFTMAX_MODE_INSTANCE;

/**
 * The cuDNN half of the CUDA backend: convolution (plans cached per shape), batch norm, pooling and softmax
 * (activations are PTX kernels: one switch over the declared codes, activations.cuh). Pointers are device
 * addresses; the caller (CudaBackend) has checked the arguments and serialises calls.
 */
final class CudnnOps implements AutoCloseable {

    private static final Pointer ONE = Pointer.to(new float[]{1f});
    private static final Pointer ZERO = Pointer.to(new float[]{0f});

    private final CudaApi api;
    private final cudnnHandle h;
    private final boolean tf32;
    private final long workspaceLimit;
    private final LongFunction<Pointer> workspace;
    private final Map<ConvGeometry, ConvPlan> plans = new HashMap<>();
    private final Map<BatchNormGeometry, cudnnTensorDescriptor[]> bnDescs = new HashMap<>();
    private final Map<PoolGeometry, Object[]> poolDescs = new HashMap<>();
    /** Softmax matrices by (rows, cols); created once per shape, not per call. */
    private final TensorDescriptorCache<Long> matrices;

    /** @param workspace returns device scratch of at least the given bytes, valid until the next call */
    CudnnOps(CudaApi api, cudnnHandle h, boolean tf32, long workspaceLimit, LongFunction<Pointer> workspace) {
        this.api = api;
        this.h = h;
        this.matrices = new TensorDescriptorCache<>(api, 64);
        this.tf32 = tf32;
        this.workspaceLimit = workspaceLimit;
        this.workspace = workspace;
    }

    ConvPlan plan(ConvGeometry g) {
        return plans.computeIfAbsent(g, k -> new ConvPlan(api, h, k, tf32, workspaceLimit));
    }

    int cachedPlans() {
        return plans.size();
    }

    // ------------------------------------------------------------ convolution

    void convForward(ConvGeometry g, Pointer x, Pointer w, Pointer bias, Pointer y) {
        ConvPlan p = plan(g);
        p.run(p.forward, workspace, (algo, ws, wsBytes) ->
                api.cudnnConvolutionForward(h, ONE, p.x, x, p.w, w, p.conv, algo, ws, wsBytes, ZERO, p.y, y));
        if (bias != null) {
            api.cudnnAddTensor(h, ONE, p.bias, bias, ONE, p.y, y);
        }
    }

    void convBackwardData(ConvGeometry g, Pointer w, Pointer dy, Pointer dx) {
        ConvPlan p = plan(g);
        p.run(p.backwardData, workspace, (algo, ws, wsBytes) ->
                api.cudnnConvolutionBackwardData(h, ONE, p.w, w, p.y, dy, p.conv, algo, ws, wsBytes, ZERO, p.x, dx));
    }

    void convBackwardWeight(ConvGeometry g, Pointer x, Pointer dy, Pointer dw) {
        ConvPlan p = plan(g);
        p.run(p.backwardFilter, workspace, (algo, ws, wsBytes) ->
                api.cudnnConvolutionBackwardFilter(h, ONE, p.x, x, p.y, dy, p.conv, algo, ws, wsBytes, ZERO, p.w, dw));
    }

    void convBackwardBias(ConvGeometry g, Pointer dy, Pointer db) {
        ConvPlan p = plan(g);
        api.cudnnConvolutionBackwardBias(h, ONE, p.y, dy, ZERO, p.bias, db);
    }

    // ------------------------------------------------------------ batch norm

    /*
     * Mode: CUDNN_BATCHNORM_SPATIAL for every rank. Kiln views the input as (n, channels, spatial) and hands cuDNN
     * the 4-d tensor (n, channels, spatial, 1); statistics are per channel over n*spatial values, PyTorch's
     * semantics for BatchNorm1d on (N,C) and (N,C,L) and BatchNorm2d on (N,C,H,W). In particular PyTorch's BN1d on
     * (N,C) normalises per channel over N, which is SPATIAL with H=W=1; PER_ACTIVATION would compute statistics per
     * (c,h,w) element, which only coincides with it when H=W=1 and would be wrong for (N,C,L). (PyTorch itself calls
     * cuDNN with SPATIAL for 2-d/3-d inputs and PER_ACTIVATION for (N,C); the numbers are the same.)
     * Running statistics are not left to cuDNN: exponentialAverageFactor 0 and null running buffers here, and a PTX
     * kernel (kiln_bn_running_stats) applies PyTorch's update with the unbiased variance and either the momentum or
     * 1/num_batches_tracked.
     */
    private cudnnTensorDescriptor[] bn(BatchNormGeometry g) {
        return bnDescs.computeIfAbsent(g, k -> new cudnnTensorDescriptor[]{
                Descriptors.tensor(api, k.n(), k.channels(), k.spatial(), 1),
                Descriptors.tensor(api, 1, k.channels(), 1, 1)});
    }

    void bnForwardTraining(BatchNormGeometry g, Pointer x, Pointer gamma, Pointer beta, double eps, Pointer y,
                           Pointer saveMean, Pointer saveInvStd) {
        cudnnTensorDescriptor[] d = bn(g);
        api.cudnnBatchNormalizationForwardTraining(h, CUDNN_BATCHNORM_SPATIAL, ONE, ZERO, d[0], x, d[0], y, d[1],
                gamma, beta, 0.0, null, null, eps, saveMean, saveInvStd);
    }

    void bnBackward(BatchNormGeometry g, Pointer x, Pointer dy, Pointer gamma, Pointer saveMean, Pointer saveInvStd,
                    double eps, Pointer dx, Pointer dGamma, Pointer dBeta) {
        cudnnTensorDescriptor[] d = bn(g);
        api.cudnnBatchNormalizationBackward(h, CUDNN_BATCHNORM_SPATIAL, ONE, ZERO, ONE, ZERO, d[0], x, d[0], dy,
                d[0], dx, d[1], gamma, dGamma, dBeta, eps, saveMean, saveInvStd);
    }

    // ------------------------------------------------------------ pooling

    private Object[] pool(PoolGeometry g, int mode) {
        return poolDescs.computeIfAbsent(g, k -> {
            cudnnPoolingDescriptor avg = new cudnnPoolingDescriptor();
            api.cudnnCreatePoolingDescriptor(avg);
            api.cudnnSetPooling2dDescriptor(avg, CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING, CUDNN_PROPAGATE_NAN,
                    k.kernelH(), k.kernelW(), k.padH(), k.padW(), k.strideH(), k.strideW());
            cudnnPoolingDescriptor max = new cudnnPoolingDescriptor();
            api.cudnnCreatePoolingDescriptor(max);
            api.cudnnSetPooling2dDescriptor(max, CUDNN_POOLING_MAX_DETERMINISTIC, CUDNN_PROPAGATE_NAN,
                    k.kernelH(), k.kernelW(), k.padH(), k.padW(), k.strideH(), k.strideW());
            return new Object[]{avg, max,
                    Descriptors.tensor(api, k.n(), k.channels(), k.inH(), k.inW()),
                    Descriptors.tensor(api, k.n(), k.channels(), k.outH(), k.outW())};
        });
    }

    void avgPoolForward(PoolGeometry g, Pointer x, Pointer y) {
        Object[] d = pool(g, 0);
        api.cudnnPoolingForward(h, (cudnnPoolingDescriptor) d[0], ONE, (cudnnTensorDescriptor) d[2], x, ZERO,
                (cudnnTensorDescriptor) d[3], y);
    }

    /**
     * Average pooling's gradient does not read x or y; cuDNN's signature still takes them, so dy stands in for y and
     * dx for x (same shapes; cuDNN's average-pooling backward only reads dy).
     */
    void avgPoolBackward(PoolGeometry g, Pointer dy, Pointer dx) {
        Object[] d = pool(g, 0);
        cudnnTensorDescriptor xd = (cudnnTensorDescriptor) d[2];
        cudnnTensorDescriptor yd = (cudnnTensorDescriptor) d[3];
        api.cudnnPoolingBackward(h, (cudnnPoolingDescriptor) d[0], ONE, yd, dy, yd, dy, xd, dx, ZERO, xd, dx);
    }

    void maxPoolForward(PoolGeometry g, Pointer x, Pointer y) {
        Object[] d = pool(g, 1);
        api.cudnnPoolingForward(h, (cudnnPoolingDescriptor) d[1], ONE, (cudnnTensorDescriptor) d[2], x, ZERO,
                (cudnnTensorDescriptor) d[3], y);
    }

    // ------------------------------------------------------------ softmax

    private cudnnTensorDescriptor matrix(int rows, int cols) {
        return matrices.get(((long) rows << 32) | (cols & 0xffffffffL), k -> Descriptors.tensor(api, rows, cols, 1, 1));
    }

    void softmaxForward(int rows, int cols, Pointer x, Pointer y) {
        cudnnTensorDescriptor d = matrix(rows, cols);
        api.cudnnSoftmaxForward(h, CUDNN_SOFTMAX_ACCURATE, CUDNN_SOFTMAX_MODE_INSTANCE, ONE, d, x, ZERO, d, y);
    }

    void softmaxBackward(int rows, int cols, Pointer y, Pointer dy, Pointer dx) {
        cudnnTensorDescriptor d = matrix(rows, cols);
        api.cudnnSoftmaxBackward(h, CUDNN_SOFTMAX_ACCURATE, CUDNN_SOFTMAX_MODE_INSTANCE, ONE, d, y, d, dy, ZERO, d, dx);
    }

    /** Destroys every descriptor, each on its own. */
    @Override
    public void close() {
        ReleaseSteps r = new ReleaseSteps();
        plans.values().forEach(p -> r.run(p::close));
        plans.clear();
        bnDescs.values().forEach(d -> r.run(() -> Descriptors.destroy(api, d)));
        bnDescs.clear();
        for (Object[] d : poolDescs.values()) {
            r.run(() -> api.cudnnDestroyPoolingDescriptor((cudnnPoolingDescriptor) d[0]));
            r.run(() -> api.cudnnDestroyPoolingDescriptor((cudnnPoolingDescriptor) d[1]));
            r.run(() -> Descriptors.destroy(api, (cudnnTensorDescriptor) d[2], (cudnnTensorDescriptor) d[3]));
        }
        poolDescs.clear();
        r.run(matrices::close);
        r.finish();
    }
}
