package dev.kiln.conformance;

import static org.junit.jupiter.api.Assertions.fail;

import java.util.function.Function;

/**
 * Verifies a float64 reference backward against central finite differences of the float64 reference forward:
 * with {@code L(x) = sum_j dy_j f_j(x)}, the analytic {@code dx_i} must equal
 * {@code (L(x + h e_i) - L(x - h e_i)) / 2h}. The difference is formed per output,
 * {@code sum_j dy_j (f_j(x+h e_i) - f_j(x-h e_i)) / 2h}, so unaffected outputs contribute exactly zero.
 *
 * <p>Tolerance: {@code 1e-6 (1 + |dx_i|)} covers the O(h^2) truncation error (h = 1e-6, so ~1e-12 times the third
 * derivative) with a wide margin; to that is added the float64 rounding budget of the difference quotient,
 * {@code 64 eps sum_j |dy_j| max(|f_j(x+)|, |f_j(x-)|) / h}, the worst case of evaluating each f_j to a few dozen
 * ulps (batch norm's reductions over 50k values included) and dividing by 2h. Only reference code runs here.
 */
public final class Gradcheck {

    public static final double H = 1e-6;
    private static final double EPS64 = Math.ulp(1.0);

    private Gradcheck() {
    }

    public static void check(String op, String shape, Function<double[], double[]> f, double[] x, double[] dy,
                             double[] analytic, int[] indices) {
        check(op, shape, f, x, dy, analytic, indices, H);
    }

    public static void check(String op, String shape, Function<double[], double[]> f, double[] x, double[] dy,
                             double[] analytic, int[] indices, double h) {
        for (int i : indices) {
            double[] xp = x.clone();
            double[] xm = x.clone();
            xp[i] += h;
            xm[i] -= h;
            double[] yp = f.apply(xp);
            double[] ym = f.apply(xm);
            double fd = 0;
            double noise = 0;
            for (int j = 0; j < yp.length; j++) {
                fd += dy[j] * (yp[j] - ym[j]);
                noise += Math.abs(dy[j]) * Math.max(Math.abs(yp[j]), Math.abs(ym[j]));
            }
            fd /= 2 * h;
            double tol = 1e-6 * (1 + Math.abs(analytic[i])) + 64 * EPS64 * noise / h;
            if (!(Math.abs(fd - analytic[i]) <= tol)) {
                fail("reference backward of " + op + " " + shape + " disagrees with finite differences at index " + i
                        + ": analytic " + analytic[i] + ", finite difference " + fd + " (|diff| "
                        + Tolerance.fmt(Math.abs(fd - analytic[i])) + " > tol " + Tolerance.fmt(tol) + ")");
            }
        }
    }
}
