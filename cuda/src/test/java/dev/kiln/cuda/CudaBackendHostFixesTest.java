package dev.kiln.cuda;

import dev.kiln.backend.BatchNormGeometry;
import dev.kiln.backend.Buffer;
import dev.kiln.backend.ConvGeometry;
import dev.kiln.backend.GraphCapture;
import dev.kiln.backend.RecordedWork;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUstream_flags;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The CUDA backend's host-side bookkeeping on the checking stand-in (no GPU): the faults a review against the
 * driver, cuDNN and JCuda found, each checked where it would show on a GPU.
 */
class CudaBackendHostFixesTest {

    private static ConvGeometry conv(int n) {
        return new ConvGeometry(n, 1, 28, 28, 6, 5, 5, 1, 1, 2, 2, 1, 1);
    }

    private static final class ConvBuffers implements AutoCloseable {
        final Buffer x;
        final Buffer w;
        final Buffer y;

        ConvBuffers(CudaBackend b, ConvGeometry g) {
            x = b.allocate(g.inputLength());
            w = b.allocate(g.weightLength());
            y = b.allocate(g.outputLength());
        }

        @Override
        public void close() {
            x.close();
            w.close();
            y.close();
        }
    }

    private static RecordedWork captureConv(CudaBackend b, ConvGeometry g, ConvBuffers buf) {
        GraphCapture c = b.beginCapture();
        c.recorder().conv2dForward(g, buf.x, buf.w, null, buf.y);
        return c.end();
    }

    @Test
    @DisplayName("a graph keeps the cuDNN workspace it captured after the workspace grows and the cache is emptied")
    void capturedWorkspaceOutlivesGrowth() {
        CheckingCudaApi api = new CheckingCudaApi();
        CudaBackend b = CheckedCudaBackends.create(api);
        ConvGeometry small = conv(4);
        ConvGeometry large = conv(64);
        try (ConvBuffers s = new ConvBuffers(b, small); ConvBuffers l = new ConvBuffers(b, large)) {
            b.conv2dForward(small, s.x, s.w, null, s.y); // eager: plan and first workspace
            try (RecordedWork graph = captureConv(b, small, s)) {
                b.conv2dForward(large, l.x, l.w, null, l.y); // eager at another batch: the workspace grows
                b.emptyCache();                              // (or an out-of-memory retry) frees cached blocks
                assertDoesNotThrow(graph::replay, "replay after the workspace grew");
                graph.replay();
            }
        }
        b.close();
        api.assertAllReleased();
    }

    @Test
    @DisplayName("the out-of-memory retry empties the cache but not the workspace a live graph captured")
    void outOfMemoryRetryKeepsCapturedWorkspace() {
        CheckingCudaApi api = new CheckingCudaApi();
        CudaBackend b = CheckedCudaBackends.create(api);
        ConvGeometry small = conv(4);
        ConvGeometry large = conv(64);
        try (ConvBuffers s = new ConvBuffers(b, small)) {
            b.conv2dForward(small, s.x, s.w, null, s.y);
            try (RecordedWork graph = captureConv(b, small, s)) {
                try (ConvBuffers l = new ConvBuffers(b, large)) {
                    b.conv2dForward(large, l.x, l.w, null, l.y);
                }
                api.setTotalMemory(api.liveDeviceBytes() + (4L << 20));
                CudaOutOfMemoryException e = assertThrows(CudaOutOfMemoryException.class, () -> b.allocate(2L << 20));
                assertTrue(e.getMessage().contains("requested 8388608 bytes"), e.getMessage());
                assertTrue(api.calls("cuMemFree") > 0, "the retry freed the cache first");
                assertDoesNotThrow(graph::replay, "replay after the out-of-memory retry");
            }
        }
        b.close();
        api.assertAllReleased();
    }

    @Test
    @DisplayName("closing one graph does not free a workspace another live graph captured; the last one releases it")
    void workspaceSharedByTwoGraphs() {
        CheckingCudaApi api = new CheckingCudaApi();
        CudaBackend b = CheckedCudaBackends.create(api);
        ConvGeometry small = conv(4);
        ConvGeometry large = conv(64);
        try (ConvBuffers s = new ConvBuffers(b, small); ConvBuffers l = new ConvBuffers(b, large)) {
            b.conv2dForward(small, s.x, s.w, null, s.y);
            RecordedWork first = captureConv(b, small, s);
            RecordedWork second = captureConv(b, small, s);
            b.conv2dForward(large, l.x, l.w, null, l.y);
            first.close();
            b.emptyCache();
            assertDoesNotThrow(second::replay, "replay of the graph still alive");
            long before = api.liveDeviceBytes();
            second.close();
            b.emptyCache();
            assertTrue(api.liveDeviceBytes() <= before - small.inputLength() * Float.BYTES,
                    "the old workspace goes back once no graph uses it: " + before + " -> " + api.liveDeviceBytes());
        }
        b.close();
        api.assertAllReleased();
    }

    @Test
    @DisplayName("close() frees every allocation: workspace, error flag, constant vectors, graphs never closed, open buffers")
    void closeFreesEverything() {
        CheckingCudaApi api = new CheckingCudaApi();
        CudaBackend b = CheckedCudaBackends.create(api);
        ConvGeometry g = conv(8);
        ConvBuffers c = new ConvBuffers(b, g);
        b.conv2dForward(g, c.x, c.w, null, c.y);                    // workspace
        BatchNormGeometry bg = new BatchNormGeometry(4, 3, 5);
        Buffer x = b.allocate(bg.length());
        Buffer y = b.allocate(bg.length());
        Buffer mean = b.allocate(3);
        Buffer inv = b.allocate(3);
        b.batchNormForwardTraining(bg, x, null, null, 1e-5f, y, mean, inv); // constant ones and zeros
        Buffer logits = b.allocate(6);
        Buffer targets = b.allocate(2);
        Buffer probs = b.allocate(6);
        Buffer loss = b.allocate(1);
        b.softmaxCrossEntropyForward(2, 3, logits, targets, probs, loss); // error flag in use
        RecordedWork neverClosed = captureConv(b, g, c);                   // a graph and its reservation
        assertTrue(api.liveDeviceBlocks() > 10, "live blocks before close: " + api.liveDeviceBlocks());
        b.close();
        assertEquals(api.deviceAllocations(), api.deviceFrees(), "every cuMemAlloc has its cuMemFree");
        api.assertAllReleased();
        assertThrows(IllegalStateException.class, neverClosed::replay, "a graph of a closed backend");
        neverClosed.close();
        c.close(); // buffers closed after the backend: harmless
        // and closed, so that the leak detector does not report them when they are collected
        for (Buffer open : List.of(x, y, mean, inv, logits, targets, probs, loss)) {
            open.close();
        }
    }

    @Test
    @DisplayName("the backend's stream is non-blocking (no implicit sync with the legacy stream, no invalidated captures)")
    void nonBlockingStream() {
        CheckingCudaApi api = new CheckingCudaApi();
        CudaBackend b = CheckedCudaBackends.create(api);
        assertEquals(List.of(CUstream_flags.CU_STREAM_NON_BLOCKING), api.streamFlags());
        b.close();
    }

    @Test
    @DisplayName("the backend makes its context current again after something else switched the thread's context")
    void contextSwitchedBehindTheBackendsBack() {
        CheckingCudaApi api = new CheckingCudaApi();
        CudaBackend b = CheckedCudaBackends.create(api);
        Buffer buf = b.allocate(16);
        api.switchCallingThreadToAnotherContext(); // what CudaDiagnostics.cublasVersion() or another library does
        assertDoesNotThrow(() -> b.fill(buf, 0, 16, 1f));
        api.switchCallingThreadToAnotherContext();
        assertDoesNotThrow(() -> b.download(buf, 0, new float[16], 0, 16));
        buf.close();
        b.close();
        api.assertAllReleased();
    }

    @Test
    @DisplayName("after a cross-entropy, a download brings the error flag in the same wait (one synchronisation)")
    void errorFlagTravelsWithTheDownload() {
        CheckingCudaApi api = new CheckingCudaApi();
        CudaBackend b = CheckedCudaBackends.create(api);
        try (Buffer logits = b.allocate(6); Buffer targets = b.allocate(2); Buffer probs = b.allocate(6);
             Buffer loss = b.allocate(1)) {
            b.softmaxCrossEntropyForward(2, 3, logits, targets, probs, loss);
            long syncs = api.calls("cuStreamSynchronize");
            long copies = api.calls("cuMemcpyDtoHAsync");
            float[] out = new float[1];
            b.download(loss, 0, out, 0, 1);
            assertEquals(1, api.calls("cuStreamSynchronize") - syncs, "host waits of one download");
            assertEquals(2, api.calls("cuMemcpyDtoHAsync") - copies, "the loss and the flag");
            b.download(loss, 0, out, 0, 1); // no kernel could have raised the flag since: data only
            assertEquals(3, api.calls("cuMemcpyDtoHAsync") - copies);
        }
        b.close();
    }

    @Test
    @DisplayName("convolution planning never takes an algorithm cuDNN reported as failed, and says when none fits")
    void convolutionPlanSkipsFailedCandidates() {
        CheckingCudaApi api = new CheckingCudaApi();
        // {algo, status, determinism, workspace factor}: unsupported first, then usable non-deterministic, then too big
        api.setAlgorithms(List.of(new int[]{3, 9, 1, 0}, new int[]{0, 0, 0, 0}, new int[]{1, 0, 1, 1000}));
        CudaBackend b = CheckedCudaBackends.create(api, 1L << 20);
        ConvGeometry g = conv(4);
        try (ConvBuffers c = new ConvBuffers(b, g)) {
            assertDoesNotThrow(() -> b.conv2dForward(g, c.x, c.w, null, c.y));
            assertDoesNotThrow(() -> b.conv2dBackwardData(g, c.w, c.y, c.x));
        }
        b.close();
        api.assertAllReleased();

        CheckingCudaApi none = new CheckingCudaApi();
        none.setAlgorithms(List.of(new int[]{3, 9, 1, 0}, new int[]{1, 0, 1, 1000}));
        CudaBackend nb = CheckedCudaBackends.create(none, 1L << 20);
        try (ConvBuffers c = new ConvBuffers(nb, g)) {
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> nb.conv2dForward(g, c.x, c.w, null, c.y));
            assertTrue(e.getMessage().contains("workspaceMiB") && e.getMessage().contains("1048576"), e.getMessage());
        }
        nb.close();
        none.assertAllReleased();
    }

    @Test
    @DisplayName("pinned staging moves a transfer larger than a slot in pieces, every piece inside its buffers")
    void stagingInPieces() {
        CheckingCudaApi api = new CheckingCudaApi();
        CudaContext ctx = new CudaContext(api, 0, false);
        CachingAllocator allocator = new CachingAllocator(ctx);
        PinnedStaging staging = new PinnedStaging(ctx, 64);
        float[] data = new float[100];
        for (int i = 0; i < data.length; i++) {
            data[i] = i;
        }
        CUdeviceptr block = allocator.allocate(400);
        long copies = api.calls("cuMemcpyHtoDAsync");
        staging.upload(data, 0, 100, block);
        assertEquals(7, api.calls("cuMemcpyHtoDAsync") - copies, "100 floats in pieces of 16");
        float[] back = new float[100];
        CUdeviceptr flag = allocator.allocate(4);
        assertEquals(0, staging.download(block, back, 0, 100, flag));
        assertArrayEquals(new float[100], back, "the stand-in's device memory reads as zeros");
        staging.close();
        allocator.close();
        ctx.close();
        api.assertAllReleased();
    }

    @Test
    @DisplayName("a staging slot never grows past the slot limit (a ByteBuffer addresses less than 2 GiB)")
    void slotGrowthIsBounded() {
        long limit = PinnedStaging.DEFAULT_SLOT_LIMIT;
        long[][] cases = {{0, 10}, {1L << 20, 3L << 20}, {900L << 20, 1000L << 20}, {1L << 30, 1L << 30}, {768L << 20, 800L << 20}};
        for (long[] c : cases) {
            long grown = PinnedStaging.grownCapacity(c[0], c[1], limit);
            assertTrue(grown >= c[1] && grown <= limit && grown <= Integer.MAX_VALUE,
                    "capacity " + c[0] + " for " + c[1] + " bytes grew to " + grown);
        }
    }
}
