package dev.kiln.conformance;

import static org.junit.jupiter.api.Assertions.fail;

import java.util.Arrays;

/**
 * Comparison of a backend's float32 result with the float64 reference, and the error model behind every tolerance.
 *
 * <p>Every check is {@code |got - ref| <= tol[i]} element by element (a NaN reference requires a NaN result, an
 * infinite one the same infinity). Failure messages name the op, the shape, the first mismatching index (flat and
 * as a multi-index), got vs expected, and how many elements mismatch.
 *
 * <p>Error model (u = 2^-24 ~ 6e-8 is float32's unit roundoff):
 * <ul>
 *   <li><b>Element-wise</b> results are one correctly-or-nearly rounded float32 operation on float32 inputs, so
 *       {@link #RTOL} = 1e-5 (~170 u; leaves room for GPU intrinsics such as {@code __expf} that are a few ulp off,
 *       and for the float32 rounding of intermediate values such as {@code exp(-x)} in a sigmoid) plus a tiny
 *       absolute floor {@link #ATOL} for results near zero produced by cancellation.</li>
 *   <li><b>Sums of K terms</b> (dot products, convolutions, reductions) in float32: a pairwise/blocked sum errs by
 *       about {@code sqrt(K) u max|term|}, a sequential one by up to about {@code u sqrt(K) * sum|term|} when the terms
 *       share a sign (the partial sums grow linearly). {@link #sums} therefore allows
 *       {@code RTOL |ref| + 1e-7 sqrt(K) sum|term|} (1e-7 ~ 1.7 u), with {@code sum|term|} computed exactly by the
 *       reference for each output. This still catches a single missing or extra term unless that term is smaller
 *       than ~1e-7 sqrt(K) of the sum of magnitudes (for LeNet's largest sum, K = 6400: 8e-6 of it).</li>
 * </ul>
 */
public final class Tolerance {

    /** float32 unit roundoff. */
    public static final double U = 0x1p-24;
    /** Relative tolerance of element-wise float32 results against float64. */
    public static final double RTOL = 1e-5;
    /** Absolute floor for element-wise results near zero. */
    public static final double ATOL = 1e-7;
    /** Coefficient of {@code sqrt(K) * sum|term|} in the tolerance of a float32 sum of K terms. */
    public static final double SUM_COEFF = 1e-7;

    /** With {@code -Dkiln.conformance.report=true}, every comparison prints the largest |diff|/tol it saw. */
    static final boolean REPORT = Boolean.getBoolean("kiln.conformance.report");

    private Tolerance() {
    }

    /** {@code atol + rtol |ref|} for every element. */
    public static double[] elementwise(double[] ref, double atol, double rtol) {
        double[] t = new double[ref.length];
        for (int i = 0; i < ref.length; i++) {
            t[i] = atol + rtol * Math.abs(ref[i]);
        }
        return t;
    }

    /** Tolerance of outputs that are float32 sums of {@code k} terms whose magnitudes add up to {@code absSum[i]}. */
    public static double[] sums(double[] ref, double[] absSum, long k) {
        double[] t = new double[ref.length];
        double s = SUM_COEFF * Math.sqrt(Math.max(1, k));
        for (int i = 0; i < ref.length; i++) {
            t[i] = ATOL + RTOL * Math.abs(ref[i]) + s * absSum[i];
        }
        return t;
    }

    public static void assertClose(String op, int[] shape, float[] got, double[] ref, double atol, double rtol) {
        assertClose(op, shape, got, ref, elementwise(ref, atol, rtol));
    }

    public static void assertClose(String op, int[] shape, float[] got, double[] ref, double[] tol) {
        if (got.length != ref.length) {
            fail(op + " " + shape(shape) + ": result has " + got.length + " elements, expected " + ref.length);
        }
        int bad = 0;
        int first = -1;
        double worst = 0;
        int worstAt = -1;
        for (int i = 0; i < ref.length; i++) {
            double g = got[i];
            double r = ref[i];
            boolean ok;
            double diff;
            if (Double.isNaN(r)) {
                ok = Double.isNaN(g);
                diff = ok ? 0 : Double.POSITIVE_INFINITY;
            } else if (Double.isInfinite(r)) {
                ok = g == r;
                diff = ok ? 0 : Double.POSITIVE_INFINITY;
            } else {
                diff = Math.abs(g - r);
                ok = diff <= tol[i]; // NaN diff (g NaN) compares false
                if (Double.isNaN(diff)) {
                    diff = Double.POSITIVE_INFINITY;
                }
            }
            if (!ok) {
                bad++;
                if (first < 0) {
                    first = i;
                }
                if (diff / Math.max(tol[i], Double.MIN_NORMAL) > worst) {
                    worst = diff / Math.max(tol[i], Double.MIN_NORMAL);
                    worstAt = i;
                }
            }
        }
        if (REPORT) {
            double used = 0;
            for (int i = 0; i < ref.length; i++) {
                if (!Double.isNaN(ref[i]) && !Double.isInfinite(ref[i])) {
                    used = Math.max(used, Math.abs(got[i] - ref[i]) / Math.max(tol[i], Double.MIN_NORMAL));
                }
            }
            System.out.println("[conformance] " + fmt(used) + " of tolerance used: " + op + " " + shape(shape));
        }
        if (bad > 0) {
            fail(op + " " + shape(shape) + ": " + bad + " of " + ref.length + " elements mismatch; first at "
                    + where(first, shape) + ": got " + got[first] + ", expected " + ref[first]
                    + " (|diff| " + fmt(Math.abs(got[first] - ref[first])) + " > tol " + fmt(tol[first]) + ")"
                    + (worstAt != first ? "; worst at " + where(worstAt, shape) + ": got " + got[worstAt]
                    + ", expected " + ref[worstAt] + " (tol " + fmt(tol[worstAt]) + ")" : ""));
        }
    }

    /** Bitwise float equality (NaN equals NaN) for data movement ops, which must not change any bit. */
    public static void assertExact(String op, int[] shape, float[] got, float[] expected) {
        if (got.length != expected.length) {
            fail(op + " " + shape(shape) + ": result has " + got.length + " elements, expected " + expected.length);
        }
        int bad = 0;
        int first = -1;
        for (int i = 0; i < expected.length; i++) {
            if (Float.floatToIntBits(got[i]) != Float.floatToIntBits(expected[i])) {
                bad++;
                if (first < 0) {
                    first = i;
                }
            }
        }
        if (bad > 0) {
            fail(op + " " + shape(shape) + ": " + bad + " of " + expected.length + " elements differ (exact op); first at "
                    + where(first, shape) + ": got " + got[first] + ", expected " + expected[first]);
        }
    }

    public static String shape(int... shape) {
        if (shape == null) {
            return "()";
        }
        StringBuilder sb = new StringBuilder("(");
        for (int i = 0; i < shape.length; i++) {
            sb.append(i == 0 ? "" : ",").append(shape[i]);
        }
        return sb.append(')').toString();
    }

    static String where(int flat, int[] shape) {
        if (shape == null || shape.length <= 1) {
            return "index " + flat;
        }
        long total = 1;
        for (int d : shape) {
            total *= d;
        }
        if (total <= flat) {
            return "index " + flat;
        }
        int[] idx = new int[shape.length];
        int rem = flat;
        for (int d = shape.length - 1; d >= 0; d--) {
            idx[d] = rem % shape[d];
            rem /= shape[d];
        }
        return "index " + flat + " " + Arrays.toString(idx).replace('[', '[').replace(" ", "");
    }

    static String fmt(double d) {
        return String.format("%.3g", d);
    }
}
