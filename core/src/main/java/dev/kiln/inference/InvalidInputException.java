package dev.kiln.inference;

/**
 * An input a {@link Predictor} will not answer: a value that is NaN or infinite, or (when
 * {@link Predictor.Options#rejectOutOfRange} asks for it) outside the range the model's normalisation expects.
 * Names the image (its index in the batch) and the value, so a service can tell its caller which sample was bad.
 */
public final class InvalidInputException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;

    private final int sampleIndex;
    private final int valueIndex;

    InvalidInputException(String message, int sampleIndex, int valueIndex) {
        super(message);
        this.sampleIndex = sampleIndex;
        this.valueIndex = valueIndex;
    }

    /** The image's index in the batch the caller passed. */
    public int sampleIndex() {
        return sampleIndex;
    }

    /** The first bad value's index within that image. */
    public int valueIndex() {
        return valueIndex;
    }
}
