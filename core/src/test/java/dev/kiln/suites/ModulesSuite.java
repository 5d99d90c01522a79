package dev.kiln.suites;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.kiln.core.Generator;
import dev.kiln.core.GradMode;
import dev.kiln.core.Tensor;
import dev.kiln.core.TensorScope;
import dev.kiln.data.Normalization;
import dev.kiln.inference.Predictor;
import dev.kiln.io.SafeTensors;
import dev.kiln.models.Architecture;
import dev.kiln.models.ResNet;
import dev.kiln.nn.BatchNorm;
import dev.kiln.nn.BatchNorm2d;
import dev.kiln.nn.Conv2d;
import dev.kiln.nn.CrossEntropyLoss;
import dev.kiln.nn.Identity;
import dev.kiln.nn.Linear;
import dev.kiln.nn.Module;
import dev.kiln.nn.ModuleDict;
import dev.kiln.nn.ModuleList;
import dev.kiln.nn.StateDict;
import dev.kiln.nn.init.SkipInit;
import dev.kiln.optim.Adam;
import dev.kiln.optim.ParamGroup;
import dev.kiln.optim.SGD;
import dev.kiln.train.ModelFiles;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Writing your own model: containers and their state-dict names, modules with several inputs and outputs,
 * initialisation skipped for loading, parameter-group rules, integer class targets, and serving a model that is not
 * a flat sequence (batch norms folded wherever the dataflow allows, a PyTorch-written file served from options).
 */
public class ModulesSuite extends DeviceSuite {

    // ------------------------------------------------------------------ containers

    /** Two heads over one trunk: a ModuleList of layers and a ModuleDict of heads, two outputs. */
    private static final class TwoHeads extends Module {
        final ModuleList trunk;
        final ModuleDict heads;

        TwoHeads(dev.kiln.core.Device device, Generator gen) {
            trunk = registerModule("layers", new ModuleList(new Linear(device, gen, 4, 8), new Identity(),
                    new Linear(device, gen, 8, 8)));
            heads = registerModule("heads", new ModuleDict(Map.of("digit", new Linear(device, gen, 8, 10))));
            heads.put("parity", new Linear(device, gen, 8, 2));
        }

        @Override
        public Tensor[] forwardAll(Tensor... inputs) {
            Tensor x = inputs[0];
            for (Module m : trunk) {
                x = m.forward(x).relu();
            }
            return new Tensor[]{heads.get("digit").forward(x), heads.get("parity").forward(x)};
        }
    }

    /** Two inputs, one output. */
    private static final class Blend extends Module {
        @Override
        public Tensor[] forwardAll(Tensor... inputs) {
            if (inputs.length != 2) {
                throw new IllegalArgumentException("Blend takes 2 inputs, got " + inputs.length);
            }
            return new Tensor[]{inputs[0].mul(0.25f).add(inputs[1].mul(0.75f))};
        }
    }

    @Test
    @DisplayName("ModuleList and ModuleDict register their members under PyTorch's names (layers.0.weight, heads.digit.bias); a multi-output module returns every output")
    void containersAndMultiOutput() {
        try (TensorScope scope = TensorScope.open(); TwoHeads net = new TwoHeads(device(), new Generator(1))) {
            assertEquals(List.of("layers.0.weight", "layers.0.bias", "layers.2.weight", "layers.2.bias",
                    "heads.digit.weight", "heads.digit.bias", "heads.parity.weight", "heads.parity.bias"),
                    new ArrayList<>(net.stateDict().entries().keySet()));
            assertEquals(List.of("", "layers", "layers.0", "layers.1", "layers.2", "heads", "heads.digit", "heads.parity"),
                    new ArrayList<>(net.namedModules().keySet()));
            assertSame(net.trunk.get(2), net.trunk.get(-1));
            assertThrows(IndexOutOfBoundsException.class, () -> net.trunk.get(3));
            IllegalArgumentException missing = assertThrows(IllegalArgumentException.class, () -> net.heads.get("colour"));
            assertTrue(missing.getMessage().contains("colour") && missing.getMessage().contains("digit"), missing.getMessage());

            Tensor x = randn(5, 3, 4);
            Tensor[] out = net.forwardAll(x);
            assertEquals(2, out.length);
            assertArrayEquals(new int[]{3, 10}, out[0].shape());
            assertArrayEquals(new int[]{3, 2}, out[1].shape());
            IllegalStateException one = assertThrows(IllegalStateException.class, () -> net.forward(x));
            assertTrue(one.getMessage().contains("forwardAll"), one.getMessage());
            // gradients reach the shared trunk from both heads
            out[0].sum().add(out[1].sum()).backward();
            assertNotNull(net.trunk.get(0).parameters().get(0).grad());
        }
    }

    @Test
    @DisplayName("a two-input module runs through forward(a, b) and forwardAll; Identity passes its inputs through; a module with one input refuses two")
    void multiInput() {
        try (TensorScope scope = TensorScope.open()) {
            Tensor a = tensor(new float[]{4, 8}, 2);
            Tensor b = tensor(new float[]{0, 4}, 2);
            assertArrayEquals(new float[]{1, 5}, new Blend().forward(a, b).toArray());
            assertArrayEquals(new float[]{1, 5}, new Blend().forwardAll(a, b)[0].toArray());
            Identity id = new Identity();
            assertSame(a, id.forward(a));
            Tensor[] both = id.forwardAll(a, b);
            assertSame(a, both[0]);
            assertSame(b, both[1]);
            Linear lin = new Linear(device(), new Generator(0), 2, 2);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> lin.forwardAll(a, b));
            assertTrue(e.getMessage().contains("one input"), e.getMessage());
            lin.close();
            IllegalStateException none = assertThrows(IllegalStateException.class, () -> new Module() { }.forward(a));
            assertTrue(none.getMessage().contains("overrides neither"), none.getMessage());
        }
    }

    // ------------------------------------------------------------------ skip init

    @Test
    @DisplayName("a model built inside SkipInit draws nothing from its generator and starts at zero; Architecture.buildForLoading does so")
    void skipInit() {
        Generator used = Generator.pytorch(0);
        Generator fresh = Generator.pytorch(0);
        try (SkipInit ignored = SkipInit.enter(); ResNet net = new ResNet(device(), used)) {
            assertTrue(SkipInit.active());
            for (Map.Entry<String, Tensor> p : net.namedParameters().entrySet()) {
                if (p.getKey().endsWith("conv1.weight") || p.getKey().equals("fc.weight")) {
                    for (float v : p.getValue().toArray()) {
                        assertEquals(0f, v, p.getKey() + " is drawn despite SkipInit");
                    }
                }
            }
        }
        assertFalse(SkipInit.active());
        assertEquals(fresh.nextLong(), used.nextLong(), "the generator moved while initialisation was skipped");
        try (Module m = Architecture.RESNET.buildForLoading(device())) {
            assertEquals(0f, m.namedParameters().get("fc.weight").toArray()[0]);
        }
        // outside the scope the layers draw again
        try (ResNet net = new ResNet(device(), Generator.pytorch(0))) {
            assertNotEquals(0f, net.namedParameters().get("fc.weight").toArray()[0]);
        }
    }

    // ------------------------------------------------------------------ optimizers and losses

    @Test
    @DisplayName("parameter groups: a parameter in two groups, an option the optimizer lacks and a missing lr are refused by name; setLr keeps the groups' ratios")
    void parameterGroupRules() {
        try (TensorScope scope = TensorScope.open()) {
            Tensor a = tensor(new float[]{1, 2}, 2).requiresGrad(true);
            Tensor b = tensor(new float[]{3}, 1).requiresGrad(true);
            IllegalArgumentException twice = assertThrows(IllegalArgumentException.class,
                    () -> SGD.builder().lr(0.1f).group(ParamGroup.of(a, b)).group(ParamGroup.of(b)).build());
            assertTrue(twice.getMessage().contains("groups 0 and 1"), twice.getMessage());
            IllegalArgumentException option = assertThrows(IllegalArgumentException.class,
                    () -> Adam.builder().lr(0.1f).group(ParamGroup.of(a).momentum(0.9f)).build());
            assertTrue(option.getMessage().contains("'momentum'"), option.getMessage());
            IllegalArgumentException noLr = assertThrows(IllegalArgumentException.class,
                    () -> SGD.builder().params(List.of(a)).build());
            assertTrue(noLr.getMessage().contains("lr is required"), noLr.getMessage());
            IllegalArgumentException badLr = assertThrows(IllegalArgumentException.class,
                    () -> SGD.builder().lr(0.1f).group(ParamGroup.of(a).lr(-1f)).build());
            assertTrue(badLr.getMessage().contains("group 0"), badLr.getMessage());
            try (SGD sgd = SGD.builder().lr(0.1f).group(ParamGroup.of(a)).group(ParamGroup.of(b).lr(0.01f)).build()) {
                assertEquals(2, sgd.groupCount());
                sgd.setLr(0.05f);
                assertEquals(0.05f, sgd.lr(0));
                assertEquals(0.005f, sgd.lr(1), 1e-9f);
                sgd.setLr(1, 0.5f);
                a.setGrad(tensor(new float[]{1, 1}, 2));
                b.setGrad(tensor(new float[]{1}, 1));
                sgd.step();
                assertArrayEquals(new float[]{0.95f, 1.95f}, a.toArray(), 1e-7f);
                assertArrayEquals(new float[]{2.5f}, b.toArray(), 1e-7f);
            }
        }
    }

    @Test
    @DisplayName("a guarded SGD step with several parameter groups skips every group on a NaN loss and counts the skip once")
    void guardedStepWithGroups() {
        try (TensorScope scope = TensorScope.open()) {
            Tensor a = tensor(new float[]{1, 2}, 2).requiresGrad(true);
            Tensor b = tensor(new float[]{3}, 1).requiresGrad(true);
            Tensor c = tensor(new float[]{5}, 1).requiresGrad(true);
            try (SGD sgd = SGD.builder().lr(0.1f).momentum(0.9f).group(ParamGroup.of(a))
                    .group(ParamGroup.of(b).momentum(0f)).group(ParamGroup.of(c).lr(0.5f)).build()) {
                for (Tensor p : List.of(a, b, c)) {
                    p.setGrad(Tensor.ones(device(), p.shape()));
                }
                sgd.step(tensor(new float[]{1f}, 1)); // a first, finite step starts the momentum buffers
                float[][] before = {a.toArray(), b.toArray(), c.toArray()};
                for (int i = 0; i < 2; i++) {
                    sgd.step(tensor(new float[]{Float.NaN}, 1));
                }
                assertEquals(2, sgd.skippedSteps());
                assertArrayEquals(before[0], a.toArray());
                assertArrayEquals(before[1], b.toArray());
                assertArrayEquals(before[2], c.toArray());
                sgd.step(tensor(new float[]{0.5f}, 1));
                assertEquals(2, sgd.skippedSteps());
                // group 2: lr 0.5, momentum 0.9: buffer 1 -> 1.9, so 5 - 0.5 - 0.95
                assertArrayEquals(new float[]{3.55f}, c.toArray(), 1e-6f);
                // group 1: lr 0.1, no momentum: two plain steps
                assertArrayEquals(new float[]{2.8f}, b.toArray(), 1e-6f);
            }
        }
    }

    @Test
    @DisplayName("CrossEntropyLoss: int[] and long[] targets give the float-tensor loss; a class out of range or a bad smoothing is refused by value")
    void integerTargets() {
        try (TensorScope scope = TensorScope.open()) {
            Tensor logits = randn(3, 4, 5);
            CrossEntropyLoss ce = new CrossEntropyLoss();
            float byFloats = ce.forward(logits, tensor(new float[]{0, 4, 2, 1}, 4)).item();
            assertEquals(byFloats, ce.forward(logits, new int[]{0, 4, 2, 1}).item());
            assertEquals(byFloats, ce.forward(logits, new long[]{0, 4, 2, 1}).item());
            IllegalArgumentException range = assertThrows(IllegalArgumentException.class,
                    () -> ce.forward(logits, new int[]{0, 5, 2, 1}));
            assertTrue(range.getMessage().contains("target 5 at index 1"), range.getMessage());
            assertThrows(IllegalArgumentException.class, () -> ce.forward(logits, new int[]{0, 1}));
            assertThrows(IllegalArgumentException.class, () -> new CrossEntropyLoss(1.5f));
        }
    }

    /** A ResNet trained by TrainingStep (SGD with two parameter groups) for 5 steps; its state afterwards. */
    private Map<String, float[]> resnetSteps(boolean graphs, boolean[] graphed) {
        Generator data = new Generator(31);
        try (ResNet net = new ResNet(device(), new Generator(30));
             SGD sgd = groupedSgd(net);
             dev.kiln.train.TrainingStep step = new dev.kiln.train.TrainingStep(net, new CrossEntropyLoss(), sgd,
                     device(), 4, new int[]{1, 16, 16}, graphs, 2)) {
            for (int s = 0; s < 5; s++) {
                float[] x = new float[4 * 256];
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
            Map<String, float[]> state = new java.util.LinkedHashMap<>();
            net.stateDict().entries().forEach((k, v) -> state.put(k, v.data()));
            return state;
        }
    }

    private static SGD groupedSgd(Module net) {
        List<Tensor> decay = new ArrayList<>();
        List<Tensor> noDecay = new ArrayList<>();
        for (Tensor p : net.parameters()) {
            (p.dim() > 1 ? decay : noDecay).add(p);
        }
        return SGD.builder().lr(0.05f).momentum(0.9f).weightDecay(1e-3f)
                .group(ParamGroup.of(decay)).group(ParamGroup.of(noDecay).weightDecay(0f).lr(0.02f).momentum(0f)).build();
    }

    @Test
    @DisplayName("batch norm with a fused ReLU (training and eval) and the fused residual add + ReLU give bit for bit the"
            + " ops in turn: outputs, input and parameter gradients, running statistics")
    void fusedBatchNormAndAddActivationsEqualTheOpsInTurn() {
        Map<String, float[]> fused = batchNormAndAddSteps(true);
        Map<String, float[]> inTurn = batchNormAndAddSteps(false);
        assertEquals(inTurn.keySet(), fused.keySet());
        for (String key : inTurn.keySet()) {
            assertArrayEquals(inTurn.get(key), fused.get(key), key + " differs between the fused and the unfused ops");
        }
        // the ReLU did cut: some outputs are 0 and some positive, so the mask in the backward was exercised
        float[] y = fused.get("train y");
        assertTrue(java.util.stream.IntStream.range(0, y.length).anyMatch(i -> y[i] == 0f));
        assertTrue(java.util.stream.IntStream.range(0, y.length).anyMatch(i -> y[i] > 0f));
    }

    private Map<String, float[]> batchNormAndAddSteps(boolean fused) {
        Map<String, float[]> out = new java.util.TreeMap<>();
        try (TensorScope scope = TensorScope.open(); BatchNorm2d bn = new BatchNorm2d(device(), 6)) {
            bn.weight().copyFrom(randn(3, 6).toArray());
            bn.bias().copyFrom(randn(4, 6).toArray());
            for (int step = 0; step < 2; step++) {
                Tensor x = randn(10 + step, 4, 6, 5, 5).requiresGrad(true);
                Tensor skip = randn(20 + step, 4, 6, 5, 5).requiresGrad(true);
                Tensor weights = randn(30 + step, 4, 6, 5, 5);
                Tensor y = fused ? bn.forward(x, dev.kiln.backend.Activation.RELU) : bn.forward(x).relu();
                Tensor z = fused ? dev.kiln.nn.functional.FusedOps.addActivation(y, skip, dev.kiln.backend.Activation.RELU)
                        : y.add(skip).relu();
                z.mul(weights).sum().backward();
                out.put("train y", y.toArray());
                out.put("step " + step + " z", z.toArray());
                out.put("step " + step + " dx", x.grad().toArray());
                out.put("step " + step + " dskip", skip.grad().toArray());
                out.put("step " + step + " dweight", bn.weight().grad().toArray());
                out.put("step " + step + " dbias", bn.bias().grad().toArray());
                out.put("step " + step + " running_mean", bn.runningMean().toArray());
                out.put("step " + step + " running_var", bn.runningVar().toArray());
                bn.weight().zeroGrad();
                bn.bias().zeroGrad();
            }
            bn.eval();
            try (GradMode ignored = GradMode.noGrad()) {
                Tensor x = randn(40, 4, 6, 5, 5);
                out.put("eval y", (fused ? bn.forward(x, dev.kiln.backend.Activation.RELU) : bn.forward(x).relu()).toArray());
            }
        }
        return out;
    }

    @Test
    @DisplayName("the ResNet's training step (SGD with two parameter groups) captured as a graph replays bit for bit like the eager step")
    void resnetGraphCapture() {
        boolean[] eagerGraphed = {false};
        boolean[] graphed = {false};
        Map<String, float[]> eager = resnetSteps(false, eagerGraphed);
        Map<String, float[]> replayed = resnetSteps(true, graphed);
        assertFalse(eagerGraphed[0]);
        assertTrue(graphed[0], "the ResNet step should replay from a captured graph after the warm-up");
        for (String key : eager.keySet()) {
            assertArrayEquals(eager.get(key), replayed.get(key), key + " differs between eager and graphed steps");
        }
    }

    private List<dev.kiln.train.EpochMetrics> trainResNet(int epochs, Path checkpoint, Path resume, StateDict[] finalState)
            throws Exception {
        java.util.SplittableRandom r = new java.util.SplittableRandom(3);
        byte[] images = new byte[96 * 784];
        byte[] labels = new byte[96];
        for (int i = 0; i < 96; i++) {
            labels[i] = (byte) r.nextInt(10);
            for (int p = 0; p < 784; p++) {
                images[i * 784 + p] = (byte) (r.nextInt(40) + (p % 28 == 3 * labels[i] ? 200 : 0));
            }
        }
        dev.kiln.data.ImageSplit train = new dev.kiln.data.ImageSplit(64, 28, 28, java.util.Arrays.copyOf(images, 64 * 784),
                java.util.Arrays.copyOf(labels, 64));
        dev.kiln.data.ImageSplit test = new dev.kiln.data.ImageSplit(32, 28, 28,
                java.util.Arrays.copyOfRange(images, 64 * 784, 96 * 784), java.util.Arrays.copyOfRange(labels, 64, 96));
        try (dev.kiln.data.DataLoader tl = dev.kiln.data.DataLoader.builder(train).batchSize(16).seed(5)
                .normalization(Normalization.MNIST).build();
             dev.kiln.data.DataLoader vl = dev.kiln.data.DataLoader.builder(test).batchSize(32).shuffle(false)
                     .normalization(Normalization.MNIST).build();
             ResNet model = new ResNet(device(), new Generator(9));
             SGD sgd = groupedSgd(model)) {
            dev.kiln.train.Trainer t = dev.kiln.train.Trainer.builder().model(model).loss(new CrossEntropyLoss(0.1f))
                    .optimizer(sgd).device(device()).epochs(epochs).seed(9).checkpoint(checkpoint).build();
            if (resume != null) {
                t.resumeFrom(resume);
            }
            List<dev.kiln.train.EpochMetrics> history = t.fit(tl, vl);
            finalState[0] = model.stateDict();
            return history;
        }
    }

    @Test
    @DisplayName("the ResNet trains through Trainer (parameter groups, label smoothing) and resumes from a checkpoint bit for bit")
    void resnetTrainerResumeIsExact(@TempDir Path tmp) throws Exception {
        StateDict[] straight = new StateDict[1];
        List<dev.kiln.train.EpochMetrics> full = trainResNet(2, null, null, straight);
        Path ckpt = tmp.resolve("resnet-ckpt.safetensors");
        trainResNet(1, ckpt, null, new StateDict[1]);
        StateDict[] resumed = new StateDict[1];
        List<dev.kiln.train.EpochMetrics> continued = trainResNet(2, null, ckpt, resumed);
        assertEquals(2, continued.size());
        assertEquals(full.get(1).trainLoss(), continued.get(1).trainLoss());
        for (String k : straight[0].entries().keySet()) {
            assertArrayEquals(straight[0].get(k).data(), resumed[0].get(k).data(), k);
        }
        assertEquals(8L, resumed[0].get("layer3.1.bn2.num_batches_tracked").longValue());
    }

    @Test
    @DisplayName("optimizer state with parameter groups (one with momentum, one without) saves and restores: the next step is identical")
    void groupedOptimizerStateRoundTrip() {
        try (TensorScope scope = TensorScope.open(); ResNet a = new ResNet(device(), new Generator(40));
             ResNet b = new ResNet(device(), new Generator(41)); SGD sa = groupedSgd(a); SGD sb = groupedSgd(b)) {
            Tensor x = Tensor.randn(device(), new Generator(42), 4, 1, 16, 16);
            int[] y = {1, 7, 3, 0};
            for (int s = 0; s < 2; s++) {
                a.zeroGrad();
                new CrossEntropyLoss().forward(a.forward(x), y).backward();
                sa.step();
            }
            StateDict opt = sa.stateDict();
            assertTrue(opt.entries().keySet().stream().anyMatch(k -> k.endsWith("momentum_buffer")));
            b.loadStateDict(a.stateDict());
            sb.loadStateDict(opt);
            for (ResNet net : List.of(a, b)) {
                net.zeroGrad();
                new CrossEntropyLoss().forward(net.forward(x), y).backward();
            }
            sa.step();
            sb.step();
            Map<String, Tensor> pa = a.namedParameters();
            Map<String, Tensor> pb = b.namedParameters();
            for (String k : pa.keySet()) {
                assertArrayEquals(pa.get(k).toArray(), pb.get(k).toArray(), k + " after a restored step");
            }
        }
    }

    // ------------------------------------------------------------------ serving

    /** A ResNet after three training steps on random batches, so every running statistic has moved. */
    private ResNet trainedResNet() {
        ResNet net = new ResNet(device(), Generator.pytorch(11));
        Generator data = new Generator(12);
        try (SGD sgd = SGD.builder().lr(0.05f).momentum(0.9f).params(net.parameters()).build()) {
            for (int step = 0; step < 3; step++) {
                try (TensorScope scope = TensorScope.open()) {
                    Tensor images = Tensor.randn(device(), data, 8, 1, 28, 28);
                    int[] labels = new int[8];
                    for (int i = 0; i < 8; i++) {
                        labels[i] = data.nextInt(10);
                    }
                    net.zeroGrad();
                    new CrossEntropyLoss().forward(net.forward(images), labels).backward();
                    sgd.step();
                }
            }
        }
        return net;
    }

    @Test
    @DisplayName("the Predictor folds all 15 batch norms of the ResNet (residual blocks, not a flat sequence); folded logits agree with unfolded to 1e-4 of their scale")
    void resnetFoldsEveryBatchNorm() throws IOException {
        try (ResNet net = trainedResNet(); TensorScope scope = TensorScope.open()) {
            byte[] bytes = ModelFiles.toBytes(net, Normalization.MNIST);
            Tensor images = Tensor.randn(device(), new Generator(13), 6, 1, 28, 28);
            float[] own;
            net.eval();
            try (GradMode g = GradMode.noGrad()) {
                own = net.forward(images).toArray();
            }
            try (Predictor folded = Predictor.load(bytes, Predictor.Options.defaults().device(device()));
                 Predictor plain = Predictor.load(bytes, Predictor.Options.defaults().device(device()).foldBatchNorm(false))) {
                assertEquals(15, folded.foldedBatchNorms());
                assertEquals(0, plain.foldedBatchNorms());
                float[] f = folded.logits(images).toArray();
                float[] p = plain.logits(images).toArray();
                assertArrayEquals(own, p, 0f, "unfolded predictor vs the model's own eval forward");
                // Folding rescales each weight by gamma / sqrt(var + eps) in double and rounds once to float; through
                // 16 layers that moves the logits by float rounding: bound 1e-4 of their largest magnitude.
                double scale = 0;
                for (float v : p) {
                    scale = Math.max(scale, Math.abs(v));
                }
                assertClose(p, f, 0, 1e-4 * scale, "folded vs unfolded logits");
            }
        }
    }

    /** Uses its convolution twice, and reads a convolution's output twice: neither may be folded. */
    private static final class SharedUses extends Module {
        final Conv2d shared;
        final BatchNorm2d bnShared;
        final Conv2d branch;
        final BatchNorm2d bnBranch;
        final Conv2d plain;
        final BatchNorm2d bnPlain;

        SharedUses(dev.kiln.core.Device device, Generator gen) {
            shared = registerModule("shared", new Conv2d(device, gen, 2, 2, 3, 1, 1, 1, false));
            bnShared = registerModule("bn_shared", new BatchNorm2d(device, 2));
            branch = registerModule("branch", new Conv2d(device, gen, 2, 2, 3, 1, 1, 1, true));
            bnBranch = registerModule("bn_branch", new BatchNorm2d(device, 2));
            plain = registerModule("plain", new Conv2d(device, gen, 2, 2, 1, 1, 0, 1, true));
            bnPlain = registerModule("bn_plain", new BatchNorm2d(device, 2));
        }

        @Override
        public Tensor forward(Tensor x) {
            Tensor y = bnShared.forward(shared.forward(shared.forward(x)));
            Tensor b = branch.forward(y);
            Tensor z = bnBranch.forward(b).add(b); // the branch output is read twice
            return bnPlain.forward(plain.forward(z)).mean(3, false).mean(2, false); // (N, 2) scores
        }
    }

    @Test
    @DisplayName("folding leaves a layer used twice and a layer whose output is read twice alone, folds the rest, and the output stays the same")
    void foldingRespectsTheDataflow() throws IOException {
        Architecture arch = new Architecture("SharedUses", new int[]{2, 5, 5}, d -> new SharedUses(d, new Generator(3)));
        try (SharedUses net = new SharedUses(device(), new Generator(4)); TensorScope scope = TensorScope.open()) {
            for (BatchNorm bn : List.of(net.bnShared, net.bnBranch, net.bnPlain)) {
                bn.runningMean().copyFrom(new float[]{0.3f, -0.2f});
                bn.runningVar().copyFrom(new float[]{2f, 0.5f});
                bn.weight().copyFrom(new float[]{1.5f, 0.7f});
                bn.bias().copyFrom(new float[]{0.1f, -0.4f});
            }
            byte[] bytes = ModelFiles.toBytes(net, arch, Normalization.NONE);
            Tensor x = Tensor.randn(device(), new Generator(5), 3, 2, 5, 5);
            Predictor.Options o = Predictor.Options.defaults().device(device()).architecture(arch);
            try (Predictor folded = Predictor.load(bytes, o);
                 Predictor plain = Predictor.load(bytes, Predictor.Options.defaults().device(device()).architecture(arch)
                         .foldBatchNorm(false))) {
                assertEquals(1, folded.foldedBatchNorms(), "only bn_plain may fold");
                assertClose(plain.logits(x).toArray(), folded.logits(x).toArray(), 1e-5, 1e-5, "folded vs unfolded");
            }
        }
    }

    /** Linear, BatchNorm1d, ReLU, Linear written as code, not as a sequence. */
    private static final class MlpHead extends Module {
        final Linear fc1;
        final dev.kiln.nn.BatchNorm1d bn;
        final Linear fc2;

        MlpHead(dev.kiln.core.Device device, Generator gen) {
            fc1 = registerModule("fc1", new Linear(device, gen, 12, 6));
            bn = registerModule("bn", new dev.kiln.nn.BatchNorm1d(device, 6));
            fc2 = registerModule("fc2", new Linear(device, gen, 6, 3));
        }

        @Override
        public Tensor forward(Tensor x) {
            return fc2.forward(bn.forward(fc1.forward(x.flatten(1))).relu());
        }
    }

    @Test
    @DisplayName("a linear layer followed by BatchNorm1d in hand-written forward code folds too, to float rounding")
    void linearBatchNormFolds() throws IOException {
        Architecture arch = new Architecture("MlpHead", new int[]{3, 2, 2}, d -> new MlpHead(d, new Generator(3)));
        try (MlpHead net = new MlpHead(device(), new Generator(8)); TensorScope scope = TensorScope.open()) {
            net.bn.runningMean().copyFrom(new float[]{0.3f, -0.2f, 0.1f, 0f, 1f, -1f});
            net.bn.runningVar().copyFrom(new float[]{2f, 0.5f, 1f, 3f, 0.25f, 1.5f});
            net.bn.weight().copyFrom(new float[]{1.5f, 0.7f, -1f, 1f, 2f, 0.5f});
            byte[] bytes = ModelFiles.toBytes(net, arch, Normalization.NONE);
            Tensor x = Tensor.randn(device(), new Generator(9), 5, 3, 2, 2);
            try (Predictor folded = Predictor.load(bytes, Predictor.Options.defaults().device(device()).architecture(arch));
                 Predictor plain = Predictor.load(bytes, Predictor.Options.defaults().device(device()).architecture(arch)
                         .foldBatchNorm(false))) {
                assertEquals(1, folded.foldedBatchNorms());
                assertClose(plain.logits(x).toArray(), folded.logits(x).toArray(), 1e-5, 1e-6, "folded vs unfolded");
            }
        }
    }

    @Test
    @DisplayName("a PyTorch-written ResNet safetensors (no Kiln metadata) is served when Options give the architecture and normalisation: PyTorch's eval logits, 15 batch norms folded")
    void servesAPyTorchFile(@TempDir Path dir) throws IOException {
        JsonObject c;
        try (InputStream in = getClass().getResourceAsStream("/goldens/pytorch-models.json")) {
            assertNotNull(in, "goldens/pytorch-models.json missing: run tools/pytorch_goldens_models.py");
            c = JsonParser.parseReader(new InputStreamReader(in, StandardCharsets.UTF_8)).getAsJsonObject()
                    .getAsJsonObject("resnet_file");
        }
        Path file = dir.resolve("resnet.safetensors");
        try (InputStream in = getClass().getResourceAsStream("/" + c.get("file").getAsString())) {
            assertNotNull(in, c.get("file").getAsString() + " missing");
            Files.copy(in, file);
        }
        assertFalse(SafeTensors.read(file).metadata().containsKey(ModelFiles.ARCHITECTURE_KEY));
        IOException noArch = assertThrows(IOException.class,
                () -> Predictor.load(file, Predictor.Options.defaults().device(device())));
        assertTrue(noArch.getMessage().contains("records no architecture"), noArch.getMessage());
        Architecture mine = new Architecture("MyResNet", new int[]{1, 28, 28}, d -> new ResNet(d, new Generator(0)));
        IOException noNorm = assertThrows(IOException.class,
                () -> Predictor.load(file, Predictor.Options.defaults().device(device()).architecture(mine)));
        assertTrue(noNorm.getMessage().contains("normalisation"), noNorm.getMessage());
        int batch = c.get("batch").getAsInt();
        try (TensorScope scope = TensorScope.open();
             Predictor p = Predictor.load(file, Predictor.Options.defaults().device(device()).architecture(mine)
                     .normalization(Normalization.MNIST))) {
            assertEquals(15, p.foldedBatchNorms());
            Tensor images = tensor(PyTorchGoldensSuite.pattern(batch * 784, c.get("input_seed").getAsInt(), 1, 0),
                    batch, 1, 28, 28);
            JsonArray want = c.getAsJsonArray("eval_logits");
            float[] expected = new float[want.size()];
            double scale = 0;
            for (int i = 0; i < expected.length; i++) {
                expected[i] = want.get(i).getAsFloat();
                scale = Math.max(scale, Math.abs(expected[i]));
            }
            // PyTorch's unfolded float32 forward against Kiln's folded one: 1e-4 of the logits' scale.
            assertClose(expected, p.logits(images).toArray(), 0, 1e-4 * scale, "served logits vs PyTorch's eval");
        }
    }

    @Test
    @DisplayName("ModelFiles saves a user architecture with its normalisation, and the Predictor serves it from the file alone")
    void savesAUserArchitecture(@TempDir Path dir) throws IOException {
        Architecture mine = new Architecture("MyResNet", new int[]{1, 28, 28}, d -> new ResNet(d, new Generator(0)));
        Path file = dir.resolve("mine.safetensors");
        try (ResNet net = new ResNet(device(), new Generator(21)); SharedUses other = new SharedUses(device(), new Generator(1))) {
            IllegalArgumentException notBuiltIn = assertThrows(IllegalArgumentException.class,
                    () -> ModelFiles.save(file, other, Normalization.MNIST, Map.of()));
            assertTrue(notBuiltIn.getMessage().contains("Architecture"), notBuiltIn.getMessage());
            ModelFiles.save(file, net, mine, Normalization.MNIST, Map.of("note", "user architecture"));
            StateDict saved = SafeTensors.read(file).tensors();
            assertEquals(net.stateDict().entries().keySet(), saved.entries().keySet());
            try (Predictor p = Predictor.load(file, Predictor.Options.defaults().device(device()).architecture(mine))) {
                assertEquals("MyResNet", p.architecture().name());
                assertEquals(15, p.foldedBatchNorms());
            }
        }
    }
}
