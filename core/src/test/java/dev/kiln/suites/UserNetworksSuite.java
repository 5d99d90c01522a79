package dev.kiln.suites;

import dev.kiln.core.Device;
import dev.kiln.core.Generator;
import dev.kiln.core.GradMode;
import dev.kiln.core.Tensor;
import dev.kiln.core.TensorScope;
import dev.kiln.data.DataLoader;
import dev.kiln.data.ImageSplit;
import dev.kiln.data.Normalization;
import dev.kiln.inference.Predictor;
import dev.kiln.models.Architecture;
import dev.kiln.nn.AdaptiveAvgPool2d;
import dev.kiln.nn.BatchNorm2d;
import dev.kiln.nn.Conv2d;
import dev.kiln.nn.CrossEntropyLoss;
import dev.kiln.nn.Linear;
import dev.kiln.nn.MaxPool2d;
import dev.kiln.nn.Module;
import dev.kiln.nn.StateDict;
import dev.kiln.nn.Upsample;
import dev.kiln.optim.SGD;
import dev.kiln.train.EpochMetrics;
import dev.kiln.train.ModelFiles;
import dev.kiln.train.Trainer;
import dev.kiln.train.TrainingStep;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.BiFunction;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Networks a user writes from the public API alone, beyond a plain sequence: a depthwise-separable network (grouped
 * 3x3 convolution per channel, then a 1x1 convolution, each followed by a batch norm) and a two-level U-Net whose
 * decoder concatenates upsampled features with the encoder's. Each trains through {@link Trainer} and resumes from a
 * checkpoint bit for bit, runs its training step from a captured graph bit for bit like the eager step, and is served
 * by a {@link Predictor} from its model file with every batch norm folded.
 */
public class UserNetworksSuite extends DeviceSuite {

    private static final int SIDE = 16;

    /** A network that knows its batch norms, so a test can count what the Predictor must fold. */
    private abstract static class CountedNet extends Module {
        final List<BatchNorm2d> batchNorms = new ArrayList<>();

        BatchNorm2d bn(String name, Device device, int channels) {
            BatchNorm2d bn = registerModule(name, new BatchNorm2d(device, channels));
            batchNorms.add(bn);
            return bn;
        }
    }

    /** Stem convolution, then two depthwise-separable blocks (the second strided), global pool, linear head. */
    private static final class DepthwiseSeparableNet extends CountedNet {
        final Conv2d stem;
        final BatchNorm2d stemBn;
        final Conv2d dw1;
        final BatchNorm2d dw1Bn;
        final Conv2d pw1;
        final BatchNorm2d pw1Bn;
        final Conv2d dw2;
        final BatchNorm2d dw2Bn;
        final Conv2d pw2;
        final BatchNorm2d pw2Bn;
        final AdaptiveAvgPool2d pool = AdaptiveAvgPool2d.global();
        final Linear fc;

        DepthwiseSeparableNet(Device device, Generator gen) {
            stem = registerModule("stem", Conv2d.builder(1, 8).kernel(3).padding(1).bias(false).build(device, gen));
            stemBn = bn("stem_bn", device, 8);
            dw1 = registerModule("dw1", Conv2d.builder(8, 8).kernel(3).padding(1).groups(8).bias(false).build(device, gen));
            dw1Bn = bn("dw1_bn", device, 8);
            pw1 = registerModule("pw1", Conv2d.builder(8, 16).kernel(1).bias(false).build(device, gen));
            pw1Bn = bn("pw1_bn", device, 16);
            dw2 = registerModule("dw2", Conv2d.builder(16, 16).kernel(3).stride(2).padding(1).groups(16).bias(false)
                    .build(device, gen));
            dw2Bn = bn("dw2_bn", device, 16);
            pw2 = registerModule("pw2", Conv2d.builder(16, 24).kernel(1).bias(false).build(device, gen));
            pw2Bn = bn("pw2_bn", device, 24);
            fc = registerModule("fc", new Linear(device, gen, 24, 10));
        }

        @Override
        public Tensor forward(Tensor x) {
            Tensor h = stemBn.forward(stem.forward(x)).relu();
            h = pw1Bn.forward(pw1.forward(dw1Bn.forward(dw1.forward(h)).relu())).relu();
            h = pw2Bn.forward(pw2.forward(dw2Bn.forward(dw2.forward(h)).relu())).relu();
            return fc.forward(pool.forward(h).flatten(1));
        }
    }

    /** Two-level U-Net: each decoder level concatenates the upsampled features with the encoder's; a pooled linear head. */
    private static final class UNet extends CountedNet {
        final Conv2d enc1;
        final BatchNorm2d enc1Bn;
        final Conv2d enc2;
        final BatchNorm2d enc2Bn;
        final Conv2d bottom;
        final BatchNorm2d bottomBn;
        final Conv2d dec2;
        final BatchNorm2d dec2Bn;
        final Conv2d dec1;
        final BatchNorm2d dec1Bn;
        final MaxPool2d down = new MaxPool2d(2);
        final Upsample up = new Upsample(2);
        final AdaptiveAvgPool2d pool = AdaptiveAvgPool2d.global();
        final Linear fc;

        UNet(Device device, Generator gen) {
            enc1 = registerModule("enc1", Conv2d.builder(1, 8).kernel(3).padding(1).build(device, gen));
            enc1Bn = bn("enc1_bn", device, 8);
            enc2 = registerModule("enc2", Conv2d.builder(8, 16).kernel(3).padding(1).build(device, gen));
            enc2Bn = bn("enc2_bn", device, 16);
            bottom = registerModule("bottom", Conv2d.builder(16, 16).kernel(3).padding(1).build(device, gen));
            bottomBn = bn("bottom_bn", device, 16);
            dec2 = registerModule("dec2", Conv2d.builder(32, 16).kernel(3).padding(1).build(device, gen));
            dec2Bn = bn("dec2_bn", device, 16);
            dec1 = registerModule("dec1", Conv2d.builder(24, 8).kernel(3).padding(1).build(device, gen));
            dec1Bn = bn("dec1_bn", device, 8);
            fc = registerModule("fc", new Linear(device, gen, 8, 10));
        }

        @Override
        public Tensor forward(Tensor x) {
            Tensor e1 = enc1Bn.forward(enc1.forward(x)).relu();
            Tensor e2 = enc2Bn.forward(enc2.forward(down.forward(e1))).relu();
            Tensor b = bottomBn.forward(bottom.forward(down.forward(e2))).relu();
            Tensor d2 = dec2Bn.forward(dec2.forward(Tensor.cat(List.of(up.forward(b), e2), 1))).relu();
            Tensor d1 = dec1Bn.forward(dec1.forward(Tensor.cat(List.of(up.forward(d2), e1), 1))).relu();
            return fc.forward(pool.forward(d1).flatten(1));
        }
    }

    private static Architecture depthwiseArchitecture() {
        return new Architecture("DepthwiseSeparableNet", new int[]{1, SIDE, SIDE},
                d -> new DepthwiseSeparableNet(d, new Generator(0)));
    }

    private static Architecture uNetArchitecture() {
        return new Architecture("SmallUNet", new int[]{1, SIDE, SIDE}, d -> new UNet(d, new Generator(0)));
    }

    private static SGD sgd(Module net) {
        return new SGD(net.parameters(), 0.05f, 0.9f, 0f, false, 1e-4f);
    }

    // ------------------------------------------------------------------ Trainer, checkpoint, resume

    /** 64 training and 32 test images, 10 classes, each class marked by a bright column. */
    private static ImageSplit[] splits() {
        SplittableRandom r = new SplittableRandom(3);
        int px = SIDE * SIDE;
        byte[] images = new byte[96 * px];
        byte[] labels = new byte[96];
        for (int i = 0; i < 96; i++) {
            labels[i] = (byte) r.nextInt(10);
            for (int p = 0; p < px; p++) {
                images[i * px + p] = (byte) (r.nextInt(40) + (p % SIDE == labels[i] ? 200 : 0));
            }
        }
        return new ImageSplit[]{
                new ImageSplit(64, SIDE, SIDE, Arrays.copyOf(images, 64 * px), Arrays.copyOf(labels, 64)),
                new ImageSplit(32, SIDE, SIDE, Arrays.copyOfRange(images, 64 * px, 96 * px),
                        Arrays.copyOfRange(labels, 64, 96))};
    }

    private List<EpochMetrics> train(BiFunction<Device, Generator, ? extends Module> build, int epochs, Path checkpoint,
                                     Path resume, StateDict[] finalState) throws Exception {
        ImageSplit[] s = splits();
        try (DataLoader tl = DataLoader.builder(s[0]).batchSize(16).seed(5).normalization(Normalization.MNIST).build();
             DataLoader vl = DataLoader.builder(s[1]).batchSize(32).shuffle(false).normalization(Normalization.MNIST).build();
             Module model = build.apply(device(), new Generator(9));
             SGD opt = sgd(model)) {
            Trainer t = Trainer.builder().model(model).loss(new CrossEntropyLoss()).optimizer(opt).device(device())
                    .epochs(epochs).seed(9).checkpoint(checkpoint).build();
            if (resume != null) {
                t.resumeFrom(resume);
            }
            List<EpochMetrics> history = t.fit(tl, vl);
            finalState[0] = model.stateDict();
            return history;
        }
    }

    private void assertResumeIsExact(BiFunction<Device, Generator, ? extends Module> build, String bnKey, Path tmp)
            throws Exception {
        StateDict[] straight = new StateDict[1];
        List<EpochMetrics> full = train(build, 2, null, null, straight);
        Path ckpt = tmp.resolve("ckpt.safetensors");
        StateDict[] afterOne = new StateDict[1];
        train(build, 1, ckpt, null, afterOne);
        StateDict[] resumed = new StateDict[1];
        List<EpochMetrics> continued = train(build, 2, null, ckpt, resumed);
        assertEquals(2, continued.size());
        assertEquals(full.get(1).trainLoss(), continued.get(1).trainLoss());
        assertEquals(straight[0].entries().keySet(), resumed[0].entries().keySet());
        boolean secondEpochMoved = false;
        for (String k : straight[0].entries().keySet()) {
            assertArrayEquals(straight[0].get(k).data(), resumed[0].get(k).data(), k);
            secondEpochMoved |= !Arrays.equals(afterOne[0].get(k).data(), straight[0].get(k).data());
        }
        assertTrue(secondEpochMoved, "the second epoch changed the state");
        // 64 samples in batches of 16, two epochs: the resumed run counted the first epoch's batches too
        assertEquals(8L, resumed[0].get(bnKey).longValue());
    }

    @Test
    @DisplayName("a depthwise-separable network trains through Trainer and resumes from its epoch-1 checkpoint bit for bit")
    void depthwiseTrainerResumeIsExact(@TempDir Path tmp) throws Exception {
        assertResumeIsExact(DepthwiseSeparableNet::new, "dw2_bn.num_batches_tracked", tmp);
    }

    @Test
    @DisplayName("a two-level U-Net with cat trains through Trainer and resumes from its epoch-1 checkpoint bit for bit")
    void uNetTrainerResumeIsExact(@TempDir Path tmp) throws Exception {
        assertResumeIsExact(UNet::new, "dec1_bn.num_batches_tracked", tmp);
    }

    // ------------------------------------------------------------------ graph capture

    /** The state after 5 SGD steps (2 eager warm-up steps, then, if {@code graphs}, 3 replays of a captured graph). */
    private Map<String, float[]> steps(BiFunction<Device, Generator, ? extends Module> build, boolean graphs,
                                       boolean[] graphed) {
        Generator data = new Generator(31);
        try (Module net = build.apply(device(), new Generator(30));
             SGD opt = sgd(net);
             TrainingStep step = new TrainingStep(net, new CrossEntropyLoss(), opt, device(), 4,
                     new int[]{1, SIDE, SIDE}, graphs, 2)) {
            for (int s = 0; s < 5; s++) {
                float[] x = new float[4 * SIDE * SIDE];
                data.fillNormal(x, 0f, 1f);
                float[] y = new float[4];
                for (int i = 0; i < 4; i++) {
                    y[i] = data.nextInt(10);
                }
                step.inputs().copyFrom(x);
                step.targets().copyFrom(y);
                step.run();
            }
            step.drain();
            graphed[0] = step.graphed();
            Map<String, float[]> state = new LinkedHashMap<>();
            net.stateDict().entries().forEach((k, v) -> state.put(k, v.data()));
            return state;
        }
    }

    private void assertGraphedEqualsEager(BiFunction<Device, Generator, ? extends Module> build) {
        boolean[] eagerGraphed = {false};
        boolean[] graphed = {false};
        Map<String, float[]> eager = steps(build, false, eagerGraphed);
        Map<String, float[]> replayed = steps(build, true, graphed);
        assertFalse(eagerGraphed[0]);
        assertTrue(graphed[0], "the step should replay from a captured graph after the warm-up");
        assertEquals(eager.keySet(), replayed.keySet());
        Map<String, float[]> initial = new LinkedHashMap<>();
        try (Module fresh = build.apply(device(), new Generator(30))) {
            fresh.stateDict().entries().forEach((k, v) -> initial.put(k, v.data()));
        }
        boolean moved = false;
        for (String key : eager.keySet()) {
            assertArrayEquals(eager.get(key), replayed.get(key), key + " differs between eager and graphed steps");
            moved |= !Arrays.equals(initial.get(key), eager.get(key));
        }
        assertTrue(moved, "the steps changed the state");
    }

    @Test
    @DisplayName("the depthwise-separable network's training step captured as a graph replays bit for bit like the eager step")
    void depthwiseGraphCapture() {
        assertGraphedEqualsEager(DepthwiseSeparableNet::new);
    }

    @Test
    @DisplayName("the U-Net's training step (cat, upsample, batch norms) captured as a graph replays bit for bit like the eager step")
    void uNetGraphCapture() {
        assertGraphedEqualsEager(UNet::new);
    }

    // ------------------------------------------------------------------ serving with folding

    private static float[][] softmaxRows(float[] logits, int classes) {
        float[][] rows = new float[logits.length / classes][classes];
        for (int r = 0; r < rows.length; r++) {
            double max = Double.NEGATIVE_INFINITY;
            for (int c = 0; c < classes; c++) {
                max = Math.max(max, logits[r * classes + c]);
            }
            double sum = 0;
            for (int c = 0; c < classes; c++) {
                sum += Math.exp(logits[r * classes + c] - max);
            }
            for (int c = 0; c < classes; c++) {
                rows[r][c] = (float) (Math.exp(logits[r * classes + c] - max) / sum);
            }
        }
        return rows;
    }

    private void assertServedWithEveryBatchNormFolded(CountedNet net, Architecture arch, Path dir) throws Exception {
        // A few training steps move the running statistics and affine parameters away from their identity defaults.
        Generator data = new Generator(41);
        try (SGD opt = sgd(net);
             TrainingStep step = new TrainingStep(net, new CrossEntropyLoss(), opt, device(), 8,
                     new int[]{1, SIDE, SIDE}, false, 1)) {
            for (int s = 0; s < 4; s++) {
                float[] x = new float[8 * SIDE * SIDE];
                data.fillNormal(x, 0.5f, 0.5f);
                float[] y = new float[8];
                for (int i = 0; i < 8; i++) {
                    y[i] = data.nextInt(10);
                }
                step.inputs().copyFrom(x);
                step.targets().copyFrom(y);
                step.run();
            }
            step.drain();
        }
        for (BatchNorm2d bn : net.batchNorms) {
            assertFalse(Arrays.equals(new float[bn.runningVar().toArray().length], bn.runningMean().toArray()),
                    "training moved the running mean");
        }
        Path file = dir.resolve(arch.name() + ".safetensors");
        ModelFiles.save(file, net, arch, Normalization.NONE, Map.of("note", "user network"));

        int n = 6;
        float[][] images = new float[n][SIDE * SIDE];
        Generator g = new Generator(43);
        float[] flat = new float[n * SIDE * SIDE];
        for (int i = 0; i < n; i++) {
            for (int p = 0; p < SIDE * SIDE; p++) {
                images[i][p] = g.nextInt(256) / 255f;
                flat[i * SIDE * SIDE + p] = images[i][p];
            }
        }
        float[] own;
        net.eval();
        try (TensorScope scope = TensorScope.open(); GradMode noGrad = GradMode.noGrad()) {
            own = net.forward(Tensor.of(device(), flat, n, 1, SIDE, SIDE)).toArray();
        }
        float[][] expected = softmaxRows(own, 10);
        try (Predictor folded = Predictor.load(file, Predictor.Options.defaults().device(device()).architecture(arch));
             Predictor plain = Predictor.load(file, Predictor.Options.defaults().device(device()).architecture(arch)
                     .foldBatchNorm(false))) {
            assertEquals(arch.name(), folded.architecture().name());
            assertEquals(net.batchNorms.size(), folded.foldedBatchNorms(), "every batch norm folded");
            assertEquals(0, plain.foldedBatchNorms());
            float[][] probs = folded.probabilities(images);
            float[][] plainProbs = plain.probabilities(images);
            assertEquals(n, probs.length);
            for (int i = 0; i < n; i++) {
                assertClose(expected[i], plainProbs[i], 0, 1e-6, "unfolded predictor vs eval model, image " + i);
                assertClose(expected[i], probs[i], 0, 1e-4, "folded predictor vs unfolded eval model, image " + i);
            }
        }
    }

    @Test
    @DisplayName("the depthwise-separable network is saved with its Architecture and served with all 5 batch norms folded; probabilities match the eval model to 1e-4")
    void depthwiseServedFolded(@TempDir Path dir) throws Exception {
        try (DepthwiseSeparableNet net = new DepthwiseSeparableNet(device(), new Generator(21))) {
            assertEquals(5, net.batchNorms.size());
            assertServedWithEveryBatchNormFolded(net, depthwiseArchitecture(), dir);
        }
    }

    @Test
    @DisplayName("the U-Net is saved with its Architecture and served with all 5 batch norms folded (skip outputs read twice); probabilities match the eval model to 1e-4")
    void uNetServedFolded(@TempDir Path dir) throws Exception {
        try (UNet net = new UNet(device(), new Generator(22))) {
            assertEquals(5, net.batchNorms.size());
            assertServedWithEveryBatchNormFolded(net, uNetArchitecture(), dir);
        }
    }
}
