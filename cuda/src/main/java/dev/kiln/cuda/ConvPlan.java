package dev.kiln.cuda;

import dev.kiln.backend.ConvGeometry;
import jcuda.CudaException;
import jcuda.Pointer;
import jcuda.jcudnn.cudnnConvolutionBwdDataAlgoPerf;
import jcuda.jcudnn.cudnnConvolutionBwdFilterAlgoPerf;
import jcuda.jcudnn.cudnnConvolutionDescriptor;
import jcuda.jcudnn.cudnnConvolutionFwdAlgoPerf;
import jcuda.jcudnn.cudnnFilterDescriptor;
import jcuda.jcudnn.cudnnHandle;
import jcuda.jcudnn.cudnnTensorDescriptor;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.List;
import java.util.function.LongFunction;

import static jcuda.jcudnn.cudnnConvolutionMode.CUDNN_CROSS_CORRELATION;
import static jcuda.jcudnn.cudnnDataType.CUDNN_DATA_FLOAT;
import static jcuda.jcudnn.cudnnDeterminism.CUDNN_DETERMINISTIC;
import static jcuda.jcudnn.cudnnMathType.CUDNN_DEFAULT_MATH;
import static jcuda.jcudnn.cudnnMathType.CUDNN_FMA_MATH;
import static jcuda.jcudnn.cudnnStatus.CUDNN_STATUS_SUCCESS;

/**
 * Everything cuDNN needs for one convolution shape, chosen once and cached by {@link CudnnOps}: descriptors, and for
 * forward, backward-data and backward-filter the candidate algorithms in the order they are tried. Candidates come
 * from cuDNN's heuristics ({@code cudnnGet*Algorithm_v7}); the deterministic ones first (Kiln's training steps are
 * reproducible bit for bit), each within the workspace limit. Each candidate runs with the math type cuDNN reported
 * for it (the descriptor is set to it before the call); without TF32, tensor-op candidates are left out and a
 * default-math one runs as FMA (default math lets cuDNN use TF32 on Ampere and newer). When the algorithm in use fails
 * at run time, the next candidate takes its place for this shape from then on.
 */
final class ConvPlan implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(ConvPlan.class);
    private static final int CANDIDATES = 16;

    /** One algorithm cuDNN offered: its number, the math type it runs with, and its workspace. */
    record Candidate(int algo, int mathType, long workspace, boolean deterministic) {
    }

    /** A direction of the convolution: its candidates in order, and the one in use. */
    static final class Direction {
        final String name;
        private final List<Candidate> candidates;
        private int current;

        Direction(String name, List<Candidate> candidates) {
            this.name = name;
            this.candidates = List.copyOf(candidates);
        }

        Candidate current() {
            return candidates.get(current);
        }

        List<Candidate> candidates() {
            return candidates;
        }
    }

    /** One cuDNN convolution call with the algorithm, workspace and workspace size to use. */
    @FunctionalInterface
    interface Call {
        void run(int algo, Pointer workspace, long workspaceBytes);
    }

    private final CudaApi api;
    final ConvGeometry g;
    final cudnnTensorDescriptor x;
    final cudnnFilterDescriptor w;
    final cudnnTensorDescriptor y;
    final cudnnTensorDescriptor bias;
    final cudnnConvolutionDescriptor conv = new cudnnConvolutionDescriptor();
    final Direction forward;
    final Direction backwardData;
    final Direction backwardFilter;
    private final boolean tf32;
    /** The math type the descriptor holds now (one descriptor serves the three directions). */
    private int descriptorMath;

    ConvPlan(CudaApi api, cudnnHandle h, ConvGeometry g, boolean tf32, long workspaceLimit) {
        this.api = api;
        this.g = g;
        this.tf32 = tf32;
        cudnnTensorDescriptor xd = null;
        cudnnFilterDescriptor wd = null;
        cudnnTensorDescriptor yd = null;
        cudnnTensorDescriptor bd = null;
        boolean convCreated = false;
        try {
            xd = Descriptors.tensor(api, g.n(), g.inChannels(), g.inH(), g.inW());
            wd = Descriptors.filter(api, g.outChannels(), g.inChannelsPerGroup(), g.kernelH(), g.kernelW());
            yd = Descriptors.tensor(api, g.n(), g.outChannels(), g.outH(), g.outW());
            bd = Descriptors.tensor(api, 1, g.outChannels(), 1, 1);
            api.cudnnCreateConvolutionDescriptor(conv);
            convCreated = true;
            api.cudnnSetConvolution2dDescriptor(conv, g.padH(), g.padW(), g.strideH(), g.strideW(),
                    g.dilationH(), g.dilationW(), CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT);
            if (g.groups() > 1) {
                // the filter holds inChannels / groups channels; cuDNN splits x and y into the groups itself
                api.cudnnSetConvolutionGroupCount(conv, g.groups());
            }
            descriptorMath = tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH;
            api.cudnnSetConvolutionMathType(conv, descriptorMath);
            forward = forwardCandidates(h, xd, wd, yd, workspaceLimit);
            backwardData = backwardDataCandidates(h, xd, wd, yd, workspaceLimit);
            backwardFilter = backwardFilterCandidates(h, xd, wd, yd, workspaceLimit);
        } catch (RuntimeException e) {
            // no plan: its descriptors would otherwise leak
            ReleaseSteps r = new ReleaseSteps();
            destroy(r, xd, wd, yd, bd, convCreated);
            throw r.attachTo(e);
        }
        x = xd;
        w = wd;
        y = yd;
        bias = bd;
        LOG.debug("conv plan {}: fwd {}, bwd-data {}, bwd-filter {}", g, forward.current(), backwardData.current(),
                backwardFilter.current());
    }

    private Direction forwardCandidates(cudnnHandle h, cudnnTensorDescriptor xd, cudnnFilterDescriptor wd,
                                        cudnnTensorDescriptor yd, long limit) {
        int[] count = new int[1];
        cudnnConvolutionFwdAlgoPerf[] perf = new cudnnConvolutionFwdAlgoPerf[CANDIDATES];
        for (int i = 0; i < perf.length; i++) {
            perf[i] = new cudnnConvolutionFwdAlgoPerf();
        }
        api.cudnnGetConvolutionForwardAlgorithm_v7(h, xd, wd, conv, yd, CANDIDATES, count, perf);
        List<long[]> offered = new ArrayList<>();
        for (int i = 0; i < count[0]; i++) {
            offered.add(new long[]{perf[i].algo, perf[i].status, perf[i].determinism, perf[i].memory, perf[i].mathType});
        }
        return direction("forward", offered, limit, (algo, math) -> {
            long[] size = new long[1];
            api.cudnnGetConvolutionForwardWorkspaceSize(h, xd, wd, conv, yd, algo, size);
            return size[0];
        });
    }

    private Direction backwardDataCandidates(cudnnHandle h, cudnnTensorDescriptor xd, cudnnFilterDescriptor wd,
                                             cudnnTensorDescriptor yd, long limit) {
        int[] count = new int[1];
        cudnnConvolutionBwdDataAlgoPerf[] perf = new cudnnConvolutionBwdDataAlgoPerf[CANDIDATES];
        for (int i = 0; i < perf.length; i++) {
            perf[i] = new cudnnConvolutionBwdDataAlgoPerf();
        }
        api.cudnnGetConvolutionBackwardDataAlgorithm_v7(h, wd, yd, conv, xd, CANDIDATES, count, perf);
        List<long[]> offered = new ArrayList<>();
        for (int i = 0; i < count[0]; i++) {
            offered.add(new long[]{perf[i].algo, perf[i].status, perf[i].determinism, perf[i].memory, perf[i].mathType});
        }
        return direction("backward-data", offered, limit, (algo, math) -> {
            long[] size = new long[1];
            api.cudnnGetConvolutionBackwardDataWorkspaceSize(h, wd, yd, conv, xd, algo, size);
            return size[0];
        });
    }

    private Direction backwardFilterCandidates(cudnnHandle h, cudnnTensorDescriptor xd, cudnnFilterDescriptor wd,
                                               cudnnTensorDescriptor yd, long limit) {
        int[] count = new int[1];
        cudnnConvolutionBwdFilterAlgoPerf[] perf = new cudnnConvolutionBwdFilterAlgoPerf[CANDIDATES];
        for (int i = 0; i < perf.length; i++) {
            perf[i] = new cudnnConvolutionBwdFilterAlgoPerf();
        }
        api.cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, xd, yd, conv, wd, CANDIDATES, count, perf);
        List<long[]> offered = new ArrayList<>();
        for (int i = 0; i < count[0]; i++) {
            offered.add(new long[]{perf[i].algo, perf[i].status, perf[i].determinism, perf[i].memory, perf[i].mathType});
        }
        return direction("backward-filter", offered, limit, (algo, math) -> {
            long[] size = new long[1];
            api.cudnnGetConvolutionBackwardFilterWorkspaceSize(h, xd, yd, conv, wd, algo, size);
            return size[0];
        });
    }

    @FunctionalInterface
    private interface WorkspaceQuery {
        long bytes(int algo, int mathType);
    }

    /** The math type a candidate runs with, or -1 when it may not run (a tensor-op candidate without TF32). */
    static int runMathType(int reported, boolean tf32) {
        if (tf32) {
            return reported;
        }
        if (reported == CUDNN_FMA_MATH || reported == CUDNN_DEFAULT_MATH) {
            return CUDNN_FMA_MATH;
        }
        return -1;
    }

    /**
     * The candidates to try, in order: those cuDNN reports as usable (status success), allowed by the TF32 setting
     * and within the workspace limit, deterministic ones first, each group in cuDNN's order (best first). Each
     * offered entry is {algo, status, determinism, memory, mathType}. The workspace is asked of cuDNN with the
     * candidate's math type on the descriptor.
     */
    private Direction direction(String what, List<long[]> offered, long limit, WorkspaceQuery query) {
        List<Candidate> deterministic = new ArrayList<>();
        List<Candidate> other = new ArrayList<>();
        long smallest = Long.MAX_VALUE;
        for (long[] o : offered) {
            int math = runMathType((int) o[4], tf32);
            if (o[1] != CUDNN_STATUS_SUCCESS || math < 0) {
                continue;
            }
            smallest = Math.min(smallest, o[3]);
            if (o[3] > limit) {
                continue;
            }
            setMath(math);
            long bytes = query.bytes((int) o[0], math);
            Candidate c = new Candidate((int) o[0], math, bytes, o[2] == CUDNN_DETERMINISTIC);
            (c.deterministic() ? deterministic : other).add(c);
        }
        if (deterministic.isEmpty() && !other.isEmpty()) {
            LOG.warn("cuda: no deterministic {} convolution algorithm within the workspace limit for {}; using"
                    + " algorithm {} (results may differ run to run)", what, g, other.get(0).algo());
        }
        List<Candidate> all = new ArrayList<>(deterministic);
        all.addAll(other);
        if (all.isEmpty()) {
            throw new IllegalStateException("cuda: no cuDNN " + what + " convolution algorithm for " + g + " within the"
                    + " workspace limit of " + limit + " bytes" + (smallest == Long.MAX_VALUE
                    ? " (cuDNN offered " + offered.size() + " candidates, none usable" + (tf32 ? ")" : " without TF32)")
                    : "; the smallest usable one needs " + smallest + " bytes (raise the option workspaceMiB)"));
        }
        return new Direction(what, all);
    }

    private void setMath(int mathType) {
        if (descriptorMath != mathType) {
            api.cudnnSetConvolutionMathType(conv, mathType);
            descriptorMath = mathType;
        }
    }

    /**
     * Runs {@code call} with {@code d}'s algorithm in use, its math type set on the descriptor and its workspace
     * (from {@code workspace}); when cuDNN fails it, the next candidate becomes the one in use and the call is made
     * again. Throws when every candidate failed, naming each failure.
     */
    void run(Direction d, LongFunction<Pointer> workspace, Call call) {
        List<CudaException> failures = new ArrayList<>();
        while (true) {
            Candidate c = d.current();
            setMath(c.mathType());
            try {
                call.run(c.algo(), workspace.apply(c.workspace()), c.workspace());
                return;
            } catch (CudaException e) {
                failures.add(e);
                if (d.current + 1 >= d.candidates.size()) {
                    IllegalStateException all = new IllegalStateException("cuda: every cuDNN " + d.name
                            + " convolution algorithm offered for " + g + " failed: " + describe(d, failures), e);
                    throw all;
                }
                d.current++;
                LOG.warn("cuda: cuDNN {} convolution algorithm {} failed for {} ({}); using algorithm {} from now on",
                        d.name, c.algo(), g, e.getMessage(), d.current().algo());
            }
        }
    }

    private static String describe(Direction d, List<CudaException> failures) {
        StringBuilder sb = new StringBuilder();
        int first = d.current - failures.size() + 1;
        for (int i = 0; i < failures.size(); i++) {
            sb.append(i == 0 ? "" : "; ").append("algorithm ").append(d.candidates.get(first + i).algo()).append(": ")
                    .append(failures.get(i).getMessage());
        }
        return sb.toString();
    }

    private void destroy(ReleaseSteps r, cudnnTensorDescriptor xd, cudnnFilterDescriptor wd, cudnnTensorDescriptor yd,
                         cudnnTensorDescriptor bd, boolean convCreated) {
        for (cudnnTensorDescriptor t : new cudnnTensorDescriptor[]{xd, yd, bd}) {
            if (t != null) {
                r.run(() -> api.cudnnDestroyTensorDescriptor(t));
            }
        }
        if (wd != null) {
            r.run(() -> api.cudnnDestroyFilterDescriptor(wd));
        }
        if (convCreated) {
            r.run(() -> api.cudnnDestroyConvolutionDescriptor(conv));
        }
    }

    @Override
    public void close() {
        ReleaseSteps r = new ReleaseSteps();
        destroy(r, x, w, y, bias, true);
        r.finish();
    }
}
