package dev.kiln.cuda;

import dev.kiln.backend.Activation;
import dev.kiln.backend.AdaptivePoolGeometry;
import dev.kiln.backend.AdamHyper;
import dev.kiln.backend.Backend;
import dev.kiln.backend.BatchNormGeometry;
import dev.kiln.backend.Buffer;
import dev.kiln.backend.PoolGeometry;
import dev.kiln.backend.SgdHyper;
import dev.kiln.backend.UpsampleGeometry;
import dev.kiln.cpu.CpuBackendProvider;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static dev.kiln.cuda.HostKernelHarness.hex;
import static dev.kiln.cuda.HostKernelHarness.hexDouble;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The nn.cu kernels' own source, compiled for the host in the harness of the element-wise kernels and run as one
 * thread, against the CPU backend: batch-norm running statistics (with the guard), softmax cross-entropy forward and
 * backward, SGD (many tensors, every option), Adam and AdamW, max-pool backward, activations and the bias and
 * batch-norm-inference fusions, slice copies, adaptive average and max pooling and nearest upsampling. Bit for bit wherever both sides do the same float or double arithmetic; within the
 * stated tolerance where they cannot (the CPU backend's loss is summed in double and its sigmoid and tanh are
 * polynomial approximations, while the host build calls glibc, not CUDA's libdevice: those comparisons say nothing
 * about the GPU's transcendental functions). Skipped, saying so, where g++ is missing.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class HostNnKernelsTest {

    private static final float[] SPECIAL = {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, 0f, -0f,
            0.5f, -2f, 3f, 1e-30f, -7.25f, 6f, 6.5f, -1e-30f};
    private static final List<Activation> EXACT = List.of(Activation.IDENTITY, Activation.RELU, Activation.RELU6);

    private HostKernelHarness harness;
    private Backend cpu;
    private final Random random = new Random(22);

    @BeforeAll
    void build(@TempDir Path dir) throws Exception {
        harness = HostKernelHarness.start(dir);
        cpu = new CpuBackendProvider().create(Map.of());
    }

    @AfterAll
    void stop() throws IOException {
        if (harness != null) {
            harness.close();
        }
        if (cpu != null) {
            cpu.close();
        }
    }

    // ------------------------------------------------------------------------------------------ helpers

    private float[] values(int n, float scale) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) (random.nextGaussian() * scale);
        }
        return v;
    }

    private float[] positive(int n, float lo, float hi) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = lo + random.nextFloat() * (hi - lo);
        }
        return v;
    }

    private Buffer up(float[] v) {
        return cpu.upload(v, 0, v.length);
    }

    private float[] down(Buffer b, int n) {
        float[] v = new float[n];
        cpu.download(b, 0, v, 0, n);
        return v;
    }

    private static boolean same(float a, float b) {
        return Float.isNaN(a) ? Float.isNaN(b) : Float.floatToRawIntBits(a) == Float.floatToRawIntBits(b);
    }

    private static void assertSameBits(String what, float[] want, float[] got) {
        assertEquals(want.length, got.length, what + ": length");
        List<String> diffs = new ArrayList<>();
        for (int i = 0; i < want.length; i++) {
            if (!same(want[i], got[i])) {
                diffs.add("[" + i + "] cpu " + want[i] + ", kernel " + got[i]);
            }
        }
        assertTrue(diffs.isEmpty(), what + ": " + diffs);
    }

    /** Within {@code ulps} units in the last place of the CPU's value (NaN and infinities must agree exactly). */
    private static void assertWithinUlps(String what, float[] want, float[] got, int ulps) {
        assertEquals(want.length, got.length, what + ": length");
        List<String> diffs = new ArrayList<>();
        for (int i = 0; i < want.length; i++) {
            boolean ok = same(want[i], got[i]) || Float.isFinite(want[i]) && Float.isFinite(got[i])
                    && Math.abs(want[i] - got[i]) <= ulps * Math.ulp(want[i]);
            if (!ok) {
                diffs.add("[" + i + "] cpu " + want[i] + ", kernel " + got[i] + " ("
                        + Math.abs(want[i] - got[i]) / Math.ulp(want[i]) + " ulp)");
            }
        }
        assertTrue(diffs.isEmpty(), what + " (within " + ulps + " ulp): " + diffs);
    }

    private static float[] concat(float[]... parts) {
        int n = 0;
        for (float[] p : parts) {
            n += p.length;
        }
        float[] r = new float[n];
        int at = 0;
        for (float[] p : parts) {
            System.arraycopy(p, 0, r, at, p.length);
            at += p.length;
        }
        return r;
    }

    // ------------------------------------------------------------------------------------------ batch norm

    @Test
    @DisplayName("running statistics: PyTorch's update bit for bit; a non-finite guard leaves them and counts a skip")
    void runningStatistics() throws IOException {
        int c = 6;
        BatchNormGeometry g = new BatchNormGeometry(4, c, 3);
        long m = g.valuesPerChannel();
        float eps = 1e-5f;
        for (double factor : new double[]{0.1, 1.0 / 3, 1.0}) {
            for (float guard : new float[]{Float.NaN, 2.5f, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY}) {
                float[] mean = values(c, 2f);
                float[] invStd = positive(c, 0.05f, 20f);
                float[] rm = values(c, 1f);
                float[] rv = positive(c, 0.1f, 3f);
                float skipped0 = 3f;
                String[] t = harness.tokens("bnstats " + c + hex(eps) + hexDouble(factor)
                        + hexDouble((double) m / (m - 1)) + " 1" + hex(guard) + " 1" + hex(skipped0)
                        + hex(mean) + hex(invStd) + hex(rm) + hex(rv));
                float[] got = HostKernelHarness.floats(t, 0, -1);
                try (Buffer bm = up(mean); Buffer bi = up(invStd); Buffer brm = up(rm); Buffer brv = up(rv);
                     Buffer bg = up(new float[]{guard}); Buffer bs = up(new float[]{skipped0})) {
                    cpu.batchNormUpdateRunningStats(g, bm, bi, eps, factor, brm, brv, bg, bs);
                    float[] want = concat(down(brm, c), down(brv, c), down(bs, 1));
                    assertSameBits("running stats, factor " + factor + ", guard " + guard, want, got);
                    if (!Float.isFinite(guard)) {
                        assertSameBits("unchanged when skipped", concat(rm, rv, new float[]{skipped0 + 1}), got);
                    }
                }
            }
        }
        // no guard, no counter
        float[] mean = values(c, 1f);
        float[] invStd = positive(c, 0.5f, 2f);
        float[] rm = values(c, 1f);
        float[] rv = positive(c, 0.5f, 2f);
        float[] got = harness.ask("bnstats " + c + hex(eps) + hexDouble(0.1) + hexDouble((double) m / (m - 1))
                + " 0" + hex(0f) + " 0" + hex(0f) + hex(mean) + hex(invStd) + hex(rm) + hex(rv));
        try (Buffer bm = up(mean); Buffer bi = up(invStd); Buffer brm = up(rm); Buffer brv = up(rv)) {
            cpu.batchNormUpdateRunningStats(g, bm, bi, eps, 0.1, brm, brv, null, null);
            assertSameBits("running stats without a guard", concat(down(brm, c), down(brv, c)),
                    Arrays.copyOf(got, 2 * c));
        }
    }

    @Test
    @DisplayName("batch-norm inference + activation: the CPU backend's float64 scale and float arithmetic, bit for bit")
    void batchNormInference() throws IOException {
        int n = 3;
        int c = 4;
        int sp = 5;
        int total = n * c * sp;
        BatchNormGeometry g = new BatchNormGeometry(n, c, sp);
        for (Activation a : EXACT) {
            for (int affine = 0; affine < 2; affine++) {
                float[] x = values(total, 3f);
                x[0] = Float.NaN;
                x[1] = Float.NEGATIVE_INFINITY;
                float[] gamma = values(c, 1f);
                float[] beta = values(c, 1f);
                float[] mean = values(c, 1f);
                float[] var = positive(c, 0.01f, 4f);
                float eps = 1e-5f;
                boolean aff = affine == 1;
                float[] got = harness.ask("bninf " + a.code() + " " + total + " " + c + " " + sp + hex(eps) + " "
                        + affine + " " + affine + (aff ? hex(gamma) + hex(beta) : "") + hex(mean) + hex(var) + hex(x));
                try (Buffer bx = up(x); Buffer bg = up(gamma); Buffer bb = up(beta); Buffer bm = up(mean);
                     Buffer bv = up(var); Buffer by = cpu.allocate(total)) {
                    cpu.batchNormForwardInference(g, a, bx, aff ? bg : null, aff ? bb : null, bm, bv, eps, by);
                    assertSameBits("bn inference " + a + (aff ? " affine" : ""), down(by, total), got);
                }
            }
        }
    }

    // ------------------------------------------------------------------------------------------ loss

    @Test
    @DisplayName("softmax cross-entropy: probabilities within 4 ulp plus the float rounding of x - max, loss within 4 ulp;"
            + " a bad target raises its row")
    void crossEntropy() throws IOException {
        int rows = 9;
        int classes = 10;
        float[] logits = values(rows * classes, 4f);
        logits[5] = 80f;   // a large logit: the max shift must keep exp finite
        logits[17] = -90f;
        float[] targets = new float[rows];
        for (int r = 0; r < rows; r++) {
            targets[r] = random.nextInt(classes);
        }
        String[] t = harness.tokens("xent " + rows + " " + classes + hex(logits) + hex(targets));
        int np = rows * classes;
        float[] probs = HostKernelHarness.floats(t, 0, np);
        float[] loss = HostKernelHarness.floats(t, np + rows, np + rows + 1);
        assertEquals("0", t[t.length - 1], "no error flag for valid targets");
        try (Buffer bl = up(logits); Buffer bt = up(targets); Buffer bp = cpu.allocate(np); Buffer bloss = cpu.allocate(1)) {
            cpu.softmaxCrossEntropyForward(rows, classes, bl, bt, bp, bloss);
            float[] want = down(bp, np);
            List<String> diffs = new ArrayList<>();
            for (int i = 0; i < np; i++) {
                float max = Float.NEGATIVE_INFINITY;
                for (int j = i / classes * classes; j < (i / classes + 1) * classes; j++) {
                    max = Math.max(max, logits[j]);
                }
                // the kernel forms x - max in float: its rounding (half an ulp of the difference) moves exp by that
                // much relative error, on top of a few ulp of exp and the normalisation
                double allowed = 4 * Math.ulp(want[i]) + want[i] * (double) Math.ulp(logits[i] - max);
                if (!(Math.abs(want[i] - probs[i]) <= allowed)) {
                    diffs.add("[" + i + "] cpu " + want[i] + ", kernel " + probs[i]);
                }
            }
            assertTrue(diffs.isEmpty(), "probabilities: " + diffs);
            assertWithinUlps("mean loss", down(bloss, 1), loss, 4);
        }

        for (float bad : new float[]{classes, -1f, 1.5f, Float.NaN}) {
            float[] wrong = targets.clone();
            wrong[6] = bad;
            String[] w = harness.tokens("xent " + rows + " " + classes + hex(logits) + hex(wrong));
            assertEquals("7", w[w.length - 1], "target " + bad + " of row 6 raises the flag as row + 1");
            try (Buffer bl = up(logits); Buffer bt = up(wrong); Buffer bp = cpu.allocate(np); Buffer bloss = cpu.allocate(1)) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                        () -> cpu.softmaxCrossEntropyForward(rows, classes, bl, bt, bp, bloss));
                assertTrue(e.getMessage().contains("row 6"), e.getMessage());
            }
        }
    }

    @Test
    @DisplayName("softmax cross-entropy backward: bit for bit")
    void crossEntropyBackward() throws IOException {
        int rows = 7;
        int classes = 5;
        float[] probs = positive(rows * classes, 0f, 1f);
        float[] targets = new float[rows];
        for (int r = 0; r < rows; r++) {
            targets[r] = random.nextInt(classes);
        }
        for (float dLoss : new float[]{1f, 0.37f, -2f}) {
            float[] got = harness.ask("xentback " + rows + " " + classes + hex(probs) + hex(targets) + hex(dLoss));
            try (Buffer bp = up(probs); Buffer bt = up(targets); Buffer bd = up(new float[]{dLoss});
                 Buffer bg = cpu.allocate(rows * classes)) {
                cpu.softmaxCrossEntropyBackward(rows, classes, bp, bt, bd, bg);
                assertSameBits("cross-entropy backward, dLoss " + dLoss, down(bg, rows * classes), got);
            }
        }
    }

    // ------------------------------------------------------------------------------------------ optimizers

    @Test
    @DisplayName("SGD over several tensors: momentum, dampening, Nesterov, weight decay, first step, device rate, guard")
    void sgd() throws IOException {
        int[] lengths = {5, 1, 300};
        for (float momentum : new float[]{0f, 0.9f}) {
            for (boolean nesterov : momentum == 0f ? new boolean[]{false} : new boolean[]{false, true}) {
                for (boolean first : new boolean[]{true, false}) {
                    for (float guard : new float[]{0.5f, Float.NaN}) {
                        for (boolean deviceRate : new boolean[]{false, true}) {
                            float lr = 0.05f;
                            float lrDevice = 0.0125f;
                            float dampening = nesterov ? 0f : 0.1f;
                            float wd = 1e-3f;
                            sgdCase(lengths, new SgdHyper(lr, momentum, dampening, nesterov, wd, first), guard,
                                    deviceRate ? lrDevice : Float.NaN);
                        }
                    }
                }
            }
        }
    }

    private void sgdCase(int[] lengths, SgdHyper h, float guard, float lrDevice) throws IOException {
        int k = lengths.length;
        boolean momentum = h.momentum() != 0f;
        boolean deviceRate = !Float.isNaN(lrDevice);
        float[][] p = new float[k][];
        float[][] g = new float[k][];
        float[][] b = new float[k][];
        StringBuilder req = new StringBuilder("sgd " + k + hex(h.lr()) + (deviceRate ? " 1" : " 0")
                + hex(deviceRate ? lrDevice : 0f) + hex(h.momentum()) + hex(1f - h.dampening()) + " "
                + (h.nesterov() ? 1 : 0) + hex(h.weightDecay()) + " " + (h.firstStep() ? 1 : 0) + " 1" + hex(guard)
                + " 1" + hex(2f) + " 1");
        for (int i = 0; i < k; i++) {
            p[i] = values(lengths[i], 1f);
            g[i] = values(lengths[i], 0.1f);
            b[i] = values(lengths[i], 0.1f);
            req.append(' ').append(lengths[i]).append(hex(p[i])).append(hex(g[i])).append(momentum ? " 1" : " 0")
                    .append(momentum ? hex(b[i]) : "");
        }
        float[] got = harness.ask(req.toString());
        Buffer[] bp = new Buffer[k];
        Buffer[] bg = new Buffer[k];
        Buffer[] bb = new Buffer[k];
        long[] n = new long[k];
        List<float[]> want = new ArrayList<>();
        try (Buffer bguard = up(new float[]{guard}); Buffer bskip = up(new float[]{2f});
             Buffer blr = up(new float[]{deviceRate ? lrDevice : 0f})) {
            for (int i = 0; i < k; i++) {
                bp[i] = up(p[i]);
                bg[i] = up(g[i]);
                bb[i] = momentum ? up(b[i]) : null;
                n[i] = lengths[i];
            }
            cpu.sgdStepMany(h, deviceRate ? blr : null, bguard, bskip, bp, bg, momentum ? bb : null, n);
            for (int i = 0; i < k; i++) {
                want.add(down(bp[i], lengths[i]));
            }
            for (int i = 0; i < k; i++) {
                if (momentum) {
                    want.add(down(bb[i], lengths[i]));
                }
            }
            want.add(down(bskip, 1));
        } finally {
            for (int i = 0; i < k; i++) {
                bp[i].close();
                bg[i].close();
                if (bb[i] != null) {
                    bb[i].close();
                }
            }
        }
        assertSameBits("sgd " + h + " guard " + guard + " device rate " + lrDevice, concat(want.toArray(float[][]::new)),
                got);
    }

    @Test
    @DisplayName("Adam and AdamW, with and without weight decay, at steps 1 and 10: bit for bit")
    void adam() throws IOException {
        int n = 257;
        for (boolean decoupled : new boolean[]{false, true}) {
            for (float wd : new float[]{0f, 0.01f}) {
                for (long step : new long[]{1, 10}) {
                    AdamHyper h = new AdamHyper(1e-3f, 0.9f, 0.999f, 1e-8f, wd, decoupled, step);
                    float[] p = values(n, 1f);
                    float[] g = values(n, 0.1f);
                    float[] m = values(n, 0.01f);
                    float[] v = positive(n, 0f, 1e-3f);
                    double bc1 = 1.0 - Math.pow(h.beta1(), h.step());
                    double bc2 = 1.0 - Math.pow(h.beta2(), h.step());
                    // the host-side constants exactly as CudaBackend.adamStep prepares them
                    float stepSize = (float) (h.lr() / bc1);
                    float bc2Sqrt = (float) Math.sqrt(bc2);
                    float decay = (float) (1.0 - (double) h.lr() * h.weightDecay());
                    float[] got = harness.ask("adam" + hex(h.beta1(), h.beta2(), h.eps(), wd) + " " + (decoupled ? 1 : 0)
                            + hex(decay, stepSize, bc2Sqrt) + " " + n + hex(p) + hex(g) + hex(m) + hex(v));
                    try (Buffer bp = up(p); Buffer bg = up(g); Buffer bm = up(m); Buffer bv = up(v)) {
                        cpu.adamStep(h, bp, bg, bm, bv, n);
                        assertSameBits("adam " + h, concat(down(bp, n), down(bm, n), down(bv, n)), got);
                    }
                }
            }
        }
    }

    // ------------------------------------------------------------------------------------------ pooling

    @Test
    @DisplayName("max-pool backward: dy to the first maximal position, ties, NaN, overlap and padding, bit for bit")
    void maxPoolBackward() throws IOException {
        int[][] shapes = {{2, 3, 7, 6, 3, 3, 2, 2, 1, 1}, {1, 2, 5, 5, 2, 2, 2, 2, 0, 0}, {1, 1, 6, 4, 3, 2, 1, 1, 1, 0}};
        for (int[] s : shapes) {
            PoolGeometry g = new PoolGeometry(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[8], s[9]);
            int in = (int) g.inputLength();
            int out = (int) g.outputLength();
            float[] x = new float[in];
            for (int i = 0; i < in; i++) {
                x[i] = random.nextInt(4); // few distinct values: many ties
            }
            x[3] = Float.NaN;
            float[] dy = values(out, 1f);
            float[] y;
            try (Buffer bx = up(x); Buffer by = cpu.allocate(out)) {
                cpu.maxPool2dForward(g, bx, by);
                y = down(by, out);
            }
            float[] got = harness.ask("maxpoolback " + g.n() + " " + g.channels() + " " + g.inH() + " " + g.inW() + " "
                    + g.outH() + " " + g.outW() + " " + g.kernelH() + " " + g.kernelW() + " " + g.strideH() + " "
                    + g.strideW() + " " + g.padH() + " " + g.padW() + hex(x) + hex(y) + hex(dy));
            try (Buffer bx = up(x); Buffer by = up(y); Buffer bdy = up(dy); Buffer bdx = cpu.allocate(in)) {
                cpu.maxPool2dBackward(g, bx, by, bdy, bdx);
                assertSameBits("max-pool backward " + g, down(bdx, in), got);
            }
        }
    }

    // ------------------------------------------------------------------------------------------ shapes

    @Test
    @DisplayName("copy slice: narrow and cat placements, the rest of dst kept, bit for bit")
    void copySlice() throws IOException {
        int[][] cases = {{3, 5, 1, 4, 2, 2, 6}, {1, 4, 0, 4, 0, 4, 3}, {2, 3, 2, 7, 6, 1, 1}, {4, 2, 0, 5, 3, 2, 5}};
        for (int[] c : cases) {
            int outer = c[0], srcExtent = c[1], srcStart = c[2], dstExtent = c[3], dstStart = c[4], length = c[5], inner = c[6];
            float[] src = values(outer * srcExtent * inner, 1f);
            float[] dst = values(outer * dstExtent * inner, 1f);
            float[] got = harness.ask("copyslice " + outer + " " + srcExtent + " " + srcStart + " " + dstExtent + " "
                    + dstStart + " " + length + " " + inner + hex(src) + hex(dst));
            try (Buffer bs = up(src); Buffer bd = up(dst)) {
                cpu.copySlice(bs, outer, srcExtent, srcStart, bd, dstExtent, dstStart, length, inner);
                assertSameBits("copySlice " + Arrays.toString(c), down(bd, dst.length), got);
            }
        }
    }

    private static final AdaptivePoolGeometry[] ADAPTIVE = {
        new AdaptivePoolGeometry(2, 3, 7, 6, 3, 4), new AdaptivePoolGeometry(1, 2, 5, 5, 1, 1),
        new AdaptivePoolGeometry(1, 1, 3, 4, 5, 7), new AdaptivePoolGeometry(2, 2, 10, 9, 4, 2)};

    private static String adaptive(int kind, AdaptivePoolGeometry g) {
        return "adaptive " + kind + " " + g.n() * g.channels() + " " + g.inH() + " " + g.inW() + " " + g.outH() + " " + g.outW();
    }

    @Test
    @DisplayName("adaptive average pooling forward and backward: overlapping, unequal and empty-free windows, bit for bit")
    void adaptiveAvgPool() throws IOException {
        for (AdaptivePoolGeometry g : ADAPTIVE) {
            int in = (int) g.inputLength(), out = (int) g.outputLength();
            float[] x = values(in, 1f);
            float[] dy = values(out, 1f);
            float[] y = harness.ask(adaptive(0, g) + hex(x));
            float[] dx = harness.ask(adaptive(1, g) + hex(dy));
            try (Buffer bx = up(x); Buffer by = cpu.allocate(out); Buffer bdy = up(dy); Buffer bdx = cpu.allocate(in)) {
                cpu.adaptiveAvgPool2dForward(g, bx, by);
                cpu.adaptiveAvgPool2dBackward(g, bdy, bdx);
                assertSameBits("adaptive avg forward " + g, down(by, out), y);
                assertSameBits("adaptive avg backward " + g, down(bdx, in), dx);
            }
        }
    }

    @Test
    @DisplayName("adaptive max pooling forward (values and indices; ties, NaN, -inf) and backward, bit for bit")
    void adaptiveMaxPool() throws IOException {
        for (AdaptivePoolGeometry g : ADAPTIVE) {
            int in = (int) g.inputLength(), out = (int) g.outputLength();
            float[] x = new float[in];
            for (int i = 0; i < in; i++) {
                x[i] = random.nextInt(3); // few distinct values: many ties
            }
            x[in / 2] = Float.NaN;
            x[in - 1] = Float.NEGATIVE_INFINITY;
            float[] dy = values(out, 1f);
            String[] t = harness.tokens(adaptive(2, g) + hex(x));
            float[] y = HostKernelHarness.floats(t, 0, out);
            float[] idx = HostKernelHarness.floats(t, out, -1);
            try (Buffer bx = up(x); Buffer by = cpu.allocate(out); Buffer bi = cpu.allocate(out); Buffer bdy = up(dy);
                 Buffer bdx = cpu.allocate(in)) {
                cpu.adaptiveMaxPool2dForward(g, bx, by, bi);
                assertSameBits("adaptive max forward " + g, down(by, out), y);
                float[] cpuIdx = down(bi, out);
                assertSameBits("adaptive max indices " + g, cpuIdx, idx);
                float[] dx = harness.ask(adaptive(3, g) + hex(cpuIdx) + hex(dy));
                cpu.adaptiveMaxPool2dBackward(g, bi, bdy, bdx);
                assertSameBits("adaptive max backward " + g, down(bdx, in), dx);
            }
        }
    }

    @Test
    @DisplayName("nearest upsampling forward and backward by integer factors, bit for bit")
    void upsampleNearest() throws IOException {
        UpsampleGeometry[] cases = {new UpsampleGeometry(2, 3, 4, 5, 2, 2), new UpsampleGeometry(1, 2, 3, 3, 3, 1),
            new UpsampleGeometry(1, 1, 2, 3, 1, 4)};
        for (UpsampleGeometry g : cases) {
            int in = (int) g.inputLength(), out = (int) g.outputLength();
            float[] x = values(in, 1f);
            float[] dy = values(out, 1f);
            String head = " " + g.n() * g.channels() + " " + g.inH() + " " + g.inW() + " " + g.scaleH() + " " + g.scaleW();
            float[] y = harness.ask("upsample 0" + head + hex(x));
            float[] dx = harness.ask("upsample 1" + head + hex(dy));
            try (Buffer bx = up(x); Buffer by = cpu.allocate(out); Buffer bdy = up(dy); Buffer bdx = cpu.allocate(in)) {
                cpu.upsampleNearest2dForward(g, bx, by);
                cpu.upsampleNearest2dBackward(g, bdy, bdx);
                assertSameBits("upsample forward " + g, down(by, out), y);
                assertSameBits("upsample backward " + g, down(bdx, in), dx);
            }
        }
    }

    // ------------------------------------------------------------------------------------------ activations

    @Test
    @DisplayName("activations: identity, ReLU, ReLU6 bit for bit on special values; sigmoid and tanh within 8 ulp")
    void activations() throws IOException {
        float[] x = concat(SPECIAL, values(200, 6f));
        int n = x.length;
        for (Activation a : Activation.values()) {
            float[] got = harness.ask("act " + a.code() + " " + n + hex(x));
            try (Buffer bx = up(x); Buffer by = cpu.allocate(n)) {
                cpu.activationForward(a, bx, by, n);
                float[] want = down(by, n);
                if (EXACT.contains(a)) {
                    assertSameBits("activation " + a, want, got);
                } else {
                    assertWithinUlps("activation " + a, want, got, 8);
                }
            }
        }
    }

    @Test
    @DisplayName("activation backward from the forward output: bit for bit for every activation")
    void activationBackward() throws IOException {
        float[] x = concat(SPECIAL, values(100, 6f));
        int n = x.length;
        float[] dy = values(n, 1f);
        for (Activation a : Activation.values()) {
            float[] y;
            try (Buffer bx = up(x); Buffer by = cpu.allocate(n)) {
                cpu.activationForward(a, bx, by, n);
                y = down(by, n);
            }
            float[] got = harness.ask("actback " + a.code() + " " + n + hex(x) + hex(y) + hex(dy));
            try (Buffer bx = up(x); Buffer by = up(y); Buffer bdy = up(dy); Buffer bdx = cpu.allocate(n)) {
                cpu.activationBackward(a, bx, by, bdy, bdx, n);
                assertSameBits("activation backward " + a, down(bdx, n), got);
            }
        }
    }

    @Test
    @DisplayName("bias + activation over (outer, channels, inner): exact activations bit for bit, others within 8 ulp")
    void biasActivation() throws IOException {
        int outer = 3;
        int channels = 4;
        int inner = 5;
        int n = outer * channels * inner;
        float[] x = values(n, 4f);
        x[2] = Float.NaN;
        float[] bias = values(channels, 1f);
        for (Activation a : Activation.values()) {
            float[] got = harness.ask("biasact " + a.code() + " " + n + " " + channels + " " + inner + hex(x) + hex(bias));
            try (Buffer bx = up(x); Buffer bb = up(bias); Buffer by = cpu.allocate(n)) {
                cpu.biasActivation(a, outer, channels, inner, bx, bb, by);
                float[] want = down(by, n);
                if (EXACT.contains(a)) {
                    assertSameBits("bias + " + a, want, got);
                } else {
                    assertWithinUlps("bias + " + a, want, got, 8);
                }
            }
        }
    }
}
