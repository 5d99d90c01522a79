package dev.kiln.suites;

import dev.kiln.backend.GraphCaptureException;
import dev.kiln.core.CapturedGraph;
import dev.kiln.core.Generator;
import dev.kiln.core.GradMode;
import dev.kiln.core.Tensor;
import dev.kiln.core.TensorScope;
import dev.kiln.models.LeNet5;
import dev.kiln.nn.BatchNorm1d;
import dev.kiln.nn.CrossEntropyLoss;
import dev.kiln.nn.Linear;
import dev.kiln.optim.SGD;
import dev.kiln.train.TrainingStep;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Graph capture ({@link CapturedGraph}) on any backend: a captured and replayed LeNet-BN training step must do exactly
 * what the eager step does, bit for bit, with fresh data each step; what cannot be captured is refused cleanly.
 */
public class GraphCaptureSuite extends DeviceSuite {

    private static final int BATCH = 16;
    private static final int STEPS = 6;
    private static final int WARMUP = 2;

    private static float[][] images(long seed, int steps) {
        Generator g = new Generator(seed);
        float[][] out = new float[steps][BATCH * 28 * 28];
        for (float[] b : out) {
            g.fillNormal(b, 0f, 1f);
        }
        return out;
    }

    private static float[][] labels(long seed, int steps) {
        Generator g = new Generator(seed);
        float[][] out = new float[steps][BATCH];
        for (float[] b : out) {
            for (int i = 0; i < BATCH; i++) {
                b[i] = g.nextInt(10);
            }
        }
        return out;
    }

    private record Result(float[] losses, Map<String, float[]> state) {
    }

    private static Result snapshot(LeNet5 net, float[] losses) {
        Map<String, float[]> state = new LinkedHashMap<>();
        net.stateDict().entries().forEach((k, v) -> state.put(k, v.data()));
        return new Result(losses, state);
    }

    /** Every step eagerly. */
    private Result eager(float[][] xs, float[][] ys) {
        float[] losses = new float[xs.length];
        try (LeNet5 net = new LeNet5(device(), new Generator(7));
             SGD sgd = new SGD(net.parameters(), 0.05f, 0.9f, 0f, false, 1e-4f);
             Tensor x = Tensor.unscoped(device(), new float[BATCH * 28 * 28], BATCH, 1, 28, 28);
             Tensor y = Tensor.unscoped(device(), new float[BATCH], BATCH)) {
            CrossEntropyLoss ce = new CrossEntropyLoss();
            for (int s = 0; s < xs.length; s++) {
                x.copyFrom(xs[s]);
                y.copyFrom(ys[s]);
                try (TensorScope scope = TensorScope.open()) {
                    sgd.zeroGrad();
                    Tensor loss = ce.forward(net.forward(x), y);
                    loss.backward();
                    sgd.step();
                    losses[s] = loss.item();
                }
            }
            return snapshot(net, losses);
        }
    }

    /** WARMUP eager steps, then one capture, then a replay per remaining step, with eager work in between. */
    private Result graphed(float[][] xs, float[][] ys) {
        float[] losses = new float[xs.length];
        try (LeNet5 net = new LeNet5(device(), new Generator(7));
             SGD sgd = new SGD(net.parameters(), 0.05f, 0.9f, 0f, false, 1e-4f);
             Tensor x = Tensor.unscoped(device(), new float[BATCH * 28 * 28], BATCH, 1, 28, 28);
             Tensor y = Tensor.unscoped(device(), new float[BATCH], BATCH)) {
            CrossEntropyLoss ce = new CrossEntropyLoss();
            Tensor[] lossOut = new Tensor[1];
            Runnable step = () -> {
                try (TensorScope scope = TensorScope.open()) {
                    sgd.zeroGrad();
                    Tensor loss = ce.forward(net.forward(x), y);
                    loss.backward();
                    sgd.step();
                    lossOut[0] = scope.keep(loss);
                }
            };
            for (int s = 0; s < WARMUP; s++) {
                x.copyFrom(xs[s]);
                y.copyFrom(ys[s]);
                step.run();
                losses[s] = lossOut[0].item();
                lossOut[0].close();
            }
            try (CapturedGraph graph = CapturedGraph.capture(device(), step)) {
                assertTrue(graph.operations() > 20, "a LeNet step records many operations, got " + graph.operations());
                Tensor loss = lossOut[0];
                for (int s = WARMUP; s < xs.length; s++) {
                    x.copyFrom(xs[s]);
                    y.copyFrom(ys[s]);
                    graph.replay();
                    losses[s] = loss.item();
                    // eager work between replays must neither disturb the graph's memory nor be disturbed by it
                    // (an eval forward allocates tensors of the very sizes the captured step freed)
                    try (TensorScope scratch = TensorScope.open(); GradMode ignored = GradMode.noGrad()) {
                        net.eval();
                        Tensor probe = net.forward(x);
                        float[] before = probe.toArray();
                        net.train();
                        graph.replay();
                        assertArrayEquals(before, probe.toArray(), "eager tensor changed by a replay");
                    }
                    // the extra replay above trained on the same batch again; undo nothing but account for it
                    losses[s] = Float.NaN;
                }
                loss.close();
            }
            return snapshot(net, losses);
        }
    }

    @Test
    @DisplayName("a captured LeNet-BN training step replays exactly like the eager step (parameters, running stats, counters)")
    void replayMatchesEager() {
        // Each graphed step after warm-up runs twice on the same batch (see graphed()); mirror that eagerly.
        float[][] xs = images(11, STEPS);
        float[][] ys = labels(12, STEPS);
        float[][] xs2 = new float[WARMUP + 2 * (STEPS - WARMUP)][];
        float[][] ys2 = new float[xs2.length][];
        int k = 0;
        for (int s = 0; s < STEPS; s++) {
            int times = s < WARMUP ? 1 : 2;
            for (int t = 0; t < times; t++) {
                xs2[k] = xs[s];
                ys2[k] = ys[s];
                k++;
            }
        }
        Result want = eager(xs2, ys2);
        Result got = graphed(xs, ys);
        assertEquals(want.state.keySet(), got.state.keySet());
        for (String key : want.state.keySet()) {
            assertArrayEquals(want.state.get(key), got.state.get(key), key + " differs between eager and replayed steps");
        }
        for (int s = 0; s < WARMUP; s++) {
            assertEquals(want.losses[s], got.losses[s], "loss of warm-up step " + s);
        }
    }

    @Test
    @DisplayName("reading data back inside a capture is refused, records nothing and changes nothing")
    void hostReadIsRefused() {
        try (Linear fc = new Linear(device(), new Generator(3), 4, 2);
             Tensor x = Tensor.unscoped(device(), new float[]{1, 2, 3, 4, 5, 6, 7, 8}, 2, 4)) {
            float[] before = fc.weight().toArray();
            GraphCaptureException e = assertThrows(GraphCaptureException.class, () -> CapturedGraph.capture(device(), () -> {
                try (TensorScope s = TensorScope.open()) {
                    fc.forward(x).sum().item();
                }
            }));
            assertMessageContains(e, "download", "capture");
            assertArrayEquals(before, fc.weight().toArray());
            try (TensorScope s = TensorScope.open()) {
                assertEquals(2 * 2, fc.forward(x).numel(), "eager work goes on after a refused capture");
            }
        }
    }

    @Test
    @DisplayName("BatchNorm with momentum=None cannot be captured (its factor changes every step)")
    void cumulativeMomentumIsRefused() {
        try (BatchNorm1d bn = new BatchNorm1d(device(), 3, 1e-5f, null, true, true);
             Tensor x = Tensor.unscoped(device(), new float[]{1, 2, 3, 4, 5, 6, 7, 8, 9}, 3, 3)) {
            bn.train();
            GraphCaptureException e = assertThrows(GraphCaptureException.class, () -> CapturedGraph.capture(device(), () -> {
                try (TensorScope s = TensorScope.open()) {
                    bn.forward(x);
                }
            }));
            assertMessageContains(e, "momentum=None");
            assertEquals(0, bn.numBatchesTracked());
        }
    }

    @Test
    @DisplayName("replaying after a tensor the graph uses was closed is an error, not a write into freed memory")
    void closedInputIsDetected() {
        Tensor x = Tensor.unscoped(device(), new float[]{1, 2, 3, 4}, 4);
        Tensor[] out = new Tensor[1];
        try (CapturedGraph g = CapturedGraph.capture(device(), () -> out[0] = x.mul(2f))) {
            g.replay();
            assertArrayEquals(new float[]{2, 4, 6, 8}, out[0].toArray());
            x.copyFrom(new float[]{5, 6, 7, 8});
            g.replay();
            assertArrayEquals(new float[]{10, 12, 14, 16}, out[0].toArray());
            x.close();
            GraphCaptureException e = assertThrows(GraphCaptureException.class, g::replay);
            assertMessageContains(e, "closed");
        } finally {
            out[0].close();
        }
    }

    private record StepRun(Map<String, float[]> state, TrainingStep.Totals totals, boolean graphed) {
    }

    private StepRun trainWithStep(boolean graphs, float[][] xs, float[][] ys) {
        return trainWithStep(graphs, xs, ys, -1);
    }

    /** With {@code lrChangeAt >= 0}, the learning rate is halved before that step. */
    private StepRun trainWithStep(boolean graphs, float[][] xs, float[][] ys, int lrChangeAt) {
        try (LeNet5 net = new LeNet5(device(), new Generator(7));
             SGD sgd = new SGD(net.parameters(), 0.05f, 0.9f, 0f, true, 1e-4f);
             TrainingStep step = new TrainingStep(net, new CrossEntropyLoss(), sgd, device(), BATCH, new int[]{1, 28, 28},
                     graphs, WARMUP)) {
            for (int s = 0; s < xs.length; s++) {
                if (s == lrChangeAt) {
                    sgd.setLr(sgd.lr() / 2);
                }
                step.inputs().copyFrom(xs[s]);
                step.targets().copyFrom(ys[s]);
                step.run();
            }
            TrainingStep.Totals totals = step.drain();
            Result r = snapshot(net, new float[0]);
            return new StepRun(r.state, totals, step.graphed());
        }
    }

    @Test
    @DisplayName("TrainingStep with graphs replays after the warm-up and trains exactly like the eager TrainingStep")
    void trainingStepGraphsMatchEager() {
        float[][] xs = images(21, STEPS);
        float[][] ys = labels(22, STEPS);
        StepRun eager = trainWithStep(false, xs, ys);
        StepRun graphed = trainWithStep(true, xs, ys);
        assertFalse(eager.graphed);
        assertTrue(graphed.graphed, "the step should be replayed from a captured graph after the warm-up");
        for (String key : eager.state.keySet()) {
            assertArrayEquals(eager.state.get(key), graphed.state.get(key), key + " differs between eager and graphed steps");
        }
        assertEquals(eager.totals, graphed.totals);
        assertEquals((long) STEPS * BATCH, eager.totals.samples());
        double meanLoss = eager.totals.meanLoss();
        assertTrue(meanLoss > 0.5 && meanLoss < 5, "mean loss over random labels near ln(10), got " + meanLoss);
        assertTrue(eager.totals.correct() >= 0 && eager.totals.correct() <= (long) STEPS * BATCH);
    }

    @Test
    @DisplayName("TrainingStep counts correct predictions on the device exactly as argmax on the host does")
    void trainingStepCountsCorrect() {
        float[][] xs = images(31, 1);
        float[][] ys = labels(32, 1);
        try (LeNet5 net = new LeNet5(device(), new Generator(5));
             SGD sgd = new SGD(net.parameters(), 0f);
             TrainingStep step = new TrainingStep(net, new CrossEntropyLoss(), sgd, device(), BATCH, new int[]{1, 28, 28},
                     false, 1)) {
            step.inputs().copyFrom(xs[0]);
            // make the labels the model's own predictions for half the batch, so the count is not trivially 0
            float[] predicted;
            net.train();
            try (TensorScope s = TensorScope.open(); GradMode g = GradMode.noGrad()) {
                predicted = net.forward(step.inputs()).argmax(1).toArray();
            }
            float[] labels = ys[0].clone();
            for (int i = 0; i < BATCH; i += 2) {
                labels[i] = predicted[i];
            }
            long want = 0;
            for (int i = 0; i < BATCH; i++) {
                want += labels[i] == predicted[i] ? 1 : 0;
            }
            step.targets().copyFrom(labels);
            step.run(); // lr 0: the forward inside sees the same weights (batch statistics, as above)
            assertEquals(want, step.drain().correct());
        }
    }

    @Test
    @DisplayName("a learning rate changed after the capture is read from the device by the replay: same result as eager")
    void learningRateChangeIsReplayed() {
        float[][] xs = images(41, STEPS);
        float[][] ys = labels(42, STEPS);
        StepRun eager = trainWithStep(false, xs, ys, STEPS - 1);
        StepRun graphed = trainWithStep(true, xs, ys, STEPS - 1);
        StepRun unchanged = trainWithStep(true, xs, ys, -1);
        assertTrue(graphed.graphed, "a learning-rate change must not drop the graph");
        boolean anyDifference = false;
        for (String key : eager.state.keySet()) {
            assertArrayEquals(eager.state.get(key), graphed.state.get(key), key + " differs after a learning-rate change");
            anyDifference |= !Arrays.equals(eager.state.get(key), unchanged.state.get(key));
        }
        assertTrue(anyDifference, "the halved learning rate must have changed the last update");
    }

    @ParameterizedTest(name = "graphs={0}")
    @ValueSource(booleans = {false, true})
    @DisplayName("a non-finite loss skips the SGD update on the device (eager and replayed): parameters and momentum kept")
    void nonFiniteLossSkipsTheUpdate(boolean graphs) {
        float[][] xs = images(51, WARMUP + 2);
        float[][] ys = labels(52, WARMUP + 2);
        try (LeNet5 net = new LeNet5(device(), new Generator(9));
             SGD sgd = new SGD(net.parameters(), 0.05f, 0.9f, 0f, false, 0f);
             TrainingStep step = new TrainingStep(net, new CrossEntropyLoss(), sgd, device(), BATCH, new int[]{1, 28, 28},
                     graphs, WARMUP)) {
            for (int s = 0; s < WARMUP + 2; s++) {
                step.inputs().copyFrom(xs[s]);
                step.targets().copyFrom(ys[s]);
                step.run();
            }
            assertEquals(graphs, step.graphed());
            assertTrue(Double.isFinite(step.drain().lossSum()));
            List<float[]> before = new ArrayList<>();
            for (Tensor p : net.parameters()) {
                before.add(p.toArray());
            }
            float[] poisoned = xs[0].clone();
            poisoned[3] = Float.NaN;
            step.inputs().copyFrom(poisoned);
            step.run();
            assertTrue(Double.isNaN(step.drain().lossSum()), "the poisoned batch gives a NaN loss");
            assertEquals(1, sgd.skippedSteps());
            for (int i = 0; i < before.size(); i++) {
                assertArrayEquals(before.get(i), net.parameters().get(i).toArray(), "parameter " + i + " changed");
            }
            // training goes on from there: the skip is counted once and the graph is kept
            step.inputs().copyFrom(xs[1]);
            step.run();
            assertTrue(Double.isFinite(step.drain().lossSum()));
            assertEquals(1, sgd.skippedSteps());
            assertEquals(graphs, step.graphed(), "a skipped step keeps the graph");
        }
    }
}
