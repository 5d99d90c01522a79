package dev.kiln.examples;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * The FMA ceiling of the cores: {@link #ACCUMULATORS} independent vector accumulators of the preferred width, each
 * updated by one fused multiply-add per step, no load or store in the loop. Sixteen chains cover the FMA latency of
 * two pipes (4 cycles x 2 pipes = 8 in flight at most on current x86 cores) twice over, so the loop runs at the pipes'
 * throughput. {@code x * m + c} with {@code 0 < m < 1} converges to {@code c / (1 - m)}: no overflow, no subnormal.
 * Loaded only when the JVM has the Vector API module ({@link BenchOpsCommand.Peak#vectorApiPresent}).
 */
final class VectorFmaPeak {

    static final int ACCUMULATORS = 16;
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int STEPS = 2_000_000;

    private VectorFmaPeak() {
    }

    static int bits() {
        return S.length() * 32;
    }

    /** Best of several runs on {@code threads} threads at once: FLOP/s (2 per lane per FMA). */
    static double flops(int threads) {
        double flopPerRun = (double) threads * STEPS * ACCUMULATORS * S.length() * 2;
        double best = 0;
        for (int attempt = 0; attempt < 8; attempt++) {
            double seconds = BenchOpsCommand.Peak.runOnThreads(threads, VectorFmaPeak::chains);
            best = Math.max(best, flopPerRun / seconds);
        }
        return best;
    }

    // one flat loop: C2 keeps vector locals of a single loop in registers
    private static float chains() {
        FloatVector m = FloatVector.broadcast(S, 0.999f);
        FloatVector c = FloatVector.broadcast(S, 0.001f);
        FloatVector a0 = FloatVector.broadcast(S, 1f), a1 = a0.add(0.01f), a2 = a0.add(0.02f), a3 = a0.add(0.03f);
        FloatVector a4 = a0.add(0.04f), a5 = a0.add(0.05f), a6 = a0.add(0.06f), a7 = a0.add(0.07f);
        FloatVector a8 = a0.add(0.08f), a9 = a0.add(0.09f), a10 = a0.add(0.10f), a11 = a0.add(0.11f);
        FloatVector a12 = a0.add(0.12f), a13 = a0.add(0.13f), a14 = a0.add(0.14f), a15 = a0.add(0.15f);
        for (int i = 0; i < STEPS; i++) {
            a0 = a0.fma(m, c);
            a1 = a1.fma(m, c);
            a2 = a2.fma(m, c);
            a3 = a3.fma(m, c);
            a4 = a4.fma(m, c);
            a5 = a5.fma(m, c);
            a6 = a6.fma(m, c);
            a7 = a7.fma(m, c);
            a8 = a8.fma(m, c);
            a9 = a9.fma(m, c);
            a10 = a10.fma(m, c);
            a11 = a11.fma(m, c);
            a12 = a12.fma(m, c);
            a13 = a13.fma(m, c);
            a14 = a14.fma(m, c);
            a15 = a15.fma(m, c);
        }
        FloatVector sum = a0.add(a1).add(a2).add(a3).add(a4).add(a5).add(a6).add(a7)
                .add(a8).add(a9).add(a10).add(a11).add(a12).add(a13).add(a14).add(a15);
        return sum.reduceLanes(jdk.incubator.vector.VectorOperators.ADD);
    }
}
