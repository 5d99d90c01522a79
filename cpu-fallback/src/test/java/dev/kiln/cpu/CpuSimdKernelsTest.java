package dev.kiln.cpu;

import dev.kiln.backend.Activation;
import dev.kiln.backend.BatchNormGeometry;
import dev.kiln.backend.BinaryOp;
import dev.kiln.backend.Buffer;
import dev.kiln.backend.ConvGeometry;
import dev.kiln.core.Device;
import dev.kiln.core.Generator;
import dev.kiln.core.GradMode;
import dev.kiln.core.Tensor;
import dev.kiln.core.TensorScope;
import dev.kiln.models.LeNet5;
import dev.kiln.nn.CrossEntropyLoss;
import dev.kiln.optim.SGD;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Whichever kernels run (SIMD or scalar: this class runs under both, see the scalar-kernels surefire execution), a
 * LeNet-5-BN training run and its inference are bit-for-bit the same with 1 and 3 backend threads.
 */
class CpuSimdKernelsTest {

    @Test
    void leNetTrainingAndInferenceDoNotDependOnThreadCount() {
        List<float[]> one = trainAndInfer(1);
        List<float[]> three = trainAndInfer(3);
        assertEquals(one.size(), three.size());
        for (int i = 0; i < one.size(); i++) {
            assertArrayEquals(one.get(i), three.get(i), "tensor " + i + " (" + SimdSupport.describe() + " kernels)");
        }
    }

    /**
     * The output and the input gradient of stride-1 unpadded convolutions through wide positions (SIMD) equal the
     * im2col/col2im path bit for bit: the same products summed in the same order (plus exact zeros for the gradient). Odd widths, planes shorter than a
     * vector, rectangular kernels, a kernel as wide as the input less one.
     */
    @Test
    void wideForwardAndInputGradientEqualIm2colBitForBit() {
        org.junit.jupiter.api.Assumptions.assumeTrue(SimdSupport.ENABLED, "the wide path is a SIMD kernel");
        ConvGeometry[] shapes = {
                new ConvGeometry(5, 6, 14, 14, 16, 5, 5, 1, 1, 0, 0, 1, 1),  // LeNet conv2
                new ConvGeometry(3, 3, 7, 9, 4, 3, 2, 1, 1, 0, 0, 1, 1),     // 63-float planes, 3x2 kernel
                new ConvGeometry(2, 2, 4, 5, 3, 2, 2, 1, 1, 0, 0, 1, 1),     // plane shorter than a vector
                new ConvGeometry(2, 4, 11, 23, 7, 1, 3, 1, 1, 0, 0, 1, 1),   // one-row kernel
                new ConvGeometry(1, 2, 9, 6, 5, 4, 5, 1, 1, 0, 0, 1, 1),     // output rows of 2
        };
        Generator gen = new Generator(5);
        ThreadLocal<Scratch> scratch = ThreadLocal.withInitial(Scratch::new);
        try (Parallel par = new Parallel(2)) {
            for (ConvGeometry g : shapes) {
                org.junit.jupiter.api.Assertions.assertTrue(Conv2dKernels.wide(g), g.toString());
                float[] w = new float[(int) g.weightLength()];
                float[] dy = new float[(int) g.outputLength()];
                gen.fillUniform(w, -1f, 1f);
                gen.fillUniform(dy, -1f, 1f);
                float[] viaCol2im = new float[(int) g.inputLength()];
                float[] viaWide = new float[(int) g.inputLength()];
                java.util.Arrays.fill(viaWide, Float.NaN);
                float[] x = new float[(int) g.inputLength()];
                float[] bias = new float[g.outChannels()];
                gen.fillUniform(x, -1f, 1f);
                gen.fillUniform(bias, -1f, 1f);
                for (float[] b : new float[][]{bias, null}) {
                    float[] viaIm2col = new float[(int) g.outputLength()];
                    float[] viaWideForward = new float[(int) g.outputLength()];
                    Conv2dKernels.forwardIm2col(g, x, w, b, viaIm2col, par, scratch::get);
                    Conv2dKernels.forwardWide(g, x, w, b, viaWideForward, par, scratch::get);
                    assertArrayEquals(viaIm2col, viaWideForward, g + " forward, bias " + (b != null));
                }
                Conv2dKernels.backwardDataCol2im(g, w, dy, viaCol2im, par, scratch::get);
                VectorConv.backwardDataWide(g, w, dy, viaWide, par, scratch::get);
                for (int i = 0; i < viaWide.length; i++) {
                    // + 0f: an all-zero sum may differ in the sign of zero only
                    assertEquals(viaCol2im[i] + 0f, viaWide[i] + 0f, g + " index " + i);
                }
            }
        }
    }

    /**
     * Padded and strided convolutions on small planes, several images per GEMM (ResNet's 7x7 stage), equal
     * the per-image im2col and col2im kernels bit for bit, forward (with and without bias) and input gradient, at 1 and
     * 3 threads; batches that the groups do not divide, 1x1 stride-2 shortcuts and planes of one position included.
     */
    @Test
    void smallPlaneConvolutionsInGroupsEqualPerImageIm2colBitForBit() {
        org.junit.jupiter.api.Assumptions.assumeTrue(SimdSupport.ENABLED, "the grouped path is a SIMD kernel");
        ConvGeometry[] shapes = {
                new ConvGeometry(11, 64, 7, 7, 64, 3, 3, 1, 1, 1, 1, 1, 1),    // ResNet layer3 3x3 (5 per group)
                new ConvGeometry(3, 32, 14, 14, 64, 3, 3, 2, 2, 1, 1, 1, 1),   // layer3 3x3 stride 2
                new ConvGeometry(9, 32, 8, 8, 32, 3, 3, 1, 1, 1, 1, 1, 1),     // 8x8 planes: four per group
                new ConvGeometry(7, 32, 14, 14, 64, 1, 1, 2, 2, 0, 0, 1, 1),   // layer3 1x1 stride-2 shortcut
                new ConvGeometry(5, 3, 3, 2, 5, 3, 2, 2, 1, 1, 0, 1, 1),       // uneven, 2x1 output planes
                new ConvGeometry(300, 2, 1, 1, 3, 1, 1, 1, 1, 1, 1, 1, 1),     // 3x3 planes from 1x1 by padding
        };
        Generator gen = new Generator(13);
        ThreadLocal<Scratch> scratch = ThreadLocal.withInitial(Scratch::new);
        for (ConvGeometry g : shapes) {
            org.junit.jupiter.api.Assertions.assertTrue(Conv2dKernels.smallPlanes(g), g.toString());
            float[] x = new float[(int) g.inputLength()];
            float[] w = new float[(int) g.weightLength()];
            float[] bias = new float[g.outChannels()];
            float[] dy = new float[(int) g.outputLength()];
            gen.fillUniform(x, -1f, 1f);
            gen.fillUniform(w, -1f, 1f);
            gen.fillUniform(bias, -1f, 1f);
            gen.fillUniform(dy, -1f, 1f);
            for (int threads : new int[]{1, 3}) {
                try (Parallel par = new Parallel(threads)) {
                    for (float[] b : new float[][]{bias, null}) {
                        float[] perImage = new float[(int) g.outputLength()];
                        float[] grouped = new float[(int) g.outputLength()];
                        java.util.Arrays.fill(grouped, Float.NaN);
                        Conv2dKernels.forwardIm2col(g, x, w, b, perImage, par, scratch::get);
                        Conv2dKernels.forwardGrouped(g, x, w, b, grouped, par, scratch::get);
                        assertArrayEquals(perImage, grouped, g + " forward, bias " + (b != null) + ", " + threads
                                + " threads");
                    }
                    float[] perImage = new float[(int) g.inputLength()];
                    float[] grouped = new float[(int) g.inputLength()];
                    java.util.Arrays.fill(grouped, Float.NaN);
                    Conv2dKernels.backwardDataCol2im(g, w, dy, perImage, par, scratch::get);
                    Conv2dKernels.backwardDataGrouped(g, w, dy, grouped, par, scratch::get);
                    assertArrayEquals(perImage, grouped, g + " input gradient, " + threads + " threads");
                }
            }
        }
    }

    /**
     * The weight gradient of stride-1 unpadded convolutions read in place on wide positions (SIMD) against float64,
     * and independent of the thread count (the chunks of images depend on the batch size only).
     */
    @Test
    void wideWeightGradientMatchesFloat64AndIgnoresThreadCount() {
        org.junit.jupiter.api.Assumptions.assumeTrue(SimdSupport.ENABLED, "the wide path is a SIMD kernel");
        ConvGeometry[] shapes = {
                new ConvGeometry(7, 6, 14, 14, 16, 5, 5, 1, 1, 0, 0, 1, 1),  // LeNet conv2
                new ConvGeometry(3, 3, 7, 9, 4, 3, 2, 1, 1, 0, 0, 1, 1),
                new ConvGeometry(2, 2, 4, 5, 3, 2, 2, 1, 1, 0, 0, 1, 1),
                new ConvGeometry(20, 4, 11, 23, 7, 1, 3, 1, 1, 0, 0, 1, 1),
                new ConvGeometry(1, 2, 9, 6, 5, 4, 5, 1, 1, 0, 0, 1, 1),
        };
        Generator gen = new Generator(9);
        for (ConvGeometry g : shapes) {
            float[] x = new float[(int) g.inputLength()];
            float[] dy = new float[(int) g.outputLength()];
            gen.fillUniform(x, -1f, 1f);
            gen.fillUniform(dy, -1f, 1f);
            double[] ref = new double[(int) g.weightLength()];
            int oh = g.outH(), ow = g.outW(), kh = g.kernelH(), kw = g.kernelW();
            for (int n = 0; n < g.n(); n++) {
                for (int o = 0; o < g.outChannels(); o++) {
                    for (int c = 0; c < g.inChannels(); c++) {
                        for (int ky = 0; ky < kh; ky++) {
                            for (int kx = 0; kx < kw; kx++) {
                                double sum = 0;
                                for (int oy = 0; oy < oh; oy++) {
                                    for (int ox = 0; ox < ow; ox++) {
                                        sum += (double) dy[((n * g.outChannels() + o) * oh + oy) * ow + ox]
                                                * x[((n * g.inChannels() + c) * g.inH() + oy + ky) * g.inW() + ox + kx];
                                    }
                                }
                                ref[((o * g.inChannels() + c) * kh + ky) * kw + kx] += sum;
                            }
                        }
                    }
                }
            }
            float[] one = weightGradient(g, x, dy, 1);
            float[] three = weightGradient(g, x, dy, 3);
            assertArrayEquals(one, three, g.toString());
            for (int i = 0; i < ref.length; i++) {
                double tol = 1e-5 * (1 + Math.abs(ref[i])) * Math.sqrt(g.n() * oh * ow);
                org.junit.jupiter.api.Assertions.assertEquals(ref[i], one[i], tol, g + " weight " + i);
            }
        }
    }

    /**
     * The weight gradient of padded and strided convolutions with many weights (ResNet's 3x3 layers, taken as GEMMs
     * over groups of images) against float64, and the same at 1 and 3 threads. Batches of 9 and 20 make groups that
     * do not divide the chunks.
     */
    @Test
    void manyWeightGradientAsGemmMatchesFloat64AndIgnoresThreadCount() {
        org.junit.jupiter.api.Assumptions.assumeTrue(SimdSupport.ENABLED, "the GEMM path is a SIMD kernel");
        ConvGeometry[] shapes = {
                new ConvGeometry(20, 64, 7, 7, 64, 3, 3, 1, 1, 1, 1, 1, 1),    // ResNet layer3 3x3
                new ConvGeometry(9, 32, 14, 14, 64, 3, 3, 2, 2, 1, 1, 1, 1),   // layer3 3x3 stride 2
                new ConvGeometry(9, 32, 14, 14, 32, 3, 3, 1, 1, 1, 1, 1, 1),   // layer2 3x3
                new ConvGeometry(17, 96, 5, 6, 48, 2, 3, 2, 1, 0, 1, 1, 1),    // uneven kernel, stride and padding
        };
        Generator gen = new Generator(11);
        for (ConvGeometry g : shapes) {
            org.junit.jupiter.api.Assertions.assertTrue(Conv2dKernels.weightGradientAsGemm(g), g.toString());
            float[] x = new float[(int) g.inputLength()];
            float[] dy = new float[(int) g.outputLength()];
            gen.fillUniform(x, -1f, 1f);
            gen.fillUniform(dy, -1f, 1f);
            double[] ref = new double[(int) g.weightLength()];
            int oh = g.outH(), ow = g.outW(), kh = g.kernelH(), kw = g.kernelW(), cin = g.inChannels();
            for (int n = 0; n < g.n(); n++) {
                for (int o = 0; o < g.outChannels(); o++) {
                    for (int c = 0; c < cin; c++) {
                        for (int ky = 0; ky < kh; ky++) {
                            for (int kx = 0; kx < kw; kx++) {
                                double sum = 0;
                                for (int oy = 0; oy < oh; oy++) {
                                    int iy = oy * g.strideH() - g.padH() + ky;
                                    for (int ox = 0; ox < ow; ox++) {
                                        int ix = ox * g.strideW() - g.padW() + kx;
                                        if (iy >= 0 && iy < g.inH() && ix >= 0 && ix < g.inW()) {
                                            sum += (double) dy[((n * g.outChannels() + o) * oh + oy) * ow + ox]
                                                    * x[((n * cin + c) * g.inH() + iy) * g.inW() + ix];
                                        }
                                    }
                                }
                                ref[((o * cin + c) * kh + ky) * kw + kx] += sum;
                            }
                        }
                    }
                }
            }
            float[] one = anyWeightGradient(g, x, dy, 1);
            float[] three = anyWeightGradient(g, x, dy, 3);
            assertArrayEquals(one, three, g.toString());
            for (int i = 0; i < ref.length; i++) {
                double tol = 1e-5 * (1 + Math.abs(ref[i])) * Math.sqrt(g.n() * oh * ow);
                org.junit.jupiter.api.Assertions.assertEquals(ref[i], one[i], tol, g + " weight " + i);
            }
        }
    }

    private static float[] anyWeightGradient(ConvGeometry g, float[] x, float[] dy, int threads) {
        try (CpuBackend be = new CpuBackend(threads)) {
            Buffer dw = be.allocate(g.weightLength());
            be.conv2dBackwardWeight(g, be.upload(x, 0, x.length), be.upload(dy, 0, dy.length), dw);
            float[] out = new float[(int) g.weightLength()];
            be.download(dw, 0, out, 0, out.length);
            return out;
        }
    }

    private static float[] weightGradient(ConvGeometry g, float[] x, float[] dy, int threads) {
        try (CpuBackend be = new CpuBackend(threads)) {
            org.junit.jupiter.api.Assertions.assertTrue(Conv2dKernels.wide(g), g.toString());
            Buffer dw = be.allocate(g.weightLength());
            be.conv2dBackwardWeight(g, be.upload(x, 0, x.length), be.upload(dy, 0, dy.length), dw);
            float[] out = new float[(int) g.weightLength()];
            be.download(dw, 0, out, 0, out.length);
            return out;
        }
    }

    /**
     * 2x2 stride-2 average pooling, forward and backward, equals the scalar formula bit for bit on planes whose rows
     * are shorter than, as long as and longer than a vector (the last plane's last rows take the scalar loop).
     */
    @Test
    void averagePooling2x2MatchesTheScalarFormulaBitForBit() {
        int[][] shapes = {{3, 6, 28, 28}, {2, 16, 10, 10}, {1, 2, 4, 6}, {2, 3, 64, 70}, {1, 1, 2, 2}, {2, 1, 6, 64}};
        Generator gen = new Generator(21);
        try (Parallel par = new Parallel(2)) {
            for (int[] sh : shapes) {
                dev.kiln.backend.PoolGeometry g = new dev.kiln.backend.PoolGeometry(sh[0], sh[1], sh[2], sh[3], 2, 2, 2, 2,
                        0, 0);
                int planes = sh[0] * sh[1], ih = sh[2], iw = sh[3], oh = ih / 2, ow = iw / 2;
                float[] x = new float[planes * ih * iw];
                float[] dy = new float[planes * oh * ow];
                gen.fillUniform(x, -1f, 1f);
                gen.fillUniform(dy, -1f, 1f);
                float[] y = new float[dy.length];
                float[] dx = new float[x.length];
                java.util.Arrays.fill(dx, Float.NaN);
                PoolKernels.avgForward(g, x, y, par);
                PoolKernels.avgBackward(g, dy, dx, par);
                for (int p = 0; p < planes; p++) {
                    for (int oy = 0; oy < oh; oy++) {
                        for (int ox = 0; ox < ow; ox++) {
                            int r0 = p * ih * iw + 2 * oy * iw + 2 * ox, r1 = r0 + iw, o = (p * oh + oy) * ow + ox;
                            float want = ((x[r0] + x[r0 + 1]) + (x[r1] + x[r1 + 1])) * 0.25f;
                            assertEquals(want, y[o], java.util.Arrays.toString(sh) + " output " + o);
                            float gr = dy[o] / 4f;
                            for (int i : new int[]{r0, r0 + 1, r1, r1 + 1}) {
                                assertEquals(gr, dx[i], java.util.Arrays.toString(sh) + " input gradient " + i);
                            }
                        }
                    }
                }
            }
        }
    }

    /**
     * Convolutions with one input channel, forward and weight gradient (the direct SIMD kernels where they fit:
     * overlapping or zero-padded last vectors, channel and tap tails, padding, bias or none) against float64.
     */
    @Test
    void oneInputChannelConvolutionMatchesFloat64() {
        ConvGeometry[] shapes = {
                new ConvGeometry(3, 1, 28, 28, 6, 5, 5, 1, 1, 2, 2, 1, 1),   // LeNet conv1
                new ConvGeometry(2, 1, 20, 37, 8, 3, 3, 1, 1, 1, 1, 1, 1),   // 35-wide rows, 6 + 2 channels
                new ConvGeometry(2, 1, 9, 40, 3, 2, 4, 1, 1, 0, 0, 1, 1),    // 37 wide, 3 channels, no padding
                new ConvGeometry(1, 1, 12, 12, 2, 3, 3, 2, 2, 1, 1, 1, 1),   // strided: the im2col path
        };
        Generator gen = new Generator(11);
        try (CpuBackend be = new CpuBackend(2)) {
            for (ConvGeometry g : shapes) {
                for (boolean withBias : new boolean[]{true, false}) {
                    float[] x = new float[(int) g.inputLength()];
                    float[] w = new float[(int) g.weightLength()];
                    float[] b = new float[g.outChannels()];
                    gen.fillUniform(x, -1f, 1f);
                    gen.fillUniform(w, -1f, 1f);
                    gen.fillUniform(b, -1f, 1f);
                    Buffer y = be.allocate(g.outputLength());
                    be.conv2dForward(g, be.upload(x, 0, x.length), be.upload(w, 0, w.length),
                            withBias ? be.upload(b, 0, b.length) : null, y);
                    float[] got = new float[(int) g.outputLength()];
                    be.download(y, 0, got, 0, got.length);
                    int oh = g.outH(), ow = g.outW();
                    for (int n = 0; n < g.n(); n++) {
                        for (int o = 0; o < g.outChannels(); o++) {
                            for (int r = 0; r < oh; r++) {
                                for (int c = 0; c < ow; c++) {
                                    double sum = withBias ? b[o] : 0;
                                    for (int ky = 0; ky < g.kernelH(); ky++) {
                                        for (int kx = 0; kx < g.kernelW(); kx++) {
                                            int iy = r * g.strideH() - g.padH() + ky;
                                            int ix = c * g.strideW() - g.padW() + kx;
                                            if (iy >= 0 && iy < g.inH() && ix >= 0 && ix < g.inW()) {
                                                sum += (double) w[(o * g.kernelH() + ky) * g.kernelW() + kx]
                                                        * x[(n * g.inH() + iy) * g.inW() + ix];
                                            }
                                        }
                                    }
                                    int at = ((n * g.outChannels() + o) * oh + r) * ow + c;
                                    assertEquals(sum, got[at], 1e-5 * (1 + Math.abs(sum)),
                                            g + " bias=" + withBias + " at " + at);
                                }
                            }
                        }
                    }
                    // weight gradient with a random output gradient (the direct kernel where it fits)
                    float[] dy = new float[(int) g.outputLength()];
                    gen.fillUniform(dy, -1f, 1f);
                    Buffer dw = be.allocate(g.weightLength());
                    be.conv2dBackwardWeight(g, be.upload(x, 0, x.length), be.upload(dy, 0, dy.length), dw);
                    float[] gotDw = new float[(int) g.weightLength()];
                    be.download(dw, 0, gotDw, 0, gotDw.length);
                    for (int o = 0; o < g.outChannels(); o++) {
                        for (int ky = 0; ky < g.kernelH(); ky++) {
                            for (int kx = 0; kx < g.kernelW(); kx++) {
                                double sum = 0, mag = 0;
                                for (int n = 0; n < g.n(); n++) {
                                    for (int r = 0; r < oh; r++) {
                                        for (int c = 0; c < ow; c++) {
                                            int iy = r * g.strideH() - g.padH() + ky;
                                            int ix = c * g.strideW() - g.padW() + kx;
                                            if (iy >= 0 && iy < g.inH() && ix >= 0 && ix < g.inW()) {
                                                double p = (double) dy[((n * g.outChannels() + o) * oh + r) * ow + c]
                                                        * x[(n * g.inH() + iy) * g.inW() + ix];
                                                sum += p;
                                                mag += Math.abs(p);
                                            }
                                        }
                                    }
                                }
                                int at = (o * g.kernelH() + ky) * g.kernelW() + kx;
                                assertEquals(sum, gotDw[at], 1e-5 * (1 + mag), g + " dW at " + at);
                            }
                        }
                    }
                }
            }
        }
    }

    /** Parameters after 3 SGD steps at batch 37 (odd: uneven chunks and vector tails), then eval logits. */
    private static List<float[]> trainAndInfer(int threads) {
        Generator data = new Generator(5);
        float[] images = new float[37 * 28 * 28];
        data.fillUniform(images, -1f, 1f);
        float[] labels = new float[37];
        for (int i = 0; i < labels.length; i++) {
            labels[i] = data.nextInt(10);
        }
        List<float[]> out = new ArrayList<>();
        try (CpuBackend backend = new CpuBackend(threads)) {
            Device dev = Device.of("cpu", backend);
            try (LeNet5 model = new LeNet5(dev, new Generator(42));
                 SGD sgd = new SGD(model.parameters(), 0.1f, 0.9f, 0f, false, 0f)) {
                CrossEntropyLoss loss = new CrossEntropyLoss();
                for (int step = 0; step < 3; step++) {
                    try (TensorScope s = TensorScope.open()) {
                        sgd.zeroGrad();
                        Tensor l = loss.forward(model.forward(Tensor.of(dev, images, 37, 1, 28, 28)),
                                Tensor.of(dev, labels, 37));
                        l.backward();
                        sgd.step();
                    }
                }
                for (Tensor p : model.parameters()) {
                    out.add(p.toArray());
                }
                model.eval();
                try (GradMode g = GradMode.noGrad(); TensorScope s = TensorScope.open()) {
                    out.add(model.forward(Tensor.of(dev, images, 37, 1, 28, 28)).toArray());
                }
            }
        }
        return out;
    }

    /**
     * The fused training kernels (batch norm then an activation, forward and backward; a sum then an activation) give
     * bit for bit what the kernels they fuse give in turn, at 1 and 3 threads, on ResNet's batch-norm shapes (smaller
     * batches), a row-wise BatchNorm1d shape and planes shorter than a vector; dx not wanted takes the scratch path.
     */
    @Test
    void fusedBatchNormAndAddActivationsEqualTheKernelsInTurnAtOneAndThreeThreads() {
        BatchNormGeometry[] shapes = {
                new BatchNormGeometry(8, 16, 28 * 28), new BatchNormGeometry(8, 32, 14 * 14),
                new BatchNormGeometry(8, 64, 7 * 7), new BatchNormGeometry(33, 40, 1), new BatchNormGeometry(5, 3, 3),
        };
        Generator gen = new Generator(11);
        try (Parallel one = new Parallel(1); Parallel three = new Parallel(3)) {
            for (BatchNormGeometry g : shapes) {
                int n = (int) g.length();
                int c = g.channels();
                float[] x = new float[n];
                float[] dy = new float[n];
                float[] gamma = new float[c];
                float[] beta = new float[c];
                gen.fillUniform(x, -1f, 2f);
                gen.fillUniform(dy, -1f, 1f);
                gen.fillUniform(gamma, 0.5f, 2f);
                gen.fillUniform(beta, -1f, 1f);
                for (Activation a : new Activation[]{Activation.RELU, Activation.SIGMOID, Activation.RELU6}) {
                    String what = a + " " + g + " (" + SimdSupport.describe() + " kernels)";
                    float[] z = new float[n];
                    float[] mean = new float[c];
                    float[] invStd = new float[c];
                    float[] y = new float[n];
                    BatchNormKernels.forwardTraining(g, x, gamma, beta, 1e-5f, z, mean, invStd, one);
                    ActivationKernels.forward(a, z, y, n, one);
                    float[] dz = new float[n];
                    ActivationKernels.backward(a, z, y, dy, dz, n, one);
                    float[] dx = new float[n];
                    float[] dGamma = new float[c];
                    float[] dBeta = new float[c];
                    BatchNormKernels.backward(g, x, dz, gamma, mean, invStd, dx, dGamma, dBeta, one);
                    for (Parallel par : new Parallel[]{one, three}) {
                        float[] fy = new float[n];
                        float[] fMean = new float[c];
                        float[] fInvStd = new float[c];
                        BatchNormKernels.forwardTraining(g, a, x, gamma, beta, 1e-5f, fy, fMean, fInvStd, par);
                        assertArrayEquals(y, fy, what + " y");
                        assertArrayEquals(mean, fMean, what + " mean");
                        assertArrayEquals(invStd, fInvStd, what + " invStd");
                        float[] fdx = new float[n];
                        float[] fdGamma = new float[c];
                        float[] fdBeta = new float[c];
                        BatchNormKernels.backward(g, a, x, fy, dy, gamma, fMean, fInvStd, fdx, fdGamma, fdBeta, par);
                        assertArrayEquals(dx, fdx, what + " dx");
                        assertArrayEquals(dGamma, fdGamma, what + " dGamma");
                        assertArrayEquals(dBeta, fdBeta, what + " dBeta");
                        float[] pdGamma = new float[c];
                        float[] pdBeta = new float[c];
                        BatchNormKernels.backward(g, a, x, fy, dy, gamma, fMean, fInvStd, null, pdGamma, pdBeta, par);
                        assertArrayEquals(dGamma, pdGamma, what + " dGamma without dx");
                        assertArrayEquals(dBeta, pdBeta, what + " dBeta without dx");
                        float[] sum = new float[n];
                        float[] act = new float[n];
                        int[] shape = {n};
                        ElementwiseKernels.binary(BinaryOp.ADD, x, shape, dy, shape, sum, shape, one);
                        ActivationKernels.forward(a, sum, act, n, one);
                        float[] fused = new float[n];
                        ActivationKernels.addActivation(a, x, dy, fused, n, par);
                        assertArrayEquals(act, fused, what + " addActivation");
                    }
                }
            }
        }
    }
}
