package dev.kiln.spark;

/** Indices of the k largest values, largest first; equal values keep the lower index first (as a stable sort). */
final class TopK {

    private TopK() {
    }

    static int[] indices(float[] values, int k) {
        int[] best = new int[k];
        int filled = 0;
        for (int i = 0; i < values.length; i++) {
            float v = values[i];
            if (filled == k && !(v > values[best[k - 1]])) {
                continue;
            }
            int pos = filled < k ? filled++ : k - 1;
            while (pos > 0 && v > values[best[pos - 1]]) {
                best[pos] = best[pos - 1];
                pos--;
            }
            best[pos] = i;
        }
        return best;
    }
}
