package dev.kiln.inference;

import java.util.Objects;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Function;

/**
 * A {@link Predictor} that can be replaced while threads score through it: {@link #swap} publishes the new model,
 * then closes the old one, which waits for the calls already running on it; a call that reached the old one after
 * that is retried on the new one. No request fails because of a swap.
 */
public final class HotSwapPredictor implements AutoCloseable {

    private final AtomicReference<Predictor> current;

    public HotSwapPredictor(Predictor initial) {
        this.current = new AtomicReference<>(Objects.requireNonNull(initial, "initial"));
    }

    /** The predictor new calls go to. */
    public Predictor current() {
        return current.get();
    }

    /** Replaces the model; returns once the old one has finished its calls and is closed. */
    public void swap(Predictor next) {
        Predictor old = current.getAndSet(Objects.requireNonNull(next, "next"));
        if (old != next) {
            old.close();
        }
    }

    /** Runs {@code call} on the current predictor, again on its successor if a swap closed it first. */
    public <T> T apply(Function<Predictor, T> call) {
        while (true) {
            Predictor p = current.get();
            try {
                return call.apply(p);
            } catch (PredictorClosedException e) {
                if (current.get() == p) {
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

    /** Closes the current predictor (after its calls in flight). */
    @Override
    public void close() {
        current.get().close();
    }
}
