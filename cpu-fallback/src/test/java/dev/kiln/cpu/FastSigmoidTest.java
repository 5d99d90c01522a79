package dev.kiln.cpu;

import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class FastSigmoidTest {

    @Test
    @DisplayName("relative error below 3e-6 wherever the result is a normal float, NaN kept, exact tails")
    void accuracy() {
        int n = 2_000_001;
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = -100f + 200f * i / (n - 1);
        }
        float[] y = new float[n];
        FastSigmoid.apply(x, y, 0, n);
        double worst = 0;
        for (int i = 0; i < n; i++) {
            double ref = 1.0 / (1.0 + Math.exp(-(double) x[i]));
            if (ref < Float.MIN_NORMAL) {
                continue;
            }
            worst = Math.max(worst, Math.abs(y[i] - ref) / ref);
        }
        assertTrue(worst < 3e-6, "worst relative error " + worst);
        float[] special = {Float.NaN, 0f, 15.5f, -15.5f, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY};
        float[] out = new float[special.length];
        FastSigmoid.apply(special, out, 0, special.length);
        assertTrue(Float.isNaN(out[0]));
        assertEquals(0.5f, out[1], 1e-7f);
        assertEquals((float) (1 / (1 + Math.exp(-15.5))), out[2]);
        assertEquals((float) (1 / (1 + Math.exp(15.5))), out[3]);
        assertEquals(1f, out[4]);
        assertEquals(0f, out[5]);
    }
}
