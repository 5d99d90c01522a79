package dev.kiln.core;

import dev.kiln.backend.GraphCapture;
import dev.kiln.backend.GraphCaptureException;
import dev.kiln.backend.RecordedWork;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.List;

/**
 * Work on one device captured once and replayed many times: on CUDA a CUDA graph (one launch for a whole training
 * step instead of a hundred), on the CPU a recorded call list. The captured code runs once on the host to record and
 * its device work does not run then; {@link #replay()} runs it. Tensors the work reads and writes keep their memory
 * for the life of the graph: put new inputs into the same input tensors before a replay, read outputs after it, and
 * keep the model, optimizer and those tensors open until the graph is closed.
 */
public final class CapturedGraph implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(CapturedGraph.class);

    private final Device device;
    private final RecordedWork work;
    private final List<Runnable> before;
    private final List<Runnable> after;
    private boolean closed;

    private CapturedGraph(Device device, RecordedWork work, List<Runnable> before, List<Runnable> after) {
        this.device = device;
        this.work = work;
        this.before = List.copyOf(before);
        this.after = List.copyOf(after);
    }

    /**
     * Records {@code body}'s work on {@code device}. Throws {@link GraphCaptureException} (and records nothing, changes
     * nothing on the device) when the device cannot capture or the body does something a replay cannot repeat; the
     * caller then runs eagerly.
     */
    public static CapturedGraph capture(Device device, Runnable body) {
        GraphCapture capture = device.ownBackend().beginCapture();
        if (capture == null) {
            throw new GraphCaptureException("device " + device + " (" + device.ownBackend().description()
                    + ") cannot capture graphs");
        }
        CaptureContext ctx = new CaptureContext(device, capture.recorder());
        try {
            CaptureContext.enter(ctx);
        } catch (RuntimeException e) {
            capture.abort();
            throw e;
        }
        try {
            body.run();
        } catch (RuntimeException | Error e) {
            CaptureContext.exit();
            try {
                capture.abort();
            } catch (RuntimeException suppressed) {
                e.addSuppressed(suppressed);
            }
            throw e;
        }
        CaptureContext.exit();
        RecordedWork work = capture.end();
        LOG.debug("captured {} operations on {}", work.operations(), device);
        return new CapturedGraph(device, work, ctx.before, ctx.after);
    }

    /** Runs the captured work once more (queued asynchronously on the GPU). */
    public void replay() {
        if (closed) {
            throw new IllegalStateException("captured graph is closed");
        }
        for (Runnable r : before) {
            r.run();
        }
        work.replay();
        for (Runnable r : after) {
            r.run();
        }
    }

    /** Recorded operations (kernel launches and library calls). */
    public int operations() {
        return work.operations();
    }

    public Device device() {
        return device;
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            work.close();
        }
    }
}
