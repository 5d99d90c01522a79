package dev.kiln.cpu;

import dev.kiln.backend.Activation;
import dev.kiln.backend.BatchNormGeometry;
import dev.kiln.backend.BinaryOp;
import dev.kiln.backend.Buffer;
import dev.kiln.backend.ConvGeometry;
import dev.kiln.backend.PoolGeometry;
import dev.kiln.backend.SgdHyper;
import dev.kiln.backend.AdamHyper;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The backend's kernels against naive double-precision references. */
class CpuKernelsTest {

    private final CpuBackend be = new CpuBackend(2);
    private final Random rnd = new Random(7);

    @AfterEach
    void close() {
        be.close();
    }

    private float[] random(int n) {
        return SgemmTest.random(rnd, n);
    }

    private Buffer up(float[] a) {
        return be.upload(a, 0, a.length);
    }

    private float[] down(Buffer b) {
        float[] a = new float[(int) b.length()];
        be.download(b, 0, a, 0, a.length);
        return a;
    }

    private static void close(float[] expect, float[] got, double tol, String what) {
        assertEquals(expect.length, got.length, what + " length");
        for (int i = 0; i < expect.length; i++) {
            assertEquals(expect[i], got[i], tol * (1 + Math.abs(expect[i])), what + " at " + i);
        }
    }

    // ---------------------------------------------------------------- convolution

    private static float[] directConv(ConvGeometry g, float[] x, float[] w, float[] bias) {
        int oh = g.outH(), ow = g.outW();
        float[] y = new float[(int) g.outputLength()];
        for (int n = 0; n < g.n(); n++)
            for (int o = 0; o < g.outChannels(); o++)
                for (int i = 0; i < oh; i++)
                    for (int j = 0; j < ow; j++) {
                        double s = bias == null ? 0 : bias[o];
                        for (int c = 0; c < g.inChannels(); c++)
                            for (int ky = 0; ky < g.kernelH(); ky++)
                                for (int kx = 0; kx < g.kernelW(); kx++) {
                                    int yy = i * g.strideH() - g.padH() + ky * g.dilationH();
                                    int xx = j * g.strideW() - g.padW() + kx * g.dilationW();
                                    if (yy < 0 || yy >= g.inH() || xx < 0 || xx >= g.inW()) continue;
                                    s += (double) x[((n * g.inChannels() + c) * g.inH() + yy) * g.inW() + xx]
                                            * w[((o * g.inChannels() + c) * g.kernelH() + ky) * g.kernelW() + kx];
                                }
                        y[((n * g.outChannels() + o) * oh + i) * ow + j] = (float) s;
                    }
        return y;
    }

    /** dx and dw of sum(dy * conv(x, w)) by the same 7-loop scatter, in double. */
    private static float[][] directConvBackward(ConvGeometry g, float[] x, float[] w, float[] dy) {
        double[] dx = new double[x.length], dw = new double[w.length];
        int oh = g.outH(), ow = g.outW();
        for (int n = 0; n < g.n(); n++)
            for (int o = 0; o < g.outChannels(); o++)
                for (int i = 0; i < oh; i++)
                    for (int j = 0; j < ow; j++) {
                        double d = dy[((n * g.outChannels() + o) * oh + i) * ow + j];
                        for (int c = 0; c < g.inChannels(); c++)
                            for (int ky = 0; ky < g.kernelH(); ky++)
                                for (int kx = 0; kx < g.kernelW(); kx++) {
                                    int yy = i * g.strideH() - g.padH() + ky * g.dilationH();
                                    int xx = j * g.strideW() - g.padW() + kx * g.dilationW();
                                    if (yy < 0 || yy >= g.inH() || xx < 0 || xx >= g.inW()) continue;
                                    int xi = ((n * g.inChannels() + c) * g.inH() + yy) * g.inW() + xx;
                                    int wi = ((o * g.inChannels() + c) * g.kernelH() + ky) * g.kernelW() + kx;
                                    dx[xi] += d * w[wi];
                                    dw[wi] += d * x[xi];
                                }
                    }
        float[] fx = new float[dx.length], fw = new float[dw.length];
        for (int i = 0; i < dx.length; i++) fx[i] = (float) dx[i];
        for (int i = 0; i < dw.length; i++) fw[i] = (float) dw[i];
        return new float[][]{fx, fw};
    }

    @Test
    void convMatchesDirectLoops() {
        ConvGeometry[] gs = {
                new ConvGeometry(3, 1, 28, 28, 6, 5, 5, 1, 1, 2, 2, 1, 1),   // LeNet conv1
                new ConvGeometry(2, 6, 14, 14, 16, 5, 5, 1, 1, 0, 0, 1, 1),  // LeNet conv2
                new ConvGeometry(2, 3, 9, 11, 5, 3, 2, 2, 3, 1, 2, 2, 1),    // stride, padding, dilation
                new ConvGeometry(20, 4, 5, 5, 3, 1, 1, 1, 1, 0, 0, 1, 1),    // pointwise, more images than chunks
                new ConvGeometry(1, 2, 3, 3, 2, 3, 3, 1, 1, 1, 1, 1, 1),
        };
        for (ConvGeometry g : gs) {
            float[] x = random((int) g.inputLength()), w = random((int) g.weightLength());
            float[] bias = random(g.outChannels()), dy = random((int) g.outputLength());
            Buffer y = be.allocate(g.outputLength());
            be.conv2dForward(g, up(x), up(w), up(bias), y);
            close(directConv(g, x, w, bias), down(y), 1e-5, "forward " + g);
            be.conv2dForward(g, up(x), up(w), null, y);
            close(directConv(g, x, w, null), down(y), 1e-5, "forward no bias " + g);

            float[][] ref = directConvBackward(g, x, w, dy);
            Buffer dx = up(random(x.length)), dw = up(random(w.length)), db = be.allocate(g.outChannels());
            be.conv2dBackwardData(g, up(w), up(dy), dx);
            close(ref[0], down(dx), 1e-5, "backward data " + g);
            be.conv2dBackwardWeight(g, up(x), up(dy), dw);
            close(ref[1], down(dw), 1e-5, "backward weight " + g);
            be.conv2dBackwardBias(g, up(dy), db);
            float[] dbRef = new float[g.outChannels()];
            int ohw = g.outH() * g.outW();
            for (int o = 0; o < g.outChannels(); o++) {
                double s = 0;
                for (int n = 0; n < g.n(); n++) for (int j = 0; j < ohw; j++) s += dy[(n * g.outChannels() + o) * ohw + j];
                dbRef[o] = (float) s;
            }
            close(dbRef, down(db), 1e-6, "bias " + g);
        }
    }

    @Test
    void convBackwardWeightDoesNotDependOnThreadCount() {
        ConvGeometry g = new ConvGeometry(37, 3, 12, 12, 4, 3, 3, 1, 1, 1, 1, 1, 1);
        float[] x = random((int) g.inputLength()), dy = random((int) g.outputLength());
        try (CpuBackend one = new CpuBackend(1)) {
            Buffer dw1 = one.allocate(g.weightLength());
            one.conv2dBackwardWeight(g, one.upload(x, 0, x.length), one.upload(dy, 0, dy.length), dw1);
            Buffer dw2 = be.allocate(g.weightLength());
            be.conv2dBackwardWeight(g, up(x), up(dy), dw2);
            float[] a = new float[(int) g.weightLength()];
            one.download(dw1, 0, a, 0, a.length);
            assertArrayEquals(a, down(dw2));
        }
    }

    // ---------------------------------------------------------------- broadcasting

    private static int[] strides(int[] shape) {
        int[] s = new int[shape.length];
        int st = 1;
        for (int d = shape.length - 1; d >= 0; d--) {
            s[d] = shape[d] == 1 ? 0 : st;
            st *= shape[d];
        }
        return s;
    }

    private static int index(int flat, int[] outShape, int[] strides) {
        int off = 0;
        for (int d = outShape.length - 1; d >= 0; d--) {
            off += (flat % outShape[d]) * strides[d];
            flat /= outShape[d];
        }
        return off;
    }

    @Test
    void binaryBroadcastingMatchesNaive() {
        int[][][] cases = {
                {{4, 5}, {4, 5}, {4, 5}},
                {{4, 5}, {1, 5}, {4, 5}},          // row vector
                {{4, 5}, {4, 1}, {4, 5}},
                {{2, 3, 4, 5}, {1, 3, 1, 1}, {2, 3, 4, 5}},  // per channel
                {{1, 3, 1, 1}, {2, 3, 4, 5}, {2, 3, 4, 5}},
                {{2, 1, 4, 1}, {1, 3, 1, 5}, {2, 3, 4, 5}},  // outer product like
                {{1, 1}, {3, 7}, {3, 7}},
                {{1, 1}, {1, 1}, {1, 1}},
                {{3, 1, 2}, {3, 4, 1}, {3, 4, 2}},
        };
        for (BinaryOp op : BinaryOp.values()) {
            for (int[][] c : cases) {
                int[] as = c[0], bs = c[1], os = c[2];
                float[] a = random((int) BroadcastPlan.volume(as)), b = random((int) BroadcastPlan.volume(bs));
                Buffer out = be.allocate(BroadcastPlan.volume(os));
                be.binary(op, up(a), as, up(b), bs, out, os);
                float[] got = down(out);
                int[] sa = strides(as), sb = strides(bs);
                for (int i = 0; i < got.length; i++) {
                    float e = ElementwiseKernels.apply(op, a[index(i, os, sa)], b[index(i, os, sb)]);
                    assertEquals(e, got[i], op + " " + java.util.Arrays.deepToString(c) + " at " + i);
                }
            }
        }
        assertThrows(IllegalArgumentException.class, () -> be.binary(BinaryOp.ADD, be.allocate(6), new int[]{2, 3},
                be.allocate(2), new int[]{2}, be.allocate(6), new int[]{2, 3}));
    }

    @Test
    void sumToAndBroadcastToMatchNaive() {
        int[] xs = {2, 3, 4, 5};
        float[] x = random(120);
        for (int[] os : new int[][]{{1, 3, 1, 1}, {1, 1, 1, 5}, {2, 1, 4, 1}, {1, 1, 1, 1}, {2, 3, 4, 5}, {2, 3, 1, 5}}) {
            Buffer out = be.allocate(BroadcastPlan.volume(os));
            be.sumTo(up(x), xs, out, os);
            double[] ref = new double[(int) BroadcastPlan.volume(os)];
            int[] so = strides(os);
            for (int i = 0; i < x.length; i++) ref[index(i, xs, so)] += x[i];
            float[] got = down(out);
            for (int i = 0; i < ref.length; i++) assertEquals(ref[i], got[i], 1e-5, "sumTo " + java.util.Arrays.toString(os));

            float[] small = random(ref.length);
            Buffer big = be.allocate(120);
            be.broadcastTo(up(small), os, big, xs);
            float[] b = down(big);
            for (int i = 0; i < 120; i++) assertEquals(small[index(i, xs, so)], b[i]);
        }
    }

    // ---------------------------------------------------------------- batch norm, pooling, softmax

    @Test
    void batchNormTrainingMatchesDoubleReference() {
        BatchNormGeometry g = new BatchNormGeometry(5, 3, 7);
        float[] x = random((int) g.length());
        for (int i = 0; i < x.length; i++) x[i] = x[i] + 1000f; // large mean: the shifted pass must stay exact
        float[] gamma = random(3), beta = random(3), dy = random(x.length);
        Buffer y = be.allocate(x.length), mean = be.allocate(3), inv = be.allocate(3);
        be.batchNormForwardTraining(g, up(x), up(gamma), up(beta), 1e-5f, y, mean, inv);
        Buffer dx = be.allocate(x.length), dg = be.allocate(3), dbeta = be.allocate(3);
        be.batchNormBackward(g, up(x), up(dy), up(gamma), mean, inv, dx, dg, dbeta);
        float[] yy = down(y), mm = down(mean), ii = down(inv), dxx = down(dx), dgg = down(dg), dbb = down(dbeta);
        int m = 35;
        for (int c = 0; c < 3; c++) {
            double mu = 0, var = 0;
            for (int n = 0; n < 5; n++) for (int s = 0; s < 7; s++) mu += x[(n * 3 + c) * 7 + s];
            mu /= m;
            for (int n = 0; n < 5; n++) for (int s = 0; s < 7; s++) var += Math.pow(x[(n * 3 + c) * 7 + s] - mu, 2);
            var /= m;
            double is = 1 / Math.sqrt(var + 1e-5);
            assertEquals(mu, mm[c], 1e-4);
            assertEquals(is, ii[c], 1e-4 * is);
            double sdy = 0, sdyh = 0;
            for (int n = 0; n < 5; n++) for (int s = 0; s < 7; s++) {
                int i = (n * 3 + c) * 7 + s;
                double h = (x[i] - mu) * is;
                assertEquals(gamma[c] * h + beta[c], yy[i], 2e-3);
                sdy += dy[i];
                sdyh += dy[i] * h;
            }
            assertEquals(sdy, dbb[c], 1e-5);
            assertEquals(sdyh, dgg[c], 2e-3);
            for (int n = 0; n < 5; n++) for (int s = 0; s < 7; s++) {
                int i = (n * 3 + c) * 7 + s;
                double h = (x[i] - mu) * is;
                assertEquals(gamma[c] * is * (dy[i] - sdy / m - h * sdyh / m), dxx[i], 1e-3 * (1 + Math.abs(gamma[c] * is)));
            }
        }
        Buffer rm = up(new float[]{0, 0, 0}), rv = up(new float[]{1, 1, 1});
        be.batchNormUpdateRunningStats(g, mean, inv, 1e-5f, 0.1, rm, rv, null, null);
        float[] rvv = down(rv);
        double v0 = (1.0 / ((double) ii[0] * ii[0]) - 1e-5f) * 35.0 / 34.0;
        assertEquals((float) (0.9 + 0.1 * v0), rvv[0]);
    }

    @Test
    void maxPoolRoutesToFirstMaximumAndAccumulatesOverlaps() {
        PoolGeometry g = new PoolGeometry(1, 1, 3, 3, 2, 2, 1, 1, 0, 0);
        float[] x = {1, 5, 5, 5, 2, 0, 0, 0, 0};
        Buffer y = be.allocate(4), dx = be.allocate(9);
        be.maxPool2dForward(g, up(x), y);
        assertArrayEquals(new float[]{5, 5, 5, 2}, down(y));
        be.maxPool2dBackward(g, up(x), y, up(new float[]{1, 10, 100, 1000}), dx);
        assertArrayEquals(new float[]{0, 11, 0, 100, 1000, 0, 0, 0, 0}, down(dx));
    }

    @Test
    void avgPoolCountsPadding() {
        PoolGeometry g = new PoolGeometry(1, 1, 2, 2, 2, 2, 2, 2, 1, 1);
        Buffer y = be.allocate(4);
        be.avgPool2dForward(g, up(new float[]{4, 8, 12, 16}), y);
        assertArrayEquals(new float[]{1, 2, 3, 4}, down(y));
        Buffer dx = be.allocate(4);
        be.avgPool2dBackward(g, up(new float[]{4, 4, 4, 4}), dx);
        assertArrayEquals(new float[]{1, 1, 1, 1}, down(dx));
    }

    @Test
    void crossEntropyIsStableAndRejectsBadTargets() {
        float[] logits = {1000f, 0f, -1000f, 1f, 2f, 3f};
        Buffer probs = be.allocate(6), loss = be.allocate(1);
        be.softmaxCrossEntropyForward(2, 3, up(logits), up(new float[]{1, 2}), probs, loss);
        double l1 = 1000.0, l2 = Math.log(Math.exp(1 - 3) + Math.exp(2 - 3) + 1);
        assertEquals((l1 + l2) / 2, down(loss)[0], 1e-4);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> be.softmaxCrossEntropyForward(2, 3, up(logits), up(new float[]{1, 3}), probs, loss));
        assertTrue(e.getMessage().contains("row 1") && e.getMessage().contains("3.0"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> be.softmaxCrossEntropyForward(2, 3, up(logits), up(new float[]{0.5f, 1}), probs, loss));
        assertTrue(e.getMessage().contains("row 0"), e.getMessage());
        Buffer dl = be.allocate(6);
        be.softmaxCrossEntropyBackward(2, 3, probs, up(new float[]{1, 2}), up(new float[]{2f}), dl);
        float[] p = down(probs), d = down(dl);
        assertEquals((p[1] - 1f) * 1f, d[1], 1e-6);
        assertEquals(p[3], d[3], 1e-6);
    }

    @Test
    void argmaxTakesFirstMaximumAndNaN() {
        Buffer out = be.allocate(4);
        // outer 2, extent 3, inner 2
        be.argmax(up(new float[]{1, 7, 3, 7, 3, 2, 0, Float.NaN, 0, 9, Float.NaN, 1}), 2, 3, 2, out);
        assertArrayEquals(new float[]{1, 0, 2, 0}, down(out));
    }

    @Test
    void activationsAndOptimizers() {
        float[] x = {-2f, 0f, 3f};
        Buffer y = be.allocate(3);
        be.activationForward(Activation.SIGMOID, up(x), y, 3);
        assertEquals(1 / (1 + Math.exp(2)), down(y)[0], 1e-7);
        Buffer p = up(new float[]{1f}), buf = be.allocate(1);
        be.sgdStep(new SgdHyper(0.1f, 0.9f, 0f, false, 0.01f, true), p, up(new float[]{0.5f}), buf, 1);
        assertEquals(1f - 0.1f * (0.5f + 0.01f), down(p)[0], 1e-7);
        Buffer q = up(new float[]{1f}), m = be.allocate(1), v = be.allocate(1);
        be.adamStep(new AdamHyper(0.01f, 0.9f, 0.999f, 1e-8f, 0f, false, 1), q, up(new float[]{0.5f}), m, v, 1);
        assertEquals(1f - 0.01f, down(q)[0], 1e-6); // first step moves by lr * sign(g)
    }

    @Test
    void rejectsForeignClosedAndShortBuffers() {
        Buffer a = be.allocate(4), b = be.allocate(4);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> be.axpy(1f, a, b, 5));
        assertTrue(e.getMessage().contains("5") && e.getMessage().contains("4"), e.getMessage());
        try (CpuBackend other = new CpuBackend(1)) {
            assertThrows(IllegalArgumentException.class, () -> be.axpy(1f, other.allocate(4), b, 4));
        }
        a.close();
        assertTrue(a.isClosed());
        assertThrows(IllegalArgumentException.class, () -> be.axpy(1f, a, b, 4));
        a.close();
    }

    @Test
    void providerResolvesThreads() {
        CpuBackendProvider p = new CpuBackendProvider();
        assertEquals("cpu", p.name());
        assertEquals(0, p.priority());
        assertTrue(p.unavailableReason().isEmpty());
        try (CpuBackend b = (CpuBackend) p.create(Map.of("threads", "3"))) {
            assertEquals(3, b.threads());
            assertTrue(b.description().startsWith("cpu (3 threads, "), b.description());
        }
        assertThrows(IllegalArgumentException.class, () -> p.create(Map.of("threads", "zero")));
        assertTrue(java.util.ServiceLoader.load(dev.kiln.backend.BackendProvider.class).stream()
                .anyMatch(pr -> pr.type() == CpuBackendProvider.class));
    }
}
