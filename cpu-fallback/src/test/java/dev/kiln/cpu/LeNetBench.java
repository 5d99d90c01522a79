package dev.kiln.cpu;

import dev.kiln.backend.Activation;
import dev.kiln.backend.BatchNormGeometry;
import dev.kiln.backend.Buffer;
import dev.kiln.backend.ConvGeometry;
import dev.kiln.backend.PoolGeometry;
import dev.kiln.backend.SgdHyper;

/**
 * Throwaway timing of a LeNet-5 + batch norm training step and inference pass built directly on the backend
 * (not a test: run by hand, {@code java -cp ... dev.kiln.cpu.LeNetBench [batch] [threads]}).
 */
public final class LeNetBench {

    public static void main(String[] args) {
        int batch = args.length > 0 ? Integer.parseInt(args[0]) : 64;
        int threads = args.length > 1 ? Integer.parseInt(args[1]) : Runtime.getRuntime().availableProcessors();
        try (CpuBackend b = new CpuBackend(threads)) {
            Net net = new Net(b, batch);
            for (int i = 0; i < 300; i++) net.train();
            long t0 = System.nanoTime();
            int steps = 300;
            for (int i = 0; i < steps; i++) net.train();
            double s = (System.nanoTime() - t0) / 1e9;
            System.out.printf("batch %d threads %d: train %.0f images/s (%.3f ms/step)%n", batch, threads, steps * batch / s, s / steps * 1e3);
            for (int i = 0; i < 300; i++) net.infer();
            t0 = System.nanoTime();
            for (int i = 0; i < steps; i++) net.infer();
            s = (System.nanoTime() - t0) / 1e9;
            System.out.printf("batch %d threads %d: infer %.0f images/s%n", batch, threads, steps * batch / s);
            net.profile();
        }
    }

    static final class Net {
        final CpuBackend b;
        final int n;
        final ConvGeometry c1, c2;
        final PoolGeometry p1, p2;
        final BatchNormGeometry bn1, bn2, bn3, bn4;
        final Buffer x, t, w1, b1, w2, b2, f1, f2, f3, fb1, fb2, fb3;
        final Buffer[] g = new Buffer[12];
        final Buffer y1, z1, a1, q1, y2, z2, a2, q2, h1, hz1, ha1, h2, hz2, ha2, logits, probs, loss, dloss;
        final Buffer[] bnMean = new Buffer[4], bnInv = new Buffer[4], gamma = new Buffer[4], beta = new Buffer[4];
        final Buffer[] dGamma = new Buffer[4], dBeta = new Buffer[4];
        final Buffer d1, d2, d3, d4, d5, d6, d7, d8, ones;
        final SgdHyper sgd = new SgdHyper(0.01f, 0f, 0f, false, 0f, false);
        final long[] time = new long[16];

        Net(CpuBackend b, int n) {
            this.b = b;
            this.n = n;
            c1 = new ConvGeometry(n, 1, 28, 28, 6, 5, 5, 1, 1, 2, 2, 1, 1);
            c2 = new ConvGeometry(n, 6, 14, 14, 16, 5, 5, 1, 1, 0, 0, 1, 1);
            p1 = new PoolGeometry(n, 6, 28, 28, 2, 2, 2, 2, 0, 0);
            p2 = new PoolGeometry(n, 16, 10, 10, 2, 2, 2, 2, 0, 0);
            bn1 = new BatchNormGeometry(n, 6, 784);
            bn2 = new BatchNormGeometry(n, 16, 100);
            bn3 = new BatchNormGeometry(n, 120, 1);
            bn4 = new BatchNormGeometry(n, 84, 1);
            java.util.Random r = new java.util.Random(1);
            x = rand(r, n * 784);
            float[] tt = new float[n];
            for (int i = 0; i < n; i++) tt[i] = r.nextInt(10);
            t = b.upload(tt, 0, n);
            w1 = rand(r, 150); b1 = rand(r, 6); w2 = rand(r, 2400); b2 = rand(r, 16);
            f1 = rand(r, 48000); fb1 = rand(r, 120); f2 = rand(r, 10080); fb2 = rand(r, 84); f3 = rand(r, 840); fb3 = rand(r, 10);
            Buffer[] params = {w1, b1, w2, b2, f1, fb1, f2, fb2, f3, fb3};
            for (int i = 0; i < params.length; i++) g[i] = b.allocate(params[i].length());
            int[] ch = {6, 16, 120, 84};
            for (int i = 0; i < 4; i++) {
                bnMean[i] = b.allocate(ch[i]); bnInv[i] = b.allocate(ch[i]); gamma[i] = rand(r, ch[i]); beta[i] = rand(r, ch[i]);
                dGamma[i] = b.allocate(ch[i]); dBeta[i] = b.allocate(ch[i]);
            }
            y1 = b.allocate(n * 4704L); z1 = b.allocate(n * 4704L); a1 = b.allocate(n * 4704L); q1 = b.allocate(n * 1176L);
            y2 = b.allocate(n * 1600L); z2 = b.allocate(n * 1600L); a2 = b.allocate(n * 1600L); q2 = b.allocate(n * 400L);
            h1 = b.allocate(n * 120L); hz1 = b.allocate(n * 120L); ha1 = b.allocate(n * 120L);
            h2 = b.allocate(n * 84L); hz2 = b.allocate(n * 84L); ha2 = b.allocate(n * 84L);
            logits = b.allocate(n * 10L); probs = b.allocate(n * 10L); loss = b.allocate(1);
            dloss = b.upload(new float[]{1f}, 0, 1);
            d1 = b.allocate(n * 4704L); d2 = b.allocate(n * 4704L); d3 = b.allocate(n * 1176L); d4 = b.allocate(n * 1600L);
            d5 = b.allocate(n * 1600L); d6 = b.allocate(n * 400L); d7 = b.allocate(n * 120L); d8 = b.allocate(n * 120L);
            float[] o = new float[n];
            java.util.Arrays.fill(o, 1f);
            ones = b.upload(o, 0, n);
        }

        Buffer rand(java.util.Random r, int len) {
            float[] a = new float[len];
            for (int i = 0; i < len; i++) a[i] = (r.nextFloat() - 0.5f) * 0.2f;
            return b.upload(a, 0, len);
        }

        private int k;
        private long last;

        private void tick() {
            long now = System.nanoTime();
            time[k++] += now - last;
            last = now;
        }

        void forward(boolean train) {
            k = 0;
            last = System.nanoTime();
            b.conv2dForward(c1, x, w1, b1, y1); tick();
            b.batchNormForwardTraining(bn1, y1, gamma[0], beta[0], 1e-5f, z1, bnMean[0], bnInv[0]); tick();
            b.activationForward(Activation.SIGMOID, z1, a1, n * 4704L); tick();
            b.avgPool2dForward(p1, a1, q1); tick();
            b.conv2dForward(c2, q1, w2, b2, y2); tick();
            b.batchNormForwardTraining(bn2, y2, gamma[1], beta[1], 1e-5f, z2, bnMean[1], bnInv[1]);
            b.activationForward(Activation.SIGMOID, z2, a2, n * 1600L);
            b.avgPool2dForward(p2, a2, q2); tick();
            linear(q2, f1, fb1, h1, 400, 120);
            b.batchNormForwardTraining(bn3, h1, gamma[2], beta[2], 1e-5f, hz1, bnMean[2], bnInv[2]);
            b.activationForward(Activation.SIGMOID, hz1, ha1, n * 120L);
            linear(ha1, f2, fb2, h2, 120, 84);
            b.batchNormForwardTraining(bn4, h2, gamma[3], beta[3], 1e-5f, hz2, bnMean[3], bnInv[3]);
            b.activationForward(Activation.SIGMOID, hz2, ha2, n * 84L);
            linear(ha2, f3, fb3, logits, 84, 10);
            b.softmaxCrossEntropyForward(n, 10, logits, t, probs, loss); tick();
        }

        void linear(Buffer in, Buffer w, Buffer bias, Buffer out, int i, int o) {
            b.broadcastTo(bias, new int[]{1, o}, out, new int[]{n, o});
            b.gemm(false, true, n, o, i, 1f, in, w, 1f, out);
        }

        void linearBack(Buffer in, Buffer w, Buffer dout, Buffer din, Buffer dw, Buffer db, int i, int o) {
            b.gemm(true, false, o, i, n, 1f, dout, in, 0f, dw);
            b.sumTo(dout, new int[]{n, o}, db, new int[]{1, o});
            if (din != null) b.gemm(false, false, n, i, o, 1f, dout, w, 0f, din);
        }

        void train() {
            forward(true);
            b.softmaxCrossEntropyBackward(n, 10, probs, t, dloss, d8); // d8: (n,10) within n*120
            linearBack(ha2, f3, d8, d7, g[8], g[9], 84, 10);             // d7: (n,84)
            b.activationBackward(Activation.SIGMOID, hz2, ha2, d7, d7, n * 84L);
            b.batchNormBackward(bn4, h2, d7, gamma[3], bnMean[3], bnInv[3], d7, dGamma[3], dBeta[3]);
            linearBack(ha1, f2, d7, d8, g[6], g[7], 120, 84);            // d8: (n,120)
            b.activationBackward(Activation.SIGMOID, hz1, ha1, d8, d8, n * 120L);
            b.batchNormBackward(bn3, h1, d8, gamma[2], bnMean[2], bnInv[2], d7, dGamma[2], dBeta[2]);
            linearBack(q2, f1, d7, d6, g[4], g[5], 400, 120); tick();
            b.avgPool2dBackward(p2, d6, d5);
            b.activationBackward(Activation.SIGMOID, z2, a2, d5, d5, n * 1600L);
            b.batchNormBackward(bn2, y2, d5, gamma[1], bnMean[1], bnInv[1], d4, dGamma[1], dBeta[1]); tick();
            b.conv2dBackwardWeight(c2, q1, d4, g[2]); tick();
            b.conv2dBackwardBias(c2, d4, g[3]);
            b.conv2dBackwardData(c2, w2, d4, d3); tick();
            b.avgPool2dBackward(p1, d3, d2);
            b.activationBackward(Activation.SIGMOID, z1, a1, d2, d2, n * 4704L);
            b.batchNormBackward(bn1, y1, d2, gamma[0], bnMean[0], bnInv[0], d1, dGamma[0], dBeta[0]); tick();
            b.conv2dBackwardWeight(c1, x, d1, g[0]);
            b.conv2dBackwardBias(c1, d1, g[1]); tick();
            Buffer[] params = {w1, b1, w2, b2, f1, fb1, f2, fb2, f3, fb3};
            for (int i = 0; i < params.length; i++) b.sgdStep(sgd, params[i], g[i], null, params[i].length());
            tick();
        }

        void infer() {
            forward(false);
        }

        void profile() {
            java.util.Arrays.fill(time, 0);
            for (int i = 0; i < 200; i++) train();
            String[] names = {"conv1 fwd", "bn1 fwd", "sigmoid1", "pool1", "conv2 fwd", "bn2/sig/pool2", "fc+bn fwd+CE",
                    "fc back", "pool2/sig/bn2 back", "conv2 dW", "conv2 dX+db", "pool1/sig/bn1 back", "conv1 dW+db", "sgd"};
            for (int i = 0; i < names.length; i++) {
                System.out.printf("  %-20s %8.1f us/step%n", names[i], time[i] / 200 / 1e3);
            }
        }
    }
}
