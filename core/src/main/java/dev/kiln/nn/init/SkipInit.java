package dev.kiln.nn.init;

/**
 * Builds layers without drawing their initial weights, for a model whose weights are about to be replaced (loading
 * a file, serving it): PyTorch's {@code torch.nn.utils.skip_init}. While a {@code SkipInit} is open on a thread, the
 * layers that thread constructs get zero-filled parameters and draw nothing from their {@code Generator}.
 *
 * <pre>{@code
 * try (SkipInit ignored = SkipInit.enter()) {
 *     model = new ResNet(device, generator);
 * }
 * model.loadStateDict(weights);
 * }</pre>
 */
public final class SkipInit implements AutoCloseable {

    private static final ThreadLocal<int[]> DEPTH = ThreadLocal.withInitial(() -> new int[1]);

    private final Thread owner = Thread.currentThread();
    private boolean closed;

    private SkipInit() {
        DEPTH.get()[0]++;
    }

    /** Starts skipping initialisation on this thread until {@link #close()}; scopes nest. */
    public static SkipInit enter() {
        return new SkipInit();
    }

    /** Whether layers built on this thread now skip their random initialisation. */
    public static boolean active() {
        return DEPTH.get()[0] > 0;
    }

    @Override
    public void close() {
        if (Thread.currentThread() != owner) {
            throw new IllegalStateException("SkipInit closed on thread " + Thread.currentThread().getName()
                    + ", opened on " + owner.getName());
        }
        if (!closed) {
            closed = true;
            DEPTH.get()[0]--;
        }
    }
}
