package dev.kiln.suites;

import dev.kiln.core.Generator;
import dev.kiln.core.Tensor;
import dev.kiln.core.TensorScope;
import dev.kiln.data.Normalization;
import dev.kiln.inference.InvalidInputException;
import dev.kiln.inference.Prediction;
import dev.kiln.inference.Predictor;
import dev.kiln.models.LeNet5;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** What a {@link Predictor} answers to inputs it should not score: NaN, infinities, values out of range. */
public class PredictorInputsSuite extends DeviceSuite {

    private static float[][] images(int n) {
        float[][] out = new float[n][784];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < 784; j++) {
                out[i][j] = (i * 31 + j * 7) % 256;
            }
        }
        return out;
    }

    private Predictor predictor(Predictor.Options options) {
        return predictor(options, Normalization.MNIST);
    }

    private Predictor predictor(Predictor.Options options, Normalization normalization) {
        LeNet5 model = new LeNet5(device(), new Generator(3));
        try {
            return Predictor.of(model, normalization, options.device(device()));
        } finally {
            model.close();
        }
    }

    @Test
    @DisplayName("a NaN or infinite value is refused by default, naming the image; the other images are not the cause")
    void nonFiniteRefusedByDefault() {
        try (Predictor p = predictor(Predictor.Options.defaults())) {
            for (float bad : new float[]{Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY}) {
                float[][] x = images(5);
                x[3][100] = bad;
                InvalidInputException e = assertThrows(InvalidInputException.class, () -> p.classes(x));
                assertEquals(3, e.sampleIndex());
                assertEquals(100, e.valueIndex());
                assertTrue(e.getMessage().contains("image 3 value 100 is " + bad), e.getMessage());
                assertThrows(InvalidInputException.class, () -> p.logits(x));
                assertThrows(InvalidInputException.class, () -> p.probabilities(x));
                assertThrows(InvalidInputException.class, () -> p.topK(x, 3));
            }
            float[] t = new float[2 * 784];
            t[784 + 5] = Float.NaN;
            try (TensorScope s = TensorScope.open()) {
                InvalidInputException e = assertThrows(InvalidInputException.class,
                        () -> p.logits(Tensor.of(device(), t, 2, 1, 28, 28)));
                assertEquals(1, e.sampleIndex());
            }
            // a finite out-of-range value is scored unless the caller asks otherwise
            float[][] x = images(2);
            x[1][0] = 1e6f;
            assertEquals(2, p.classes(x).length);
        }
    }

    @Test
    @DisplayName("flagInvalidInputs: the bad image gets class -1 and NaN rows, the others their usual answers")
    void flaggedResults() {
        try (Predictor strict = predictor(Predictor.Options.defaults());
             Predictor p = predictor(Predictor.Options.defaults().flagInvalidInputs(true))) {
            float[][] good = images(4);
            float[][] x = images(4);
            x[2][400] = Float.NaN;
            int[] expected = strict.classes(good);
            int[] got = p.classes(x);
            assertEquals(-1, got[2]);
            for (int i : new int[]{0, 1, 3}) {
                assertEquals(expected[i], got[i]);
            }
            float[][] logits = p.logits(x);
            assertTrue(Float.isNaN(logits[2][0]) && Float.isNaN(logits[2][9]));
            assertArrayEquals(strict.logits(good)[1], logits[1]);
            assertTrue(Float.isNaN(p.probabilities(x)[2][4]));
            Prediction[] top = p.topK(x, 2);
            assertArrayEquals(new int[]{-1, -1}, top[2].classes());
            assertEquals(expected[3], top[3].best());
        }
    }

    @Test
    @DisplayName("rejectOutOfRange: raw values outside [0, 1/scale] are refused (or flagged), bytes above it too")
    void outOfRange() {
        try (Predictor p = predictor(Predictor.Options.defaults().rejectOutOfRange(true));
             Predictor flag = predictor(Predictor.Options.defaults().rejectOutOfRange(true).flagInvalidInputs(true));
             Predictor identity = predictor(Predictor.Options.defaults().rejectOutOfRange(true), Normalization.NONE)) {
            float[][] x = images(3);
            assertEquals(3, p.classes(x).length);   // 0..255 is MNIST's range
            x[0][7] = 256f;
            InvalidInputException e = assertThrows(InvalidInputException.class, () -> p.classes(x));
            assertEquals(0, e.sampleIndex());
            assertTrue(e.getMessage().contains("outside [0, 255.0]"), e.getMessage());
            x[0][7] = -0.5f;
            assertEquals(0, assertThrows(InvalidInputException.class, () -> p.classes(x)).sampleIndex());
            assertEquals(-1, flag.classes(x)[0]);
            assertTrue(flag.classes(x)[1] >= 0);
            byte[][] bytes = new byte[2][784];
            Arrays.fill(bytes[1], (byte) 2);   // 2 > 1, the top of Normalization.NONE's range
            assertEquals(1, assertThrows(InvalidInputException.class, () -> identity.classes(bytes)).sampleIndex());
        }
    }
}
