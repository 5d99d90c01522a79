package dev.kiln.suites;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.fail;

/** Reading and comparing the PyTorch goldens' JSON, shared by the goldens suites. */
final class GoldenJson {

    private GoldenJson() {
    }

    static float[] floats(JsonElement e) {
        JsonArray a = e.getAsJsonArray();
        float[] out = new float[a.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = a.get(i).getAsFloat();
        }
        return out;
    }

    static int[] ints(JsonElement e) {
        JsonArray a = e.getAsJsonArray();
        int[] out = new int[a.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = a.get(i).getAsInt();
        }
        return out;
    }

    /**
     * A whole tensor through its sum (within {@code sumTol} of sqrt(n * sumsq), the largest a sum of n values of
     * that size can be), its sum of squares (within {@code sqTol} relative) and its first values (each within
     * {@code headTol * (|value| + rms)}, the rms of the whole tensor, so small entries of a large tensor are judged
     * on the tensor's scale).
     */
    static void compareSummary(String what, JsonObject torch, float[] got, double sumTol, double sqTol,
                                       double headTol) {
        double sum = 0;
        double sumsq = 0;
        for (float v : got) {
            sum += v;
            sumsq += (double) v * v;
        }
        double scale = Math.sqrt(got.length * Math.max(sumsq, 1e-30));
        double wantSum = torch.get("sum").getAsDouble();
        double wantSq = torch.get("sumsq").getAsDouble();
        if (Math.abs(sum - wantSum) > sumTol * scale + 1e-9) {
            fail(what + ": sum " + sum + ", PyTorch " + wantSum);
        }
        if (Math.abs(sumsq - wantSq) > sqTol * Math.max(sumsq, wantSq) + 1e-15) {
            fail(what + ": sum of squares " + sumsq + ", PyTorch " + wantSq);
        }
        float[] head = Arrays.copyOf(got, Math.min(8, got.length));
        double rms = Math.sqrt(wantSq / got.length);
        DeviceSuite.assertClose(floats(torch.get("head")), head, headTol, headTol * rms, what + " first values vs PyTorch");
    }
}
