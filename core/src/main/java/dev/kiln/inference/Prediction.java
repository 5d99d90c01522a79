package dev.kiln.inference;

import java.util.Arrays;

/**
 * The {@code k} most probable classes of one image, most probable first, with their softmax probabilities.
 */
public record Prediction(int[] classes, float[] probabilities) {

    public Prediction {
        if (classes.length != probabilities.length) {
            throw new IllegalArgumentException(classes.length + " classes but " + probabilities.length + " probabilities");
        }
        classes = classes.clone();
        probabilities = probabilities.clone();
    }

    @Override
    public int[] classes() {
        return classes.clone();
    }

    @Override
    public float[] probabilities() {
        return probabilities.clone();
    }

    /** The most probable class. */
    public int best() {
        return classes[0];
    }

    @Override
    public String toString() {
        return "Prediction" + Arrays.toString(classes) + Arrays.toString(probabilities);
    }
}
