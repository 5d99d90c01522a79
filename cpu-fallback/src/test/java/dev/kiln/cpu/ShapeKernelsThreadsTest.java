package dev.kiln.cpu;

import dev.kiln.backend.AdaptivePoolGeometry;
import dev.kiln.backend.Backend;
import dev.kiln.backend.Buffer;
import dev.kiln.backend.ConvGeometry;
import dev.kiln.backend.UpsampleGeometry;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The grouped convolution, adaptive pooling, upsampling and slice kernels give the same bits on 1 and 3 threads (the
 * conformance suite checks their values on the default pool).
 */
class ShapeKernelsThreadsTest {

    private final Random rnd = new Random(31);

    private float[] random(long n) {
        float[] v = new float[(int) n];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) rnd.nextGaussian();
        }
        return v;
    }

    /** Runs {@code op} (which returns its outputs) on a backend with 1 and with 3 threads; the outputs must match bitwise. */
    private static void sameOnOneAndThreeThreads(String what, Function<Backend, List<Buffer>> op) {
        try (CpuBackend one = new CpuBackend(1); CpuBackend three = new CpuBackend(3)) {
            assertEquals(3, three.threads());
            List<Buffer> a = op.apply(one);
            List<Buffer> b = op.apply(three);
            for (int i = 0; i < a.size(); i++) {
                float[] x = new float[(int) a.get(i).length()];
                float[] y = new float[x.length];
                one.download(a.get(i), 0, x, 0, x.length);
                three.download(b.get(i), 0, y, 0, y.length);
                assertArrayEquals(x, y, what + " output " + i);
            }
        }
    }

    @Test
    @DisplayName("grouped and depthwise convolution, all three directions")
    void groupedConvolution() {
        ConvGeometry[] cases = {new ConvGeometry(9, 16, 10, 10, 16, 3, 3, 1, 1, 1, 1, 1, 1, 16),
            new ConvGeometry(7, 6, 9, 8, 12, 3, 2, 2, 1, 1, 0, 1, 2, 3)};
        for (ConvGeometry g : cases) {
            float[] x = random(g.inputLength());
            float[] w = random(g.weightLength());
            float[] bias = random(g.outChannels());
            float[] dy = random(g.outputLength());
            sameOnOneAndThreeThreads("conv " + g, be -> {
                List<Buffer> out = new ArrayList<>();
                Buffer y = be.allocate(g.outputLength());
                Buffer dx = be.allocate(g.inputLength());
                Buffer dw = be.allocate(g.weightLength());
                be.conv2dForward(g, be.upload(x, 0, x.length), be.upload(w, 0, w.length), be.upload(bias, 0, bias.length), y);
                be.conv2dBackwardData(g, be.upload(w, 0, w.length), be.upload(dy, 0, dy.length), dx);
                be.conv2dBackwardWeight(g, be.upload(x, 0, x.length), be.upload(dy, 0, dy.length), dw);
                out.add(y);
                out.add(dx);
                out.add(dw);
                return out;
            });
        }
    }

    @Test
    @DisplayName("adaptive average and max pooling, forward and backward")
    void adaptivePooling() {
        AdaptivePoolGeometry g = new AdaptivePoolGeometry(6, 20, 11, 13, 4, 5);
        float[] x = random(g.inputLength());
        float[] dy = random(g.outputLength());
        sameOnOneAndThreeThreads("adaptive pooling", be -> {
            Buffer y = be.allocate(g.outputLength());
            Buffer dx = be.allocate(g.inputLength());
            Buffer my = be.allocate(g.outputLength());
            Buffer idx = be.allocate(g.outputLength());
            Buffer mdx = be.allocate(g.inputLength());
            be.adaptiveAvgPool2dForward(g, be.upload(x, 0, x.length), y);
            be.adaptiveAvgPool2dBackward(g, be.upload(dy, 0, dy.length), dx);
            be.adaptiveMaxPool2dForward(g, be.upload(x, 0, x.length), my, idx);
            be.adaptiveMaxPool2dBackward(g, idx, be.upload(dy, 0, dy.length), mdx);
            return List.of(y, dx, my, idx, mdx);
        });
    }

    @Test
    @DisplayName("nearest upsampling and slice copies")
    void upsampleAndSlices() {
        UpsampleGeometry g = new UpsampleGeometry(5, 24, 9, 7, 2, 3);
        float[] x = random(g.inputLength());
        float[] dy = random(g.outputLength());
        float[] src = random(40L * 6 * 500);
        sameOnOneAndThreeThreads("upsample and slices", be -> {
            Buffer y = be.allocate(g.outputLength());
            Buffer dx = be.allocate(g.inputLength());
            be.upsampleNearest2dForward(g, be.upload(x, 0, x.length), y);
            be.upsampleNearest2dBackward(g, be.upload(dy, 0, dy.length), dx);
            Buffer dst = be.allocate(40L * 9 * 500);
            be.copySlice(be.upload(src, 0, src.length), 40, 6, 1, dst, 9, 4, 5, 500);
            return List.of(y, dx, dst);
        });
    }
}
