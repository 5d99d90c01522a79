package dev.kiln.inference;

/** A call reached a {@link Predictor} after {@link Predictor#close()} began. */
public final class PredictorClosedException extends IllegalStateException {

    PredictorClosedException(String what) {
        super(what + " is closed");
    }
}
