package dev.kiln.suites;

import dev.kiln.core.Generator;
import dev.kiln.core.NonFiniteLossException;
import dev.kiln.core.TensorScope;
import dev.kiln.data.DataLoader;
import dev.kiln.data.Dataset;
import dev.kiln.models.LeNet5;
import dev.kiln.nn.CrossEntropyLoss;
import dev.kiln.nn.StateDict;
import dev.kiln.optim.Adam;
import dev.kiln.optim.Optimizer;
import dev.kiln.optim.SGD;
import dev.kiln.train.Trainer;
import dev.kiln.train.TrainingStep;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A training step is all-or-nothing: parameters, optimizer state, batch norm's running statistics and
 * {@code num_batches_tracked} change together or not at all. A NaN image in batch k leaves a model bitwise equal to
 * the run that never saw batch k.
 */
public class StepAtomicitySuite extends DeviceSuite {

    private static final int BATCH = 8;
    private static final int WARMUP = 2;

    private static float[][] images(long seed, int batches) {
        SplittableRandom r = new SplittableRandom(seed);
        float[][] xs = new float[batches][BATCH * 784];
        for (float[] x : xs) {
            for (int i = 0; i < x.length; i++) {
                x[i] = (float) r.nextGaussian();
            }
        }
        return xs;
    }

    private static float[][] labels(long seed, int batches) {
        SplittableRandom r = new SplittableRandom(seed);
        float[][] ys = new float[batches][BATCH];
        for (float[] y : ys) {
            for (int i = 0; i < y.length; i++) {
                y[i] = r.nextInt(10);
            }
        }
        return ys;
    }

    /** Every value of the model and the optimizer, num_batches_tracked exactly. */
    private static Map<String, float[]> snapshot(LeNet5 model, Optimizer opt) {
        Map<String, float[]> out = new LinkedHashMap<>();
        put(out, "model.", model.stateDict());
        put(out, "optimizer.", opt.stateDict());
        return out;
    }

    private static void put(Map<String, float[]> out, String prefix, StateDict sd) {
        sd.entries().forEach((k, v) -> out.put(prefix + k, v.dtype() == StateDict.DType.I64
                ? new float[]{Float.intBitsToFloat((int) v.longValue()), Float.intBitsToFloat((int) (v.longValue() >>> 32))}
                : v.data().clone()));
    }

    private static void assertBitwiseEqual(Map<String, float[]> want, Map<String, float[]> got, String what) {
        assertEquals(want.keySet(), got.keySet(), what + ": keys");
        for (String k : want.keySet()) {
            float[] a = want.get(k);
            float[] b = got.get(k);
            assertEquals(a.length, b.length, what + ": " + k);
            for (int i = 0; i < a.length; i++) {
                if (Float.floatToRawIntBits(a[i]) != Float.floatToRawIntBits(b[i])) {
                    throw new AssertionError(what + ": " + k + "[" + i + "] is " + b[i] + ", expected " + a[i]);
                }
            }
        }
    }

    private Map<String, float[]> runSteps(float[][] xs, float[][] ys, boolean graphs, boolean adam, long[] skipped) {
        try (LeNet5 net = new LeNet5(device(), new Generator(7));
             Optimizer opt = adam ? new Adam(net.parameters(), 1e-3f)
                     : new SGD(net.parameters(), 0.05f, 0.9f, 0f, false, 1e-4f);
             TrainingStep step = new TrainingStep(net, new CrossEntropyLoss(), opt, device(), BATCH, new int[]{1, 28, 28},
                     graphs, WARMUP)) {
            for (int s = 0; s < xs.length; s++) {
                step.inputs().copyFrom(xs[s]);
                step.targets().copyFrom(ys[s]);
                step.run();
            }
            if (graphs && !adam) {
                assertTrue(step.graphed(), "expected replays after the warm-up: " + step.eagerReason());
            }
            skipped[0] = opt.skippedSteps();
            return snapshot(net, opt);
        }
    }

    private static <T> T[] without(T[] a, int k) {
        List<T> l = new ArrayList<>(Arrays.asList(a));
        l.remove(k);
        return l.toArray(Arrays.copyOf(a, 0));
    }

    @ParameterizedTest(name = "batch {0}, graphs {1}, adam {2}")
    @CsvSource({"0, false, false", "3, false, false", "4, true, false", "2, false, true"})
    @DisplayName("TrainingStep: a NaN image in batch k gives a model (running stats and num_batches_tracked included) and optimizer bitwise equal to the run that skipped batch k")
    void nanBatchEqualsSkippedBatch(int k, boolean graphs, boolean adam) {
        int steps = 7;
        float[][] xs = images(31, steps);
        float[][] ys = labels(32, steps);
        float[][] poisoned = Arrays.stream(xs).map(float[]::clone).toArray(float[][]::new);
        poisoned[k][5 * 784 + 300] = Float.NaN;
        long[] skippedPoisoned = new long[1];
        long[] skippedClean = new long[1];
        Map<String, float[]> got = runSteps(poisoned, ys, graphs, adam, skippedPoisoned);
        Map<String, float[]> want = runSteps(without(xs, k), without(ys, k), graphs, adam, skippedClean);
        assertEquals(1, skippedPoisoned[0], "one step skipped");
        assertEquals(0, skippedClean[0]);
        assertBitwiseEqual(want, got, "NaN in batch " + k);
        // and it did train: the clean run differs from the initial model
        Map<String, float[]> initial = runSteps(new float[0][], new float[0][], false, adam, new long[1]);
        assertFalse(Arrays.equals(initial.get("model.bn1.running_mean"), got.get("model.bn1.running_mean")));
    }

    /** Finite values that overflow what a step computes from them (named for the messages). */
    enum Overflow {
        /** one pixel of 1e30: the loss stays finite, bn1's batch variance does not */
        PIXEL_1E30,
        /** one pixel of Float.MAX_VALUE: finite loss, NaN gradients */
        PIXEL_MAX,
        /** one pixel of -Float.MAX_VALUE */
        PIXEL_MINUS_MAX,
        /** a whole image of 1e20: bn1's batch variance overflows to infinity */
        BN_VARIANCE;

        void poison(float[] batch) {
            switch (this) {
                case PIXEL_1E30 -> batch[5 * 784 + 300] = 1e30f;
                case PIXEL_MAX -> batch[5 * 784 + 300] = Float.MAX_VALUE;
                case PIXEL_MINUS_MAX -> batch[5 * 784 + 300] = -Float.MAX_VALUE;
                case BN_VARIANCE -> Arrays.fill(batch, 2 * 784, 3 * 784, 1e20f);
            }
        }
    }

    @ParameterizedTest(name = "{0}, batch {1}, graphs {2}, adam {3}")
    @CsvSource({"PIXEL_1E30, 3, false, false", "PIXEL_1E30, 4, true, false", "PIXEL_1E30, 2, false, true",
            "PIXEL_MAX, 3, false, false", "PIXEL_MAX, 4, true, false", "PIXEL_MAX, 2, false, true",
            "PIXEL_MINUS_MAX, 3, false, false", "PIXEL_MINUS_MAX, 4, true, false", "PIXEL_MINUS_MAX, 2, false, true",
            "BN_VARIANCE, 3, false, false", "BN_VARIANCE, 4, true, false", "BN_VARIANCE, 2, false, true"})
    @DisplayName("TrainingStep: a finite batch that overflows the loss, gradients or running statistics gives a model and optimizer bitwise equal to the run that skipped it")
    void overflowBatchEqualsSkippedBatch(Overflow overflow, int k, boolean graphs, boolean adam) {
        int steps = 7;
        float[][] xs = images(61, steps);
        float[][] ys = labels(62, steps);
        float[][] poisoned = Arrays.stream(xs).map(float[]::clone).toArray(float[][]::new);
        overflow.poison(poisoned[k]);
        long[] skippedPoisoned = new long[1];
        long[] skippedClean = new long[1];
        Map<String, float[]> got = runSteps(poisoned, ys, graphs, adam, skippedPoisoned);
        Map<String, float[]> want = runSteps(without(xs, k), without(ys, k), graphs, adam, skippedClean);
        assertEquals(1, skippedPoisoned[0], overflow + ": one step skipped");
        assertEquals(0, skippedClean[0]);
        assertBitwiseEqual(want, got, overflow + " in batch " + k);
        for (Map.Entry<String, float[]> e : got.entrySet()) {
            if (!e.getKey().endsWith("num_batches_tracked")) {
                for (float v : e.getValue()) {
                    assertTrue(Float.isFinite(v), overflow + ": " + e.getKey() + " holds " + v);
                }
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"PIXEL_1E30", "PIXEL_MAX", "PIXEL_MINUS_MAX", "BN_VARIANCE"})
    @DisplayName("Trainer: a finite batch that overflows stops the run, says the step was skipped, and leaves the model bitwise equal to training on batches 0..k-1")
    void trainerOverflowBatch(String name) {
        Overflow overflow = Overflow.valueOf(name);
        int k = 3;
        float[][] xs = images(71, 6);
        float[][] ys = labels(72, 6);
        overflow.poison(xs[k]);
        NonFiniteLossException[] thrown = new NonFiniteLossException[1];
        Map<String, float[]> got = fitCatching(floats(xs, ys), thrown);
        Map<String, float[]> want = fit(floats(Arrays.copyOf(xs, k), Arrays.copyOf(ys, k)), 1, null);
        assertBitwiseEqual(want, got, "Trainer with " + overflow + " in batch " + k);
        String message = thrown[0].getMessage();
        assertTrue(message.contains("skipped") && message.contains("between batches 3 and 3")
                && message.contains("1 step(s) skipped"), message);
    }

    private Map<String, float[]> fitCatching(Dataset data, NonFiniteLossException[] thrown) {
        try (LeNet5 net = new LeNet5(device(), new Generator(7));
             SGD sgd = new SGD(net.parameters(), 0.05f, 0.9f, 0f, false, 0f);
             DataLoader loader = DataLoader.builder(data).batchSize(BATCH).shuffle(false).build()) {
            Trainer t = Trainer.builder().model(net).loss(new CrossEntropyLoss()).optimizer(sgd).device(device())
                    .reportEvery(1).build();
            thrown[0] = assertThrows(NonFiniteLossException.class, () -> t.fit(loader, null));
            return snapshot(net, sgd);
        }
    }

    @ParameterizedTest(name = "label {0}")
    @ValueSource(floats = {10f, -1f, 3.5f})
    @DisplayName("TrainingStep: a bad label is refused and the model is bitwise unchanged")
    void badLabelChangesNothing(float bad) {
        float[][] xs = images(41, 2);
        float[][] ys = labels(42, 2);
        try (LeNet5 net = new LeNet5(device(), new Generator(7));
             SGD sgd = new SGD(net.parameters(), 0.05f, 0.9f, 0f, false, 0f);
             TrainingStep step = new TrainingStep(net, new CrossEntropyLoss(), sgd, device(), BATCH, new int[]{1, 28, 28},
                     false, 1)) {
            step.inputs().copyFrom(xs[0]);
            step.targets().copyFrom(ys[0]);
            step.run();
            Map<String, float[]> before = snapshot(net, sgd);
            ys[1][3] = bad;
            step.inputs().copyFrom(xs[1]);
            step.targets().copyFrom(ys[1]);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, step::run);
            assertTrue(e.getMessage().contains(Float.toString(bad)) || e.getMessage().contains(Integer.toString((int) bad)),
                    e.getMessage());
            assertBitwiseEqual(before, snapshot(net, sgd), "after label " + bad);
        }
    }

    /** A user's data set of float images, one of them possibly NaN. */
    private static Dataset floats(float[][] xs, float[][] ys) {
        return new Dataset() {
            @Override
            public int size() {
                return xs.length * BATCH;
            }

            @Override
            public int[] featureShape() {
                return new int[]{1, 28, 28};
            }

            @Override
            public void fill(int index, float[] dst, int offset) {
                System.arraycopy(xs[index / BATCH], (index % BATCH) * 784, dst, offset, 784);
            }

            @Override
            public int label(int index) {
                return (int) ys[index / BATCH][index % BATCH];
            }
        };
    }

    private Map<String, float[]> fit(Dataset data, int reportEvery, Class<? extends Throwable> expected) {
        try (LeNet5 net = new LeNet5(device(), new Generator(7));
             SGD sgd = new SGD(net.parameters(), 0.05f, 0.9f, 0f, false, 0f);
             DataLoader loader = DataLoader.builder(data).batchSize(BATCH).shuffle(false).build()) {
            Trainer t = Trainer.builder().model(net).loss(new CrossEntropyLoss()).optimizer(sgd).device(device())
                    .reportEvery(reportEvery).build();
            if (expected == null) {
                t.fit(loader, null);
            } else {
                assertThrows(expected, () -> t.fit(loader, null));
            }
            return snapshot(net, sgd);
        }
    }

    @Test
    @DisplayName("Trainer: a NaN image in batch k stops the run with the model bitwise equal to training on batches 0..k-1")
    void trainerNanBatch() {
        int k = 3;
        float[][] xs = images(51, 6);
        float[][] ys = labels(52, 6);
        xs[k][2 * 784 + 100] = Float.NaN;
        Map<String, float[]> got = fit(floats(xs, ys), 1, NonFiniteLossException.class);
        Map<String, float[]> want = fit(floats(Arrays.copyOf(xs, k), Arrays.copyOf(ys, k)), 1, null);
        assertBitwiseEqual(want, got, "Trainer with NaN in batch " + k);
    }

    @Test
    @DisplayName("a plain training forward outside a step updates the running statistics at once, as PyTorch does")
    void plainForwardKeepsPyTorchSemantics() {
        try (LeNet5 net = new LeNet5(device(), new Generator(7)); TensorScope s = TensorScope.open()) {
            net.forward(randn(3, BATCH, 1, 28, 28));
            assertEquals(1, net.stateDict().get("bn1.num_batches_tracked").longValue());
            assertFalse(Arrays.equals(new float[6], net.stateDict().get("bn1.running_mean").data()));
        }
    }
}
