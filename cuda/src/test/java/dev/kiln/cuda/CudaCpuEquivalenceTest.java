package dev.kiln.cuda;

import dev.kiln.backend.Activation;
import dev.kiln.backend.AdamHyper;
import dev.kiln.backend.Backend;
import dev.kiln.backend.BatchNormGeometry;
import dev.kiln.backend.BinaryOp;
import dev.kiln.backend.Buffer;
import dev.kiln.backend.ConvGeometry;
import dev.kiln.backend.PoolGeometry;
import dev.kiln.backend.ScalarOp;
import dev.kiln.backend.SgdHyper;
import dev.kiln.backend.UnaryOp;
import dev.kiln.core.Device;
import dev.kiln.core.Generator;
import dev.kiln.core.Tensor;
import dev.kiln.core.TensorScope;
import dev.kiln.models.LeNet5;
import dev.kiln.nn.BatchNorm;
import dev.kiln.nn.BatchNorm1d;
import dev.kiln.nn.BatchNorm2d;
import dev.kiln.nn.CrossEntropyLoss;
import dev.kiln.optim.SGD;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The same inputs through the CPU backend and the CUDA backend (TF32 off), op by op forward and backward, then batch
 * norm in every mode, a whole LeNet-5 training step and 100 steps. Tolerances, |cuda - cpu| <= atol + rtol*|cpu|:
 * <ul>
 *   <li>EXACT (0, 0): data movement, fill, gather, argmax, sumTo of small integers, SGD/Adam element math
 *       (both sides float32 without FMA contraction: the PTX is built with -fmad=false);</li>
 *   <li>ELEMENTWISE (1e-6, 1e-6): transcendental element-wise ops (CUDA libm vs java.lang.Math, within 2 ulp);</li>
 *   <li>REDUCTION (1e-5, 1e-5): sums, GEMM, convolution, softmax, loss (different summation orders);</li>
 *   <li>BATCH_NORM (1e-4, 1e-5): batch norm (cuDNN's variance algorithm vs the CPU's two-pass);</li>
 *   <li>LENET step (1e-4, 1e-5), and 1e-3 / 1e-4 after 100 steps (differences compound through training).</li>
 * </ul>
 */
class CudaCpuEquivalenceTest {

    private static final double[] EXACT = {0, 0};
    private static final double[] ELEMENTWISE = {1e-6, 1e-6};
    private static final double[] REDUCTION = {1e-5, 1e-5};
    private static final double[] BATCH_NORM = {1e-4, 1e-5};

    private Backend cpu;
    private Backend gpu;
    private final Random random = new Random(42);

    @BeforeEach
    void backends() {
        CudaTestSupport.requireCuda();
        gpu = CudaTestSupport.cuda().backend();
        cpu = CudaTestSupport.cpu().backend();
        assertTrue(gpu instanceof CudaBackend cb && !cb.options().tf32(), "TF32 must be off for equivalence");
    }

    // ------------------------------------------------------------------ harness

    private float[] randn(int n, float scale) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) random.nextGaussian() * scale;
        }
        return a;
    }

    private float[] uniform(int n, float lo, float hi) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = lo + (hi - lo) * random.nextFloat();
        }
        return a;
    }

    private interface Op {
        void run(Backend be, Buffer[] in, Buffer[] out);
    }

    /** Runs {@code op} on both backends with the same inputs and outputs pre-filled with {@code outInit}. */
    private void same(String what, double[] tol, float[][] inputs, float[][] outInit, Op op) {
        List<float[]> c = runOn(cpu, inputs, outInit, op);
        List<float[]> g = runOn(gpu, inputs, outInit, op);
        for (int i = 0; i < c.size(); i++) {
            assertClose(c.get(i), g.get(i), tol, what + " output " + i);
        }
    }

    private static List<float[]> runOn(Backend be, float[][] inputs, float[][] outInit, Op op) {
        Buffer[] in = new Buffer[inputs.length];
        Buffer[] out = new Buffer[outInit.length];
        try {
            for (int i = 0; i < in.length; i++) {
                in[i] = be.upload(inputs[i], 0, inputs[i].length);
            }
            for (int i = 0; i < out.length; i++) {
                out[i] = be.upload(outInit[i], 0, outInit[i].length);
            }
            op.run(be, in, out);
            List<float[]> res = new ArrayList<>();
            for (Buffer b : out) {
                float[] a = new float[(int) b.length()];
                be.download(b, 0, a, 0, a.length);
                res.add(a);
            }
            // inputs the op may modify in place (optimizers) are compared too
            for (Buffer b : in) {
                float[] a = new float[(int) b.length()];
                be.download(b, 0, a, 0, a.length);
                res.add(a);
            }
            return res;
        } finally {
            for (Buffer b : in) {
                if (b != null) {
                    b.close();
                }
            }
            for (Buffer b : out) {
                if (b != null) {
                    b.close();
                }
            }
        }
    }

    static void assertClose(float[] want, float[] got, double[] tol, String what) {
        assertEquals(want.length, got.length, what + ": length");
        for (int i = 0; i < want.length; i++) {
            if (Float.isNaN(want[i]) && Float.isNaN(got[i])) {
                continue;
            }
            double err = Math.abs((double) got[i] - want[i]);
            double bound = tol[1] + tol[0] * Math.abs(want[i]);
            if (!(err <= bound)) {
                fail(what + ": index " + i + ": cuda " + got[i] + ", cpu " + want[i] + " (|err| " + err + " > " + bound
                        + ", rtol " + tol[0] + ", atol " + tol[1] + ")");
            }
        }
    }

    private static float[] zeros(int n) {
        return new float[n];
    }

    private static float[] nan(int n) {
        float[] a = new float[n];
        java.util.Arrays.fill(a, Float.NaN);
        return a;
    }

    // ------------------------------------------------------------------ ops

    @Test
    @DisplayName("memory: upload/download/write/copy/fill/gatherRows are exact")
    void memory() {
        float[] x = randn(1000, 1);
        same("copy+fill+write", EXACT, new float[][]{x}, new float[][]{nan(1000)}, (be, in, out) -> {
            be.copy(in[0], 10, out[0], 0, 900);
            be.fill(out[0], 900, 50, 3.5f);
            be.write(new float[]{1, 2, 3}, 0, out[0], 990, 3);
        });
        same("gatherRows", EXACT, new float[][]{x}, new float[][]{nan(5 * 100)},
                (be, in, out) -> be.gatherRows(in[0], 100, new int[]{9, 0, 3, 3, 7}, out[0]));
    }

    @Test
    @DisplayName("unary ops (every UnaryOp) and scalar ops (every ScalarOp)")
    void unaryAndScalar() {
        float[] pos = uniform(4096, 0.01f, 5f);
        float[] any = randn(4096, 2);
        for (UnaryOp op : UnaryOp.values()) {
            float[] x = op == UnaryOp.LOG || op == UnaryOp.SQRT ? pos : any;
            same("unary " + op, op == UnaryOp.EXP || op == UnaryOp.LOG ? ELEMENTWISE : EXACT, new float[][]{x},
                    new float[][]{nan(4096)}, (be, in, out) -> be.unary(op, in[0], out[0], 4096));
        }
        for (ScalarOp op : ScalarOp.values()) {
            float s = op == ScalarOp.POW ? 3f : 0.7f;
            float[] x = op == ScalarOp.POW || op == ScalarOp.RDIV ? pos : any;
            same("scalar " + op, op == ScalarOp.POW ? ELEMENTWISE : EXACT, new float[][]{x}, new float[][]{nan(4096)},
                    (be, in, out) -> be.scalar(op, in[0], s, out[0], 4096));
        }
    }

    @Test
    @DisplayName("broadcasting binary ops, axpy, sumTo, broadcastTo, argmax")
    void broadcasting() {
        int[] out = {4, 3, 5};
        int[][][] cases = {{{4, 3, 5}, {4, 3, 5}}, {{4, 1, 5}, {1, 3, 1}}, {{1, 1, 1}, {4, 3, 5}}, {{4, 3, 1}, {1, 1, 5}}};
        for (BinaryOp op : BinaryOp.values()) {
            for (int[][] c : cases) {
                float[] a = randn(numel(c[0]), 1);
                float[] b = op == BinaryOp.DIV ? uniform(numel(c[1]), 0.5f, 2f) : randn(numel(c[1]), 1);
                same("binary " + op + " " + java.util.Arrays.toString(c[0]) + java.util.Arrays.toString(c[1]), EXACT,
                        new float[][]{a, b}, new float[][]{nan(60)},
                        (be, in, o) -> be.binary(op, in[0], c[0], in[1], c[1], o[0], out));
            }
        }
        float[] y0 = randn(5000, 1);
        same("axpy", EXACT, new float[][]{randn(5000, 1)}, new float[][]{y0}, (be, in, o) -> be.axpy(-0.3f, in[0], o[0], 5000));
        float[] x = randn(2 * 3 * 4 * 5, 1);
        int[] xs = {2, 3, 4, 5};
        for (int[] to : new int[][]{{1, 3, 1, 1}, {2, 1, 4, 1}, {1, 1, 1, 1}, {2, 3, 4, 5}, {1, 3, 4, 5}}) {
            same("sumTo " + java.util.Arrays.toString(to), REDUCTION, new float[][]{x}, new float[][]{nan(numel(to))},
                    (be, in, o) -> be.sumTo(in[0], xs, o[0], to));
            same("broadcastTo " + java.util.Arrays.toString(to), EXACT, new float[][]{randn(numel(to), 1)},
                    new float[][]{nan(120)}, (be, in, o) -> be.broadcastTo(in[0], to, o[0], xs));
        }
        float[] big = randn(64 * 10000, 1);
        same("sumTo large", REDUCTION, new float[][]{big}, new float[][]{nan(10)},
                (be, in, o) -> be.sumTo(in[0], new int[]{64000, 10}, o[0], new int[]{1, 10}));
        float[] am = randn(6 * 7 * 8, 1);
        am[5] = Float.NaN;
        am[3 * 56 + 2] = am[3 * 56 + 8 + 2]; // ties: first index wins
        same("argmax", EXACT, new float[][]{am}, new float[][]{nan(6 * 8)}, (be, in, o) -> be.argmax(in[0], 6, 7, 8, o[0]));
    }

    @Test
    @DisplayName("gemm: all four transpositions, beta 0 ignores NaN in C, beta != 0 accumulates")
    void gemm() {
        int m = 37;
        int n = 29;
        int k = 53;
        for (boolean ta : new boolean[]{false, true}) {
            for (boolean tb : new boolean[]{false, true}) {
                float[] a = randn(m * k, 1);
                float[] b = randn(k * n, 1);
                same("gemm ta=" + ta + " tb=" + tb + " beta=0", REDUCTION, new float[][]{a, b}, new float[][]{nan(m * n)},
                        (be, in, o) -> be.gemm(ta, tb, m, n, k, 1.5f, in[0], in[1], 0f, o[0]));
                same("gemm ta=" + ta + " tb=" + tb + " beta=0.5", REDUCTION, new float[][]{a, b}, new float[][]{randn(m * n, 1)},
                        (be, in, o) -> be.gemm(ta, tb, m, n, k, 1f, in[0], in[1], 0.5f, o[0]));
            }
        }
    }

    @Test
    @DisplayName("conv2d forward (with and without bias), backward data / weight / bias: LeNet shapes and strided/padded/dilated")
    void conv() {
        List<ConvGeometry> gs = List.of(
                new ConvGeometry(8, 1, 28, 28, 6, 5, 5, 1, 1, 2, 2, 1, 1),
                new ConvGeometry(8, 6, 14, 14, 16, 5, 5, 1, 1, 0, 0, 1, 1),
                new ConvGeometry(3, 4, 11, 9, 5, 3, 2, 2, 1, 1, 0, 2, 1));
        for (ConvGeometry g : gs) {
            float[] x = randn((int) g.inputLength(), 1);
            float[] w = randn((int) g.weightLength(), 0.3f);
            float[] bias = randn(g.outChannels(), 1);
            float[] dy = randn((int) g.outputLength(), 1);
            int out = (int) g.outputLength();
            same("conv fwd " + g, REDUCTION, new float[][]{x, w, bias}, new float[][]{nan(out), nan(out)}, (be, in, o) -> {
                be.conv2dForward(g, in[0], in[1], in[2], o[0]);
                be.conv2dForward(g, in[0], in[1], null, o[1]);
            });
            same("conv bwd data " + g, REDUCTION, new float[][]{w, dy}, new float[][]{nan((int) g.inputLength())},
                    (be, in, o) -> be.conv2dBackwardData(g, in[0], in[1], o[0]));
            same("conv bwd weight " + g, REDUCTION, new float[][]{x, dy}, new float[][]{nan((int) g.weightLength())},
                    (be, in, o) -> be.conv2dBackwardWeight(g, in[0], in[1], o[0]));
            same("conv bwd bias " + g, REDUCTION, new float[][]{dy}, new float[][]{nan(g.outChannels())},
                    (be, in, o) -> be.conv2dBackwardBias(g, in[0], o[0]));
        }
    }

    @Test
    @DisplayName("batch norm ops: training forward, inference, backward (all outputs, gamma null), running-stats update")
    void batchNormOps() {
        for (BatchNormGeometry g : List.of(new BatchNormGeometry(16, 6, 196), new BatchNormGeometry(32, 120, 1),
                new BatchNormGeometry(5, 3, 7))) {
            int len = (int) g.length();
            int c = g.channels();
            float[] x = randn(len, 2);
            for (int i = 0; i < len; i++) {
                x[i] += 0.5f * ((i / g.spatial()) % c);
            }
            float[] gamma = uniform(c, 0.5f, 1.5f);
            float[] beta = randn(c, 1);
            same("bn fwd train " + g, BATCH_NORM, new float[][]{x, gamma, beta}, new float[][]{nan(len), nan(c), nan(c), nan(len)},
                    (be, in, o) -> {
                        be.batchNormForwardTraining(g, in[0], in[1], in[2], 1e-5f, o[0], o[1], o[2]);
                        be.batchNormForwardTraining(g, in[0], null, null, 1e-5f, o[3], o[1], o[2]);
                    });
            float[] mean = randn(c, 1);
            float[] var = uniform(c, 0.5f, 2f);
            same("bn fwd inference " + g, BATCH_NORM, new float[][]{x, gamma, beta, mean, var}, new float[][]{nan(len), nan(len)},
                    (be, in, o) -> {
                        be.batchNormForwardInference(g, in[0], in[1], in[2], in[3], in[4], 1e-5f, o[0]);
                        be.batchNormForwardInference(g, in[0], null, null, in[3], in[4], 1e-5f, o[1]);
                    });
            float[] dy = randn(len, 1);
            same("bn backward " + g, BATCH_NORM, new float[][]{x, dy, gamma},
                    new float[][]{nan(len), nan(c), nan(c), nan(len), nan(c), nan(c)}, (be, in, o) -> {
                        try (Buffer m = be.allocate(c); Buffer is = be.allocate(c); Buffer y = be.allocate(len)) {
                            be.batchNormForwardTraining(g, in[0], in[2], null, 1e-5f, y, m, is);
                            be.batchNormBackward(g, in[0], in[1], in[2], m, is, o[0], o[1], o[2]);
                            be.batchNormBackward(g, in[0], in[1], null, m, is, o[3], null, null);
                            be.batchNormBackward(g, in[0], in[1], null, m, is, null, o[4], o[5]);
                        }
                    });
            float[] rm = randn(c, 1);
            float[] rv = uniform(c, 0.5f, 2f);
            for (double factor : new double[]{0.1, 1.0, 1.0 / 3}) {
                same("bn running stats " + g + " factor " + factor, BATCH_NORM, new float[][]{x}, new float[][]{rm, rv},
                        (be, in, o) -> {
                            try (Buffer m = be.allocate(c); Buffer is = be.allocate(c); Buffer y = be.allocate(len)) {
                                be.batchNormForwardTraining(g, in[0], null, null, 1e-5f, y, m, is);
                                be.batchNormUpdateRunningStats(g, m, is, 1e-5f, factor, o[0], o[1], null, null);
                            }
                        });
            }
        }
    }

    @Test
    @DisplayName("avg/max pooling forward and backward (padding counted; max ties go to the first position)")
    void pooling() {
        for (PoolGeometry g : List.of(new PoolGeometry(4, 6, 28, 28, 2, 2, 2, 2, 0, 0),
                new PoolGeometry(2, 3, 9, 7, 3, 3, 2, 2, 1, 1), new PoolGeometry(2, 2, 8, 8, 3, 2, 1, 2, 1, 0))) {
            int inLen = (int) g.inputLength();
            int outLen = (int) g.outputLength();
            float[] x = randn(inLen, 1);
            for (int i = 0; i < inLen; i += 3) {
                x[i] = 0f; // ties, as after a ReLU
            }
            float[] dy = randn(outLen, 1);
            same("avgpool " + g, REDUCTION, new float[][]{x, dy}, new float[][]{nan(outLen), nan(inLen)}, (be, in, o) -> {
                be.avgPool2dForward(g, in[0], o[0]);
                be.avgPool2dBackward(g, in[1], o[1]);
            });
            same("maxpool " + g, EXACT, new float[][]{x, dy}, new float[][]{nan(outLen), nan(inLen)}, (be, in, o) -> {
                be.maxPool2dForward(g, in[0], o[0]);
                be.maxPool2dBackward(g, in[0], o[0], in[1], o[1]);
            });
        }
    }

    @Test
    @DisplayName("activations forward/backward, softmax forward/backward, softmax cross-entropy forward/backward")
    void activationsAndLoss() {
        int n = 3000;
        float[] x = randn(n, 3);
        float[] dy = randn(n, 1);
        for (Activation a : Activation.values()) {
            same("activation " + a, ELEMENTWISE, new float[][]{x, dy}, new float[][]{nan(n), nan(n)}, (be, in, o) -> {
                be.activationForward(a, in[0], o[0], n);
                be.activationBackward(a, in[0], o[0], in[1], o[1], n);
            });
        }
        int rows = 50;
        int cols = 10;
        float[] logits = randn(rows * cols, 3);
        float[] targets = new float[rows];
        for (int i = 0; i < rows; i++) {
            targets[i] = random.nextInt(cols);
        }
        same("softmax", REDUCTION, new float[][]{logits, dy}, new float[][]{nan(rows * cols), nan(rows * cols)}, (be, in, o) -> {
            be.softmaxForward(rows, cols, in[0], o[0]);
            be.softmaxBackward(rows, cols, o[0], in[1], o[1]);
        });
        same("cross-entropy", REDUCTION, new float[][]{logits, targets, {0.7f}},
                new float[][]{nan(rows * cols), nan(1), nan(rows * cols)}, (be, in, o) -> {
                    be.softmaxCrossEntropyForward(rows, cols, in[0], in[1], o[0], o[1]);
                    be.softmaxCrossEntropyBackward(rows, cols, o[0], in[1], in[2], o[2]);
                });
    }

    @Test
    @DisplayName("a target outside [0, classes) is an IllegalArgumentException at the next synchronisation")
    void crossEntropyBadTarget() {
        try (Buffer logits = gpu.upload(randn(20, 1), 0, 20); Buffer t = gpu.upload(new float[]{1, 10}, 0, 2);
             Buffer probs = gpu.allocate(20); Buffer loss = gpu.allocate(1)) {
            gpu.softmaxCrossEntropyForward(2, 10, logits, t, probs, loss);
            IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                    () -> gpu.download(loss, 0, new float[1], 0, 1));
            assertTrue(e.getMessage().contains("row 1") && e.getMessage().contains("[0, 10)"), e.getMessage());
            gpu.synchronize(); // the flag was reset: no second report
        }
    }

    @Test
    @DisplayName("SGD (plain, momentum first/later step, nesterov, weight decay) and Adam/AdamW steps")
    void optimizers() {
        int n = 3001;
        float[] p = randn(n, 1);
        float[] g = randn(n, 1);
        float[] buf = randn(n, 1);
        for (SgdHyper h : List.of(new SgdHyper(0.1f, 0f, 0f, false, 0f, true),
                new SgdHyper(0.1f, 0.9f, 0f, false, 1e-4f, true), new SgdHyper(0.1f, 0.9f, 0.1f, false, 0f, false),
                new SgdHyper(0.05f, 0.9f, 0f, true, 1e-3f, false))) {
            same("sgd " + h, EXACT, new float[][]{p, g, buf}, new float[0][], (be, in, o) -> be.sgdStep(h, in[0], in[1],
                    h.momentum() != 0f ? in[2] : null, n));
        }
        float[] m = randn(n, 0.1f);
        float[] v = uniform(n, 0f, 0.01f);
        for (AdamHyper h : List.of(new AdamHyper(1e-3f, 0.9f, 0.999f, 1e-8f, 0f, false, 1),
                new AdamHyper(1e-3f, 0.9f, 0.999f, 1e-8f, 1e-2f, false, 7),
                new AdamHyper(1e-3f, 0.9f, 0.999f, 1e-8f, 1e-2f, true, 100))) {
            same("adam " + h, ELEMENTWISE, new float[][]{p, g, m, v}, new float[0][],
                    (be, in, o) -> be.adamStep(h, in[0], in[1], in[2], in[3], n));
        }
    }

    // ------------------------------------------------------------------ modules

    @Test
    @DisplayName("BatchNorm1d/2d modules in every mode: train/eval, affine on/off, track on/off, momentum 0.1 and null")
    void batchNormModes() {
        Device cpuDev = CudaTestSupport.cpu();
        Device gpuDev = CudaTestSupport.cuda();
        for (boolean twoD : new boolean[]{false, true}) {
            for (boolean affine : new boolean[]{false, true}) {
                for (boolean track : new boolean[]{false, true}) {
                    for (Float momentum : new Float[]{0.1f, null}) {
                        String what = (twoD ? "BN2d" : "BN1d") + " affine=" + affine + " track=" + track + " momentum=" + momentum;
                        Map<String, float[]> a = runBn(cpuDev, twoD, affine, track, momentum);
                        Map<String, float[]> b = runBn(gpuDev, twoD, affine, track, momentum);
                        assertEquals(a.keySet(), b.keySet());
                        for (String k : a.keySet()) {
                            assertClose(a.get(k), b.get(k), BATCH_NORM, what + " " + k);
                        }
                    }
                }
            }
        }
    }

    private static Map<String, float[]> runBn(Device d, boolean twoD, boolean affine, boolean track, Float momentum) {
        Map<String, float[]> out = new LinkedHashMap<>();
        Generator gen = new Generator(7);
        int c = 4;
        int[] shape = twoD ? new int[]{6, c, 5, 3} : new int[]{12, c};
        try (TensorScope scope = TensorScope.open();
             BatchNorm bn = twoD ? new BatchNorm2d(d, c, 1e-5f, momentum, affine, track) : new BatchNorm1d(d, c, 1e-5f, momentum, affine, track)) {
            for (int step = 0; step < 3; step++) {
                Tensor x = Tensor.randn(d, gen, shape).requiresGrad(true);
                Tensor y = bn.forward(x);
                y.mul(Tensor.randn(d, gen, shape)).sum().backward();
                out.put("train y " + step, y.toArray());
                out.put("train dx " + step, x.grad().toArray());
                if (affine) {
                    out.put("dweight " + step, bn.weight().grad().toArray());
                    out.put("dbias " + step, bn.bias().grad().toArray());
                    bn.zeroGrad();
                }
                if (track) {
                    out.put("running_mean " + step, bn.runningMean().toArray());
                    out.put("running_var " + step, bn.runningVar().toArray());
                }
            }
            bn.eval();
            Tensor x = Tensor.randn(d, gen, shape);
            out.put("eval y", bn.forward(x).toArray());
            if (track) {
                out.put("eval running_mean", bn.runningMean().toArray());
            }
        }
        return out;
    }

    private record Step(List<Float> losses, Map<String, float[]> grads, Map<String, float[]> state) {
    }

    private static Step trainLeNet(Device d, int steps) {
        Generator gen = new Generator(2024);
        int batch = 16;
        float[] images = new float[batch * 28 * 28];
        gen.fillNormal(images, 0f, 1f);
        float[] labels = new float[batch];
        for (int i = 0; i < batch; i++) {
            labels[i] = gen.nextInt(10);
        }
        List<Float> losses = new ArrayList<>();
        Map<String, float[]> grads = new LinkedHashMap<>();
        try (LeNet5 net = new LeNet5(d, new Generator(99)); SGD sgd = new SGD(net.parameters(), 0.05f, 0.9f, 0f, false, 1e-4f)) {
            CrossEntropyLoss ce = new CrossEntropyLoss();
            for (int s = 0; s < steps; s++) {
                try (TensorScope scope = TensorScope.open()) {
                    Tensor x = Tensor.of(d, images, batch, 1, 28, 28);
                    Tensor y = Tensor.of(d, labels, batch);
                    net.zeroGrad();
                    Tensor loss = ce.forward(net.forward(x), y);
                    loss.backward();
                    if (s == 0) {
                        net.namedParameters().forEach((k, p) -> grads.put(k, p.grad().toArray()));
                    }
                    sgd.step();
                    losses.add(loss.item());
                }
            }
            Map<String, float[]> state = new LinkedHashMap<>();
            net.stateDict().entries().forEach((k, v) -> state.put(k, v.data()));
            return new Step(losses, grads, state);
        }
    }

    @Test
    @DisplayName("one LeNet-5 training step: loss, every gradient, updated parameters and running statistics")
    void leNetStep() {
        Step a = trainLeNet(CudaTestSupport.cpu(), 1);
        Step b = trainLeNet(CudaTestSupport.cuda(), 1);
        assertClose(new float[]{a.losses().get(0)}, new float[]{b.losses().get(0)}, REDUCTION, "loss");
        for (String k : a.grads().keySet()) {
            assertClose(a.grads().get(k), b.grads().get(k), new double[]{1e-4, 1e-5}, "gradient " + k);
        }
        for (String k : a.state().keySet()) {
            assertClose(a.state().get(k), b.state().get(k), new double[]{1e-4, 1e-5}, "after one step: " + k);
        }
    }

    @Test
    @DisplayName("100 LeNet-5 training steps: parameters and running statistics stay within 1e-3 relative / 1e-4 absolute")
    void leNet100Steps() {
        Step a = trainLeNet(CudaTestSupport.cpu(), 100);
        Step b = trainLeNet(CudaTestSupport.cuda(), 100);
        for (String k : a.state().keySet()) {
            assertClose(a.state().get(k), b.state().get(k), new double[]{1e-3, 1e-4}, "after 100 steps: " + k);
        }
        assertTrue(b.losses().get(99) < b.losses().get(0), "cuda loss did not fall: " + b.losses());
    }

    private static int numel(int[] s) {
        int n = 1;
        for (int v : s) {
            n *= v;
        }
        return n;
    }
}
