package dev.kiln.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * The two reductions of batch norm on the Vector API: the shifted sums of the forward statistics and the sums of the
 * backward pass, channel by channel over {@code (n, channels, spatial)}. C2 does not vectorise a float reduction by
 * itself (it would reorder the sum), so the scalar kernels run a few dependent chains. Here each lane of a vector
 * accumulates in float across the rows of a channel (the accumulators go through a small array between rows, so no
 * vector crosses the outer loop, which C2 on JDK 17 would box), and the lanes are flushed to double in a fixed order
 * once each lane holds {@link #VALUES_PER_FLUSH} values, the same bound per float accumulator as the scalar chains.
 * Row tails shorter than a vector are summed in double.
 */
final class VectorBatchNorm {

    private static final VectorSpecies<Float> S = VectorSgemm.SPECIES;
    private static final int L = VectorSgemm.L;
    /** Values one float lane accumulates before the flush to double (the scalar chains' 256 / 4). */
    static final int VALUES_PER_FLUSH = 64;

    private VectorBatchNorm() {
    }

    /** {@code {sum(x - shift), sum((x - shift)^2)}} over channel c. */
    static double[] shiftedSums(float[] x, int n, int ch, int sp, int c, float shift) {
        float[] lanes = new float[2 * L];
        double[] acc = new double[2];
        int perLane = 0;
        FloatVector sh = FloatVector.broadcast(S, shift);
        int full = sp / L * L;
        for (int i = 0; i < n; i++) {
            int o = (i * ch + c) * sp;
            FloatVector a = FloatVector.fromArray(S, lanes, 0);
            FloatVector q = FloatVector.fromArray(S, lanes, L);
            for (int j = 0; j < full; j += L) {
                FloatVector d = FloatVector.fromArray(S, x, o + j).sub(sh);
                a = a.add(d);
                q = d.fma(d, q);
            }
            a.intoArray(lanes, 0);
            q.intoArray(lanes, L);
            for (int j = full; j < sp; j++) {
                double d = (double) x[o + j] - shift;
                acc[0] += d;
                acc[1] += d * d;
            }
            perLane += full / L;
            if (perLane >= VALUES_PER_FLUSH) {
                flush(lanes, acc);
                perLane = 0;
            }
        }
        flush(lanes, acc);
        return acc;
    }

    /** {@code {sum(dy), sum(dy * (x - mean))}} over channel c. */
    static double[] backwardSums(float[] dy, float[] x, int n, int ch, int sp, int c, float mean) {
        float[] lanes = new float[2 * L];
        double[] acc = new double[2];
        int perLane = 0;
        FloatVector mu = FloatVector.broadcast(S, mean);
        int full = sp / L * L;
        for (int i = 0; i < n; i++) {
            int o = (i * ch + c) * sp;
            FloatVector a = FloatVector.fromArray(S, lanes, 0);
            FloatVector q = FloatVector.fromArray(S, lanes, L);
            for (int j = 0; j < full; j += L) {
                FloatVector d = FloatVector.fromArray(S, dy, o + j);
                a = a.add(d);
                q = d.fma(FloatVector.fromArray(S, x, o + j).sub(mu), q);
            }
            a.intoArray(lanes, 0);
            q.intoArray(lanes, L);
            for (int j = full; j < sp; j++) {
                double d = dy[o + j];
                acc[0] += d;
                acc[1] += d * ((double) x[o + j] - mean);
            }
            perLane += full / L;
            if (perLane >= VALUES_PER_FLUSH) {
                flush(lanes, acc);
                perLane = 0;
            }
        }
        flush(lanes, acc);
        return acc;
    }

    /**
     * {@code y = (x - mean) * scale + b} over {@code sp} values from {@code o}, then {@code max(y, 0)} if {@code relu}
     * ({@link Math#max}'s semantics, as the lanewise MAX): the scalar loop's arithmetic (no fused multiply-add) lane by
     * lane. A fixed vector loop keeps short rows (ResNet's 7x7 planes) in vector code, where a compiled scalar loop
     * tuned on long rows would run them in its scalar pre- and post-loops.
     */
    static void normaliseRow(float[] x, float[] y, int o, int sp, float mean, float scale, float b, boolean relu) {
        int full = sp / L * L;
        if (relu) {
            for (int j = 0; j < full; j += L) {
                FloatVector.fromArray(S, x, o + j).sub(mean).mul(scale).add(b).max(0f).intoArray(y, o + j);
            }
            for (int j = full; j < sp; j++) {
                y[o + j] = Math.max((x[o + j] - mean) * scale + b, 0f);
            }
            return;
        }
        for (int j = 0; j < full; j += L) {
            FloatVector.fromArray(S, x, o + j).sub(mean).mul(scale).add(b).intoArray(y, o + j);
        }
        for (int j = full; j < sp; j++) {
            y[o + j] = (x[o + j] - mean) * scale + b;
        }
    }

    /** Batch norm's {@code dx = k1 * dy + (k2 * (x - mean) + k3)} over one row, as {@link #normaliseRow}. */
    static void dxRow(float[] x, float[] dy, float[] dx, int o, int sp, float mean, float k1, float k2, float k3) {
        int full = sp / L * L;
        for (int j = 0; j < full; j += L) {
            FloatVector t = FloatVector.fromArray(S, x, o + j).sub(mean).mul(k2).add(k3);
            FloatVector.fromArray(S, dy, o + j).mul(k1).add(t).intoArray(dx, o + j);
        }
        for (int j = full; j < sp; j++) {
            dx[o + j] = k1 * dy[o + j] + (k2 * (x[o + j] - mean) + k3);
        }
    }

    /**
     * {@code sum(x)} over channel c (a convolution's bias gradient), in float lanes flushed to double as above; row
     * tails shorter than a vector are summed in double.
     */
    static double channelSum(float[] x, int n, int ch, int sp, int c) {
        float[] lanes = new float[2 * L];
        double[] acc = new double[2];
        int perLane = 0;
        int full = sp / L * L;
        for (int i = 0; i < n; i++) {
            int o = (i * ch + c) * sp;
            FloatVector a = FloatVector.fromArray(S, lanes, 0);
            for (int j = 0; j < full; j += L) {
                a = a.add(FloatVector.fromArray(S, x, o + j));
            }
            a.intoArray(lanes, 0);
            for (int j = full; j < sp; j++) {
                acc[0] += x[o + j];
            }
            perLane += full / L;
            if (perLane >= VALUES_PER_FLUSH) {
                flush(lanes, acc);
                perLane = 0;
            }
        }
        flush(lanes, acc);
        return acc[0];
    }

    private static void flush(float[] lanes, double[] acc) {
        double sa = 0, sq = 0;
        for (int t = 0; t < L; t++) {
            sa += lanes[t];
            sq += lanes[L + t];
        }
        acc[0] += sa;
        acc[1] += sq;
        java.util.Arrays.fill(lanes, 0f);
    }
}
