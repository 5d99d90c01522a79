package dev.kiln.cuda;

import dev.kiln.backend.Activation;
import dev.kiln.backend.Buffer;
import dev.kiln.backend.ConvGeometry;
import dev.kiln.backend.GraphCapture;
import dev.kiln.backend.RecordedWork;
import jcuda.CudaException;
import jcuda.jcudnn.cudnnMathType;
import jcuda.runtime.cudaStream_t;
import jcuda.driver.CUdeviceptr;
import jcuda.Pointer;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What a first GPU run must survive, on the checking stand-in: a sticky error or an open capture at close(), a start
 * that fails part-way, convolution algorithms with their own math types or failing at run time, cuDNN statuses the
 * JCudnn classes do not know, and code loading during a capture.
 */
class CudaFirstRunFaultsTest {

    private static final ConvGeometry CONV = new ConvGeometry(4, 1, 28, 28, 6, 5, 5, 1, 1, 2, 2, 1, 1);

    private static CudaBackend backend(CudaApi api, boolean tf32) {
        return new CudaBackend(new CudaOptions(0, tf32, 512L << 20), api);
    }

    @Test
    @DisplayName("close() after a sticky error attempts every release: nothing is left, and the error is reported")
    void closeAfterStickyError() {
        CheckingCudaApi checking = new CheckingCudaApi();
        FaultInjectingCudaApi faults = FaultInjectingCudaApi.over(checking);
        CudaBackend b = backend(faults.api(), false);
        Buffer x = b.upload(new float[(int) CONV.inputLength()], 0, (int) CONV.inputLength());
        Buffer w = b.allocate(CONV.weightLength());
        Buffer y = b.allocate(CONV.outputLength());
        b.conv2dForward(CONV, x, w, null, y);
        GraphCapture c = b.beginCapture();
        c.recorder().conv2dForward(CONV, x, w, null, y);
        RecordedWork graph = c.end();
        graph.replay();

        faults.stickyError();
        assertThrows(CudaException.class, () -> b.download(y, 0, new float[4], 0, 4));
        RuntimeException e = assertThrows(RuntimeException.class, b::close);
        assertTrue(String.valueOf(e.getMessage()).contains("ILLEGAL_ADDRESS"), e.toString());
        checking.assertAllReleased();
        assertDoesNotThrow(b::close, "a second close() is a no-op");
        assertThrows(IllegalStateException.class, () -> b.allocate(1), "the backend is closed");
        // closed after the backend (harmless), so that the leak detector does not report them when collected
        x.close();
        w.close();
        y.close();
    }

    @Test
    @DisplayName("close() with a capture still open ends the capture first, then releases everything")
    void closeDuringCapture() {
        CheckingCudaApi api = new CheckingCudaApi();
        CudaBackend b = CheckedCudaBackends.create(api);
        Buffer x = b.allocate(CONV.inputLength());
        Buffer w = b.allocate(CONV.weightLength());
        Buffer y = b.allocate(CONV.outputLength());
        b.conv2dForward(CONV, x, w, null, y);
        GraphCapture c = b.beginCapture();
        c.recorder().conv2dForward(CONV, x, w, null, y);
        c.recorder().activationForward(Activation.RELU, x, y, 16);
        assertDoesNotThrow(b::close);
        assertEquals(1, api.calls("cuStreamEndCapture"));
        api.assertAllReleased();
        assertThrows(IllegalStateException.class, c::end, "the capture was abandoned by close()");
        // closed after the backend (harmless), so that the leak detector does not report them when collected
        x.close();
        w.close();
        y.close();
    }

    @Test
    @DisplayName("a start that fails at any call releases everything the earlier calls created")
    void failedStartReleasesEverything() {
        CheckingCudaApi probe = new CheckingCudaApi();
        FaultInjectingCudaApi counting = FaultInjectingCudaApi.over(probe);
        backend(counting.api(), false).close();
        int startCalls = counting.calls().indexOf("cuCtxGetCurrent"); // close() begins with makeCurrent
        assertTrue(startCalls > 40, "the start makes its calls before close(): " + counting.calls());
        List<String> failures = new ArrayList<>();
        for (int i = 0; i < startCalls; i++) {
            CheckingCudaApi checking = new CheckingCudaApi();
            FaultInjectingCudaApi faults = FaultInjectingCudaApi.over(checking);
            faults.failCall(i);
            String at = counting.calls().get(i);
            RuntimeException e = assertThrows(RuntimeException.class, () -> backend(faults.api(), false),
                    "the start must fail when " + at + " fails");
            if (!String.valueOf(e.getMessage()).contains("LAUNCH_FAILED")) {
                failures.add(at + ": thrown " + e);
            }
            try {
                checking.assertAllReleased();
            } catch (CudaCallViolation leak) {
                failures.add(at + " (call " + i + "): " + leak.getMessage());
            }
        }
        assertEquals(List.of(), failures);
    }

    @Test
    @DisplayName("every kernel is looked up when its module loads, so a capture may launch one never launched before")
    void kernelsLookedUpAtLoad() {
        CheckingCudaApi api = new CheckingCudaApi();
        CudaBackend b = CheckedCudaBackends.create(api);
        KernelSignatures all = new KernelSignatures();
        int kernels = 0;
        for (String m : CudaKernels.MODULES) {
            kernels += all.addModule(CudaKernels.ptx(m)).size();
        }
        assertEquals(kernels, api.calls("cuModuleGetFunction"));
        Buffer x = b.allocate(64);
        Buffer y = b.allocate(64);
        GraphCapture c = b.beginCapture();
        c.recorder().activationForward(Activation.RELU, x, y, 64); // first use of kiln_activation_forward, inside the capture
        c.recorder().argmax(x, 8, 8, 1, y);
        try (RecordedWork graph = c.end()) {
            graph.replay();
        }
        assertEquals(kernels, api.calls("cuModuleGetFunction"), "no lookup after the start");
        x.close();
        y.close();
        b.close();
        api.assertAllReleased();
    }

    private static void runConvolutions(CudaBackend b) {
        try (Buffer x = b.allocate(CONV.inputLength()); Buffer w = b.allocate(CONV.weightLength());
             Buffer y = b.allocate(CONV.outputLength())) {
            b.conv2dForward(CONV, x, w, null, y);
            b.conv2dBackwardData(CONV, w, y, x);
            b.conv2dBackwardWeight(CONV, x, y, w);
            b.conv2dForward(CONV, x, w, null, y);
        }
    }

    @Test
    @DisplayName("each convolution candidate runs with the math type cuDNN reported for it; tensor ops only with TF32")
    void candidatesRunWithTheirMathType() {
        int tensorOp = cudnnMathType.CUDNN_TENSOR_OP_MATH;
        int fma = cudnnMathType.CUDNN_FMA_MATH;
        int dflt = cudnnMathType.CUDNN_DEFAULT_MATH;
        // {algo, status, determinism, workspace factor, math type}
        List<int[]> offered = List.of(new int[]{6, 0, 1, 0, tensorOp}, new int[]{1, 0, 1, 0, fma},
                new int[]{2, 0, 1, 0, dflt});

        CheckingCudaApi withTf32 = new CheckingCudaApi();
        withTf32.setAlgorithms(offered);
        CudaBackend b = backend(withTf32, true);
        runConvolutions(b); // the stand-in fails a call whose descriptor does not hold the algorithm's math type
        ConvPlan p = plan(b);
        assertEquals(6, p.forward.current().algo());
        assertEquals(tensorOp, p.forward.current().mathType());
        b.close();
        withTf32.assertAllReleased();

        CheckingCudaApi noTf32 = new CheckingCudaApi();
        noTf32.setAlgorithms(offered);
        CudaBackend f = backend(noTf32, false);
        runConvolutions(f);
        ConvPlan q = plan(f);
        assertEquals(List.of(1, 2), q.forward.candidates().stream().map(ConvPlan.Candidate::algo).toList(),
                "without TF32 the tensor-op candidate is left out");
        assertEquals(List.of(fma, fma), q.forward.candidates().stream().map(ConvPlan.Candidate::mathType).toList(),
                "default math runs as FMA without TF32");
        f.close();
        noTf32.assertAllReleased();

        assertEquals(-1, ConvPlan.runMathType(cudnnMathType.CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION, false));
        assertEquals(cudnnMathType.CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION,
                ConvPlan.runMathType(cudnnMathType.CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION, true));
    }

    private static ConvPlan plan(CudaBackend b) {
        try {
            java.lang.reflect.Field f = CudaBackend.class.getDeclaredField("cudnn");
            f.setAccessible(true);
            return ((CudnnOps) f.get(b)).plan(CONV);
        } catch (ReflectiveOperationException e) {
            throw new AssertionError(e);
        }
    }

    @Test
    @DisplayName("a convolution algorithm that fails at run time gives way to the next candidate, from then on")
    void failingAlgorithmFallsBack() {
        CheckingCudaApi api = new CheckingCudaApi();
        // deterministic 1 first, then deterministic 4, then non-deterministic 0
        api.setAlgorithms(List.of(new int[]{1, 0, 1, 0}, new int[]{4, 0, 1, 1}, new int[]{0, 0, 0, 0}));
        api.failAlgorithm(1);
        CudaBackend b = CheckedCudaBackends.create(api);
        assertDoesNotThrow(() -> runConvolutions(b));
        ConvPlan p = plan(b);
        assertEquals(4, p.forward.current().algo());
        assertEquals(4, p.backwardData.current().algo());
        assertEquals(4, p.backwardFilter.current().algo());
        b.close();
        api.assertAllReleased();

        CheckingCudaApi none = new CheckingCudaApi();
        none.setAlgorithms(List.of(new int[]{1, 0, 1, 0}, new int[]{4, 0, 1, 1}));
        none.failAlgorithm(1);
        none.failAlgorithm(4);
        CudaBackend nb = CheckedCudaBackends.create(none);
        try (Buffer x = nb.allocate(CONV.inputLength()); Buffer w = nb.allocate(CONV.weightLength());
             Buffer y = nb.allocate(CONV.outputLength())) {
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> nb.conv2dForward(CONV, x, w, null, y));
            assertTrue(e.getMessage().contains("algorithm 1: ") && e.getMessage().contains("algorithm 4: ")
                    && e.getMessage().contains("CUDNN_STATUS_EXECUTION_FAILED"), e.getMessage());
        }
        nb.close();
        none.assertAllReleased();
    }

    @Test
    @DisplayName("a failed cuDNN call is described by cudnnGetErrorString, also for a status JCudnn's classes lack")
    void cudnnFailureNamesTheStatus() {
        String m = JCudaApi.cudnnFailure("cudnnConvolutionForward", 3000,
                s -> s == 3000 ? "CUDNN_STATUS_NOT_SUPPORTED" : "?");
        assertEquals("cudnnConvolutionForward failed: CUDNN_STATUS_NOT_SUPPORTED (3000)", m);
        String unknown = JCudaApi.cudnnFailure("cudnnCreate", 4000, s -> {
            throw new UnsatisfiedLinkError("no native");
        });
        assertEquals("cudnnCreate failed: cuDNN status (4000)", unknown);
    }

    @Test
    @DisplayName("the stand-in's cublasSetStream forgets the workspace, as cuBLAS does: the stream must come first")
    void cublasSetStreamResetsWorkspace() {
        CheckingCudaApi api = new CheckingCudaApi();
        CudaContext ctx = new CudaContext(api, 0, false); // sets the stream, then the workspace
        CUdeviceptr a = new CUdeviceptr();
        api.cuMemAlloc(a, 64);
        Pointer one = Pointer.to(new float[]{1f});
        assertDoesNotThrow(() -> api.cublasSgemm(ctx.cublas, 0, 0, 2, 2, 2, one, a, 2, a, 2, one, a, 2));
        api.cublasSetStream(ctx.cublas, new cudaStream_t(ctx.stream)); // a stream set after the workspace
        CudaCallViolation v = assertThrows(CudaCallViolation.class,
                () -> api.cublasSgemm(ctx.cublas, 0, 0, 2, 2, 2, one, a, 2, a, 2, one, a, 2));
        assertTrue(v.getMessage().contains("no workspace"), v.getMessage());
        api.cuMemFree(a);
        ctx.close();
        api.assertAllReleased();
    }
}
