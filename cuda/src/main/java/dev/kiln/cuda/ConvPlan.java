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

        int[] count = new int[1];
        cudnnConvolutionFwdAlgoPerf[] fwd = new cudnnConvolutionFwdAlgoPerf[CANDIDATES];
        for (int i = 0; i < fwd.length; i++) {
            fwd[i] = new cudnnConvolutionFwdAlgoPerf();
        }
        api.cudnnGetConvolutionForwardAlgorithm_v7(h, x, w, conv, y, CANDIDATES, count, fwd);
        int pick = -1;
        for (int i = 0; i < count[0] && pick < 0; i++) {
            if (ok(fwd[i].status, fwd[i].determinism, fwd[i].memory, workspaceLimit)) {
                pick = i;
            }
        }
        fwdAlgo = pick >= 0 ? fwd[pick].algo : fallback("forward", count[0] > 0 ? fwd[0].algo : 0);
        long[] size = new long[1];
        api.cudnnGetConvolutionForwardWorkspaceSize(h, x, w, conv, y, fwdAlgo, size);
        fwdWorkspace = size[0];

        cudnnConvolutionBwdDataAlgoPerf[] bd = new cudnnConvolutionBwdDataAlgoPerf[CANDIDATES];
        for (int i = 0; i < bd.length; i++) {
            bd[i] = new cudnnConvolutionBwdDataAlgoPerf();
        }
        api.cudnnGetConvolutionBackwardDataAlgorithm_v7(h, w, y, conv, x, CANDIDATES, count, bd);
        pick = -1;
        for (int i = 0; i < count[0] && pick < 0; i++) {
            if (ok(bd[i].status, bd[i].determinism, bd[i].memory, workspaceLimit)) {
                pick = i;
            }
        }
        bwdDataAlgo = pick >= 0 ? bd[pick].algo : fallback("backward-data", count[0] > 0 ? bd[0].algo : 0);
        api.cudnnGetConvolutionBackwardDataWorkspaceSize(h, w, y, conv, x, bwdDataAlgo, size);
        bwdDataWorkspace = size[0];

        cudnnConvolutionBwdFilterAlgoPerf[] bf = new cudnnConvolutionBwdFilterAlgoPerf[CANDIDATES];
        for (int i = 0; i < bf.length; i++) {
            bf[i] = new cudnnConvolutionBwdFilterAlgoPerf();
        }
        api.cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, x, y, conv, w, CANDIDATES, count, bf);
        pick = -1;
        for (int i = 0; i < count[0] && pick < 0; i++) {
            if (ok(bf[i].status, bf[i].determinism, bf[i].memory, workspaceLimit)) {
                pick = i;
            }
        }
        bwdFilterAlgo = pick >= 0 ? bf[pick].algo : fallback("backward-filter", count[0] > 0 ? bf[0].algo : 0);
        api.cudnnGetConvolutionBackwardFilterWorkspaceSize(h, x, y, conv, w, bwdFilterAlgo, size);
        bwdFilterWorkspace = size[0];
        LOG.debug("conv plan {}: fwd algo {} ({} B), bwd-data algo {} ({} B), bwd-filter algo {} ({} B)", g,
                fwdAlgo, fwdWorkspace, bwdDataAlgo, bwdDataWorkspace, bwdFilterAlgo, bwdFilterWorkspace);
    }

    private static boolean ok(int status, int determinism, long memory, long limit) {
        return status == CUDNN_STATUS_SUCCESS && determinism == CUDNN_DETERMINISTIC && memory <= limit;
    }

    private int fallback(String what, int algo) {
        LOG.warn("cuda: no deterministic {} convolution algorithm within the workspace limit for {}; using algorithm {}"
                + " (results may differ run to run)", what, g, algo);
        return algo;
    }

    @Override
    public void close() {
        Descriptors.destroy(api, x, y, bias);
        api.cudnnDestroyFilterDescriptor(w);
        api.cudnnDestroyConvolutionDescriptor(conv);
    }
}
