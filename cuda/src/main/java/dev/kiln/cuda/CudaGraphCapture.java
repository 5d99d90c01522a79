package dev.kiln.cuda;

import dev.kiln.backend.Backend;
import dev.kiln.backend.GraphCapture;
import dev.kiln.backend.GraphCaptureException;
import dev.kiln.backend.RecordedWork;
import jcuda.CudaException;
import jcuda.driver.CUgraph;
import jcuda.driver.CUgraphExec;

import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;

/**
 * A stream capture on the backend's stream (driver API: cuStreamBeginCapture / cuStreamEndCapture /
 * cuGraphInstantiate, then cuGraphLaunch per replay). The capturing thread calls the backend itself; other threads
 * wait for the capture to end, since everything they queued on the one stream would be captured too. The memory the
 * graph touches is kept by a {@link DeviceReservation} until the graph is destroyed.
 */
final class CudaGraphCapture implements GraphCapture {

    final Thread thread = Thread.currentThread();
    final DeviceReservation reservation = new DeviceReservation();
    /** Buffers passed to the backend during the capture; those still open at the end must stay open for replays. */
    final Set<CudaBuffer> touched = Collections.newSetFromMap(new IdentityHashMap<>());
    boolean crossEntropy;
    private final CudaBackend backend;
    private boolean finished;

    CudaGraphCapture(CudaBackend backend) {
        this.backend = backend;
    }

    @Override
    public Backend recorder() {
        return backend;
    }

    @Override
    public RecordedWork end() {
        if (finished) {
            throw new IllegalStateException("capture already ended");
        }
        finished = true;
        List<CudaBuffer> external = new ArrayList<>();
        for (CudaBuffer b : touched) {
            if (!b.isClosed()) {
                external.add(b);
            }
        }
        CUgraph graph = new CUgraph();
        CUgraphExec exec = new CUgraphExec();
        int[] nodes = new int[1];
        backend.finishCapture(this, graph, exec, nodes);
        return new Graph(graph, exec, external, nodes[0]);
    }

    @Override
    public void abort() {
        if (finished) {
            throw new IllegalStateException("capture already ended");
        }
        finished = true;
        backend.abortCapture(this);
    }

    private final class Graph implements RecordedWork {
        private final CUgraph graph;
        private final CUgraphExec exec;
        private final List<CudaBuffer> external;
        private final int nodes;
        private boolean closed;

        Graph(CUgraph graph, CUgraphExec exec, List<CudaBuffer> external, int nodes) {
            this.graph = graph;
            this.exec = exec;
            this.external = external;
            this.nodes = nodes;
        }

        @Override
        public void replay() {
            if (closed) {
                throw new GraphCaptureException("replay of a destroyed CUDA graph");
            }
            for (CudaBuffer b : external) {
                if (b.isClosed()) {
                    throw new GraphCaptureException("a buffer of " + b.length() + " floats used by the CUDA graph was"
                            + " closed after the capture; keep every tensor the captured step uses open while the graph lives");
                }
            }
            backend.launchGraph(exec, crossEntropy);
        }

        @Override
        public int operations() {
            return nodes;
        }

        @Override
        public void close() {
            if (!closed) {
                closed = true;
                backend.destroyGraph(graph, exec, reservation);
            }
        }
    }

    static void destroyQuietly(CudaApi api, CUgraph graph, CUgraphExec exec) {
        try {
            if (exec != null) {
                api.cuGraphExecDestroy(exec);
            }
        } catch (CudaException ignored) {
            // already invalid: nothing to free
        }
        try {
            if (graph != null) {
                api.cuGraphDestroy(graph);
            }
        } catch (CudaException ignored) {
            // already invalid: nothing to free
        }
    }
}
