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
 * The same inputs through the CPU backend and the CUDA backend (TF32 off): batch norm modules in every mode, a whole
 * LeNet-5 training step and 100 steps (single ops are checked against float64 references by the conformance suite on
 * every backend). Tolerances, |cuda - cpu| <= atol + rtol*|cpu|:
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
