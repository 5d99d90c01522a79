package dev.kiln.cuda;

import dev.kiln.backend.ConvGeometry;
import jcuda.jcudnn.cudnnConvolutionBwdDataAlgoPerf;
import jcuda.jcudnn.cudnnConvolutionBwdFilterAlgoPerf;
import jcuda.jcudnn.cudnnConvolutionDescriptor;
import jcuda.jcudnn.cudnnConvolutionFwdAlgoPerf;
import jcuda.jcudnn.cudnnFilterDescriptor;
import jcuda.jcudnn.cudnnHandle;
import jcuda.jcudnn.cudnnTensorDescriptor;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.function.IntToLongFunction;
import java.util.function.IntUnaryOperator;

import static jcuda.jcudnn.cudnnConvolutionMode.CUDNN_CROSS_CORRELATION;
import static jcuda.jcudnn.cudnnDataType.CUDNN_DATA_FLOAT;
import static jcuda.jcudnn.cudnnDeterminism.CUDNN_DETERMINISTIC;
import static jcuda.jcudnn.cudnnMathType.CUDNN_DEFAULT_MATH;
import static jcuda.jcudnn.cudnnMathType.CUDNN_FMA_MATH;
import static jcuda.jcudnn.cudnnStatus.CUDNN_STATUS_SUCCESS;

/**
 * Everything cuDNN needs for one convolution shape, chosen once and cached by {@link CudnnOps}: descriptors, and for
 * forward, backward-data and backward-filter the algorithm and its workspace size. Algorithms come from cuDNN's
 * heuristics ({@code cudnnGet*Algorithm_v7}), keeping the best one that is deterministic (Kiln's training steps are
 * reproducible bit for bit) and fits the workspace limit. Math type: FMA only (no TF32) unless TF32 is allowed.
 */
final class ConvPlan implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(ConvPlan.class);
    private static final int CANDIDATES = 16;

    private final CudaApi api;
    final ConvGeometry g;
    final cudnnTensorDescriptor x;
    final cudnnFilterDescriptor w;
    final cudnnTensorDescriptor y;
    final cudnnTensorDescriptor bias;
    final cudnnConvolutionDescriptor conv = new cudnnConvolutionDescriptor();
    final int fwdAlgo;
    final long fwdWorkspace;
    final int bwdDataAlgo;
    final long bwdDataWorkspace;
    final int bwdFilterAlgo;
    final long bwdFilterWorkspace;

    ConvPlan(CudaApi api, cudnnHandle h, ConvGeometry g, boolean tf32, long workspaceLimit) {
        this.api = api;
        this.g = g;
        x = Descriptors.tensor(api, g.n(), g.inChannels(), g.inH(), g.inW());
        w = Descriptors.filter(api, g.outChannels(), g.inChannels(), g.kernelH(), g.kernelW());
        y = Descriptors.tensor(api, g.n(), g.outChannels(), g.outH(), g.outW());
        bias = Descriptors.tensor(api, 1, g.outChannels(), 1, 1);
        api.cudnnCreateConvolutionDescriptor(conv);
        api.cudnnSetConvolution2dDescriptor(conv, g.padH(), g.padW(), g.strideH(), g.strideW(),
                g.dilationH(), g.dilationW(), CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT);
        api.cudnnSetConvolutionMathType(conv, tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH);

        long[] picked;
        try {
            picked = chooseAlgorithms(api, h, g, x, w, y, conv, workspaceLimit);
        } catch (RuntimeException e) {
            close(); // no plan: its descriptors would otherwise leak
            throw e;
        }
        fwdAlgo = (int) picked[0];
        fwdWorkspace = picked[1];
        bwdDataAlgo = (int) picked[2];
        bwdDataWorkspace = picked[3];
        bwdFilterAlgo = (int) picked[4];
        bwdFilterWorkspace = picked[5];
        LOG.debug("conv plan {}: fwd algo {} ({} B), bwd-data algo {} ({} B), bwd-filter algo {} ({} B)", g,
                fwdAlgo, fwdWorkspace, bwdDataAlgo, bwdDataWorkspace, bwdFilterAlgo, bwdFilterWorkspace);
    }

    /** {fwd algo, its workspace, bwd-data algo, its workspace, bwd-filter algo, its workspace} for this shape. */
    private static long[] chooseAlgorithms(CudaApi api, cudnnHandle h, ConvGeometry g, cudnnTensorDescriptor x,
                                           cudnnFilterDescriptor w, cudnnTensorDescriptor y,
                                           cudnnConvolutionDescriptor conv, long workspaceLimit) {
        int[] count = new int[1];
        cudnnConvolutionFwdAlgoPerf[] fwd = new cudnnConvolutionFwdAlgoPerf[CANDIDATES];
        for (int i = 0; i < fwd.length; i++) {
            fwd[i] = new cudnnConvolutionFwdAlgoPerf();
        }
        api.cudnnGetConvolutionForwardAlgorithm_v7(h, x, w, conv, y, CANDIDATES, count, fwd);
        int n = count[0];
        int fwdAlgo = fwd[choose(g, "forward", n, i -> fwd[i].algo, i -> fwd[i].status, i -> fwd[i].determinism,
                i -> fwd[i].memory, workspaceLimit)].algo;
        long[] size = new long[1];
        api.cudnnGetConvolutionForwardWorkspaceSize(h, x, w, conv, y, fwdAlgo, size);
        long fwdWorkspace = size[0];

        cudnnConvolutionBwdDataAlgoPerf[] bd = new cudnnConvolutionBwdDataAlgoPerf[CANDIDATES];
        for (int i = 0; i < bd.length; i++) {
            bd[i] = new cudnnConvolutionBwdDataAlgoPerf();
        }
        api.cudnnGetConvolutionBackwardDataAlgorithm_v7(h, w, y, conv, x, CANDIDATES, count, bd);
        int bwdDataAlgo = bd[choose(g, "backward-data", count[0], i -> bd[i].algo, i -> bd[i].status,
                i -> bd[i].determinism, i -> bd[i].memory,
                workspaceLimit)].algo;
        api.cudnnGetConvolutionBackwardDataWorkspaceSize(h, w, y, conv, x, bwdDataAlgo, size);
        long bwdDataWorkspace = size[0];

        cudnnConvolutionBwdFilterAlgoPerf[] bf = new cudnnConvolutionBwdFilterAlgoPerf[CANDIDATES];
        for (int i = 0; i < bf.length; i++) {
            bf[i] = new cudnnConvolutionBwdFilterAlgoPerf();
        }
        api.cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, x, y, conv, w, CANDIDATES, count, bf);
        int bwdFilterAlgo = bf[choose(g, "backward-filter", count[0], i -> bf[i].algo, i -> bf[i].status,
                i -> bf[i].determinism,
                i -> bf[i].memory, workspaceLimit)].algo;
        api.cudnnGetConvolutionBackwardFilterWorkspaceSize(h, x, y, conv, w, bwdFilterAlgo, size);
        long bwdFilterWorkspace = size[0];
        return new long[]{fwdAlgo, fwdWorkspace, bwdDataAlgo, bwdDataWorkspace, bwdFilterAlgo, bwdFilterWorkspace};
    }

    /**
     * The index of the first candidate (cuDNN lists them best first) that cuDNN reports as usable, deterministic and
     * within the workspace limit; failing that, the first usable one within the limit (with a warning: results may
     * differ run to run). A candidate whose status is not success is never taken: cuDNN would reject the call.
     */
    private static int choose(ConvGeometry g, String what, int count, IntUnaryOperator algo, IntUnaryOperator status,
                              IntUnaryOperator determinism,
                       IntToLongFunction memory, long limit) {
        for (int i = 0; i < count; i++) {
            if (status.applyAsInt(i) == CUDNN_STATUS_SUCCESS && determinism.applyAsInt(i) == CUDNN_DETERMINISTIC
                    && memory.applyAsLong(i) <= limit) {
                return i;
            }
        }
        for (int i = 0; i < count; i++) {
            if (status.applyAsInt(i) == CUDNN_STATUS_SUCCESS && memory.applyAsLong(i) <= limit) {
                LOG.warn("cuda: no deterministic {} convolution algorithm within the workspace limit for {}; using"
                        + " algorithm {} (results may differ run to run)", what, g, algo.applyAsInt(i));
                return i;
            }
        }
        long smallest = Long.MAX_VALUE;
        for (int i = 0; i < count; i++) {
            if (status.applyAsInt(i) == CUDNN_STATUS_SUCCESS) {
                smallest = Math.min(smallest, memory.applyAsLong(i));
            }
        }
        throw new IllegalStateException("cuda: no cuDNN " + what + " convolution algorithm for " + g + " within the"
                + " workspace limit of " + limit + " bytes" + (smallest == Long.MAX_VALUE
                ? " (cuDNN offered " + count + " candidates, none usable)"
                : "; the smallest usable one needs " + smallest + " bytes (raise the option workspaceMiB)"));
    }

    @Override
    public void close() {
        Descriptors.destroy(api, x, y, bias);
        api.cudnnDestroyFilterDescriptor(w);
        api.cudnnDestroyConvolutionDescriptor(conv);
    }
}
