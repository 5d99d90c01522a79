package dev.kiln.nn;

import dev.kiln.core.GradMode;
import dev.kiln.core.Tensor;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/**
 * Makes a training step all-or-nothing for the state a forward pass changes besides its output: batch norm's
 * running statistics and {@code num_batches_tracked}. While one is open on a thread, a training forward records those
 * updates here instead of applying them, together with the values they would write ({@link #written()}, computed
 * into temporaries), so that the step's guard can check them before anything commits; {@link #commit(Tensor)}
 * applies them after the optimizer step, guarded on the device (a NaN or infinite guard leaves them bitwise
 * unchanged, as the fused SGD leaves the parameters), and closing without a commit (an exception anywhere in the
 * step) drops them.
 * <p>
 * {@code TrainingStep} and {@code Trainer} open one around every step. A plain {@code forward} outside a transaction
 * keeps PyTorch's semantics and updates the running statistics at once.
 */
public final class StepTransaction implements AutoCloseable {

    private static final ThreadLocal<StepTransaction> CURRENT = new ThreadLocal<>();

    private final Thread owner = Thread.currentThread();
    private final List<Consumer<Tensor>> deviceUpdates = new ArrayList<>();
    private final List<Runnable> hostUpdates = new ArrayList<>();
    private final List<Tensor> written = new ArrayList<>();
    private boolean finished;

    private StepTransaction() {
    }

    /** Opens a transaction on this thread; transactions do not nest. */
    public static StepTransaction open() {
        if (CURRENT.get() != null) {
            throw new IllegalStateException("a step transaction is already open on this thread");
        }
        StepTransaction tx = new StepTransaction();
        CURRENT.set(tx);
        return tx;
    }

    /** The transaction open on this thread, or null. */
    public static StepTransaction current() {
        return CURRENT.get();
    }

    /** An update to apply at commit, given the loss guard (null when the commit is unguarded). */
    public void deferDeviceUpdate(Consumer<Tensor> update) {
        checkOpen();
        deviceUpdates.add(update);
    }

    /**
     * Values a deferred update will write at commit (e.g. the new running statistics, computed into temporaries that
     * live as long as the step's scope): the step's guard checks they are finite before it commits.
     */
    public void willWrite(Tensor values) {
        checkOpen();
        written.add(values);
    }

    /** What {@link #willWrite} recorded so far, in order. */
    public List<Tensor> written() {
        return List.copyOf(written);
    }

    /**
     * The guard of a step (one value on the device, no host wait): {@code loss + 0 * (sum of the sums of every
     * gradient of {@code parameters} and every value in {@link #written()})}, which is the loss itself when all of
     * them are finite and NaN when any is not (0 times an infinity or a NaN), and also when their sums overflow
     * float32 (about 3.4e38, which only a step that would wreck the model reaches). Pass it to
     * {@code Optimizer.step(guard)} and {@link #commit(Tensor)}, so that a step that would write a non-finite value
     * anywhere changes nothing. Call it after the backward pass, in the step's scope.
     */
    public Tensor guard(Tensor loss, List<Tensor> parameters) {
        checkOpen();
        try (GradMode ignored = GradMode.noGrad()) {
            Tensor total = null;
            for (Tensor p : parameters) {
                Tensor g = p.grad();
                if (g != null) {
                    total = total == null ? g.sum() : total.add(g.sum());
                }
            }
            for (Tensor w : written) {
                total = total == null ? w.sum() : total.add(w.sum());
            }
            return total == null ? loss.mul(1f) : total.mul(0f).add(loss);
        }
    }

    /** Host bookkeeping (counters) to apply at commit. */
    public void deferHostUpdate(Runnable update) {
        checkOpen();
        hostUpdates.add(update);
    }

    /**
     * Applies the recorded updates. With {@code lossGuard} (one value: the step's loss, made non-finite when anything
     * the step writes is not) each device update is skipped on the device when the guard is not finite; with null they
     * are applied unconditionally.
     */
    public void commit(Tensor lossGuard) {
        checkOpen();
        finished = true;
        for (Consumer<Tensor> u : deviceUpdates) {
            u.accept(lossGuard);
        }
        for (Runnable r : hostUpdates) {
            r.run();
        }
    }

    private void checkOpen() {
        if (finished) {
            throw new IllegalStateException("step transaction already committed or closed");
        }
        if (Thread.currentThread() != owner) {
            throw new IllegalStateException("a step transaction belongs to the thread that opened it (" + owner.getName() + ")");
        }
    }

    /** Ends the transaction; updates not committed are dropped. */
    @Override
    public void close() {
        finished = true;
        if (CURRENT.get() == this) {
            CURRENT.remove();
        }
    }
}
