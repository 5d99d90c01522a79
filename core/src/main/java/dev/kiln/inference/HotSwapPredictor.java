package dev.kiln.inference;

import java.util.Objects;
import java.util.function.Function;

/**
 * A {@link Predictor} that can be replaced while threads score through it: {@link #swap} publishes the new model,
 * then closes the old one, which waits for the calls already running on it; a call that reached the old one after
 * that is retried on the new one. No request fails because of a swap.
 * <p>
 * {@link #close()} is final: it closes the current predictor, and a later (or concurrent) {@link #swap} is refused
 * with {@link PredictorClosedException} and closes the predictor it was given, so no model is left open behind a
 * closed service. A predictor that is already closed cannot be swapped in.
 */
public final class HotSwapPredictor implements AutoCloseable {

    private final Object lock = new Object();
    /** Written under {@link #lock}. */
    private volatile Predictor current;
    /** Guarded by {@link #lock}. */
    private boolean closed;

    public HotSwapPredictor(Predictor initial) {
        Objects.requireNonNull(initial, "initial");
        if (initial.isClosed()) {
            throw new IllegalArgumentException("cannot serve a closed predictor: " + initial);
        }
        this.current = initial;
    }

    /** The predictor new calls go to. */
    public Predictor current() {
        return current;
    }

    /**
     * Replaces the model; returns once the old one has finished its calls and is closed.
     *
     * @throws IllegalArgumentException if {@code next} is closed
     * @throws PredictorClosedException if this was closed; {@code next} is closed too
     */
    public void swap(Predictor next) {
        Objects.requireNonNull(next, "next");
        if (next.isClosed()) {
            throw new IllegalArgumentException("cannot swap in a closed predictor: " + next);
        }
        Predictor old;
        synchronized (lock) {
            if (closed) {
                old = null;
            } else {
                old = current;
                current = next;
            }
        }
        if (old == null) {
            next.close();
            throw new PredictorClosedException("HotSwapPredictor (swap refused; the predictor given was closed)");
        }
        if (old != next) {
            old.close();
        }
    }

    /** Runs {@code call} on the current predictor, again on its successor if a swap closed it first. */
    public <T> T apply(Function<Predictor, T> call) {
        while (true) {
            Predictor p = current;
            try {
                return call.apply(p);
            } catch (PredictorClosedException e) {
                if (current == p) {
                    throw e;
                }
            }
        }
    }

    public float[][] logits(float[][] images) {
        return apply(p -> p.logits(images));
    }

    public int[] classes(float[][] images) {
        return apply(p -> p.classes(images));
    }

    public int[] classes(byte[][] images) {
        return apply(p -> p.classes(images));
    }

    public Prediction[] topK(byte[][] images, int k) {
        return apply(p -> p.topK(images, k));
    }

    /** Closes the current predictor (after its calls in flight); final: later swaps are refused. */
    @Override
    public void close() {
        Predictor last;
        synchronized (lock) {
            if (closed) {
                return;
            }
            closed = true;
            last = current;
        }
        last.close();
    }

    public boolean isClosed() {
        synchronized (lock) {
            return closed;
        }
    }
}
