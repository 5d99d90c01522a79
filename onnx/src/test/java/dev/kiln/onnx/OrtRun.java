package dev.kiln.onnx;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dev.kiln.core.Device;
import dev.kiln.core.GradMode;
import dev.kiln.core.Tensor;
import dev.kiln.core.TensorScope;
import dev.kiln.nn.Module;

import java.nio.FloatBuffer;
import java.util.Map;
import java.util.Random;

/** Runs an exported model in ONNX Runtime and the same model in Kiln, and measures how far apart they are. */
final class OrtRun implements AutoCloseable {

    /** The agreement the tests require: |onnx - kiln| <= ABS + REL * |kiln| for every output value. */
    static final double ABS = 1e-5;
    static final double REL = 1e-5;

    private final OrtEnvironment env = OrtEnvironment.getEnvironment();
    private final OrtSession session;

    OrtRun(byte[] model) throws OrtException {
        OrtSession.SessionOptions options = new OrtSession.SessionOptions();
        options.setIntraOpNumThreads(1);
        session = env.createSession(model, options);
    }

    /** The model's single output, flattened, for {@code input} of shape {@code shape}. */
    float[] run(float[] input, int... shape) throws OrtException {
        long[] dims = new long[shape.length];
        for (int i = 0; i < shape.length; i++) {
            dims[i] = shape[i];
        }
        String name = session.getInputNames().iterator().next();
        try (OnnxTensor x = OnnxTensor.createTensor(env, FloatBuffer.wrap(input), dims);
             OrtSession.Result result = session.run(Map.of(name, x))) {
            OnnxTensor y = (OnnxTensor) result.get(0);
            FloatBuffer fb = y.getFloatBuffer();
            float[] out = new float[fb.remaining()];
            fb.get(out);
            return out;
        }
    }

    OrtSession session() {
        return session;
    }

    @Override
    public void close() throws OrtException {
        session.close();
    }

    static float[] kiln(Module model, Device device, float[] input, int... shape) {
        try (GradMode g = GradMode.noGrad(); TensorScope scope = TensorScope.open()) {
            return model.forward(Tensor.of(device, input, shape)).toArray();
        }
    }

    static float[] random(long seed, int... shape) {
        Random r = new Random(seed);
        int n = 1;
        for (int d : shape) {
            n *= d;
        }
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = r.nextFloat() * 2f - 1f;
        }
        return a;
    }

    static int[] batchShape(int batch, int[] inputShape) {
        int[] s = new int[inputShape.length + 1];
        s[0] = batch;
        System.arraycopy(inputShape, 0, s, 1, inputShape.length);
        return s;
    }

    /**
     * The largest |onnx - kiln| over all values; throws an {@link AssertionError} naming the first value outside the
     * tolerance.
     */
    static double maxAbsDiff(String what, float[] kiln, float[] onnx) {
        if (kiln.length != onnx.length) {
            throw new AssertionError(what + ": Kiln gave " + kiln.length + " values, ONNX Runtime " + onnx.length);
        }
        double max = 0;
        for (int i = 0; i < kiln.length; i++) {
            double d = Math.abs((double) kiln[i] - onnx[i]);
            if (!(d <= ABS + REL * Math.abs(kiln[i]))) {
                throw new AssertionError(what + ": value " + i + " is " + onnx[i] + " in ONNX Runtime, " + kiln[i]
                        + " in Kiln (|diff| " + d + " > " + ABS + " + " + REL + " * |kiln|)");
            }
            max = Math.max(max, d);
        }
        return max;
    }
}
