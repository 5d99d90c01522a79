package dev.kiln.suites;

import dev.kiln.core.Device;
import dev.kiln.core.Generator;
import dev.kiln.core.GradMode;
import dev.kiln.core.Tensor;
import dev.kiln.core.TensorScope;
import dev.kiln.distributed.Collective;
import dev.kiln.distributed.CollectiveException;
import dev.kiln.distributed.DataParallel;
import dev.kiln.distributed.LocalCollectiveGroup;
import dev.kiln.models.LeNet5;
import dev.kiln.nn.AvgPool2d;
import dev.kiln.nn.BatchNorm2d;
import dev.kiln.nn.Conv2d;
import dev.kiln.nn.CrossEntropyLoss;
import dev.kiln.nn.Flatten;
import dev.kiln.nn.Linear;
import dev.kiln.nn.Module;
import dev.kiln.nn.Sequential;
import dev.kiln.nn.Sigmoid;
import dev.kiln.nn.StateDict;
import dev.kiln.nn.SyncBatchNorm;
import dev.kiln.optim.SGD;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.BiFunction;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Data-parallel exactness on any backend: replicas on threads joined by a {@link LocalCollectiveGroup}, compared
 * with one replica on the whole batch.
 *
 * <p>Tolerance. Averaging the gradients of two half-batch mean losses equals the gradient of the full-batch mean
 * loss in exact arithmetic; in float32 the two sum their per-sample terms in a different order, so each gradient
 * differs by a few units in the last place (relative 1e-7 to 1e-6). SGD with momentum 0.9 carries those
 * differences forward. Observed on the CPU backend after 20 steps: 5e-8 at most without batch norm; 9e-6 with
 * {@code SyncBatchNorm}, whose global statistics are combined from per-member means and variances (recovered from
 * float inverse standard deviations, as PyTorch does) instead of one pass over the batch. The bound, 1e-4 absolute
 * plus 1e-4 relative, is ten times the larger of these and still far below what a real mismatch gives (a wrong
 * shard, local batch-norm statistics,
 * a missing average: 1e-2 and more after the first step, checked in {@link #plainBatchNormIsNotTheGlobalBatch}).
 */
public class DataParallelSuite extends DeviceSuite {

    static final int GLOBAL_BATCH = 64;
    static final int WORLD = 2;
    static final int STEPS = 20;
    static final double ATOL = 1e-4;
    static final double RTOL = 1e-4;

    /** Deterministic image batches (STEPS x GLOBAL_BATCH of 1x28x28) and labels. */
    private static final float[][] IMAGES = new float[STEPS][];
    private static final float[][] LABELS = new float[STEPS][];

    static {
        SplittableRandom rnd = new SplittableRandom(1234);
        for (int s = 0; s < STEPS; s++) {
            IMAGES[s] = new float[GLOBAL_BATCH * 784];
            LABELS[s] = new float[GLOBAL_BATCH];
            for (int i = 0; i < GLOBAL_BATCH; i++) {
                int label = rnd.nextInt(10);
                LABELS[s][i] = label;
                for (int p = 0; p < 784; p++) {
                    // a class-dependent blob plus noise, so the loss actually falls
                    double blob = (p % 28) / 28.0 > label / 10.0 ? 1.0 : 0.0;
                    IMAGES[s][i * 784 + p] = (float) (blob + 0.5 * rnd.nextDouble() - 0.25);
                }
            }
        }
    }

    private static float[] shard(float[] batch, int rank, int world, int rowLength) {
        int rows = batch.length / rowLength / world;
        return Arrays.copyOfRange(batch, rank * rows * rowLength, (rank + 1) * rows * rowLength);
    }

    /** A small network without batch norm. */
    private Module plainNet(long seed) {
        Generator gen = new Generator(seed);
        Device d = device();
        return new Sequential(new Conv2d(d, gen, 1, 4, 5, 1, 2), new Sigmoid(), new AvgPool2d(2), new Flatten(),
                new Linear(d, gen, 4 * 14 * 14, 32), new Sigmoid(), new Linear(d, gen, 32, 10));
    }

    /** Trains one replica on the whole batch for STEPS steps; returns its final state. */
    private StateDict trainSingle(Module model) {
        try (model; SGD sgd = new SGD(model.parameters(), 0.1f, 0.9f, 0f, false, 0f);
             DataParallel dp = new DataParallel(model, Collective.single())) {
            CrossEntropyLoss loss = new CrossEntropyLoss();
            for (int s = 0; s < STEPS; s++) {
                try (TensorScope scope = TensorScope.open()) {
                    dp.trainStep(loss, sgd, tensor(IMAGES[s], GLOBAL_BATCH, 1, 28, 28), tensor(LABELS[s], GLOBAL_BATCH));
                }
            }
            return model.stateDict();
        }
    }

    /** Per-step observer on one rank: (rank, step) after the step. */
    interface StepObserver {
        void afterStep(int rank, int step, DataParallel dp);
    }

    /**
     * Trains WORLD replicas on threads, each on its shard of every batch; rank r builds its model with seed
     * {@code 100 + r} (different inits: rank 0's must be broadcast). Returns each rank's final state.
     */
    private List<StateDict> trainParallel(BiFunction<Collective, Long, Module> factory, StepObserver observer)
            throws Exception {
        return trainParallel(factory, observer, DataParallel.DEFAULT_BUCKET_BYTES);
    }

    private List<StateDict> trainParallel(BiFunction<Collective, Long, Module> factory, StepObserver observer,
                                          long bucketBytes) throws Exception {
        LocalCollectiveGroup group = new LocalCollectiveGroup(WORLD, Duration.ofMinutes(2));
        ExecutorService pool = Executors.newFixedThreadPool(WORLD);
        try {
            List<Future<StateDict>> futures = new ArrayList<>();
            for (int r = 0; r < WORLD; r++) {
                int rank = r;
                futures.add(pool.submit(() -> {
                    Collective c = group.member(rank);
                    try (Module model = factory.apply(c, 100L + rank);
                         SGD sgd = new SGD(model.parameters(), 0.1f, 0.9f, 0f, false, 0f);
                         DataParallel dp = new DataParallel(model, c).bucketBytes(bucketBytes)) {
                        CrossEntropyLoss loss = new CrossEntropyLoss();
                        int b = GLOBAL_BATCH / WORLD;
                        for (int s = 0; s < STEPS; s++) {
                            try (TensorScope scope = TensorScope.open()) {
                                dp.trainStep(loss, sgd, tensor(shard(IMAGES[s], rank, WORLD, 784), b, 1, 28, 28),
                                        tensor(shard(LABELS[s], rank, WORLD, 1), b));
                            }
                            if (observer != null) {
                                observer.afterStep(rank, s, dp);
                            }
                        }
                        return model.stateDict();
                    } catch (RuntimeException | Error e) {
                        group.abort();
                        throw e;
                    }
                }));
            }
            List<StateDict> out = new ArrayList<>();
            for (Future<StateDict> f : futures) {
                out.add(f.get());
            }
            return out;
        } finally {
            pool.shutdownNow();
        }
    }

    private static double maxDiff(StateDict a, StateDict b, String keyPart) {
        double max = 0;
        for (Map.Entry<String, StateDict.Entry> e : a.entries().entrySet()) {
            if (!e.getKey().contains(keyPart)) {
                continue;
            }
            float[] x = e.getValue().data();
            float[] y = b.get(e.getKey()).data();
            for (int i = 0; i < x.length; i++) {
                max = Math.max(max, Math.abs(x[i] - y[i]));
            }
        }
        return max;
    }

    private static void assertStatesClose(StateDict want, StateDict got, String what) {
        assertEquals(want.entries().keySet(), got.entries().keySet(), what + ": keys");
        for (Map.Entry<String, StateDict.Entry> e : want.entries().entrySet()) {
            StateDict.Entry w = e.getValue();
            StateDict.Entry g = got.get(e.getKey());
            if (w.dtype() == StateDict.DType.I64) {
                assertEquals(w.longValue(), g.longValue(), what + ": " + e.getKey());
                continue;
            }
            for (int i = 0; i < w.data().length; i++) {
                double err = Math.abs(g.data()[i] - w.data()[i]);
                if (!(err <= ATOL + RTOL * Math.abs(w.data()[i]))) {
                    fail(what + ": " + e.getKey() + "[" + i + "]: got " + g.data()[i] + ", expected " + w.data()[i]
                            + " (|err| " + err + ")");
                }
            }
        }
    }

    private static void assertBitwiseEqual(StateDict a, StateDict b, String what) {
        for (Map.Entry<String, StateDict.Entry> e : a.entries().entrySet()) {
            StateDict.Entry x = e.getValue();
            StateDict.Entry y = b.get(e.getKey());
            if (x.dtype() == StateDict.DType.I64) {
                assertEquals(x.longValue(), y.longValue(), what + ": " + e.getKey());
            } else {
                assertArrayEquals(x.data(), y.data(), what + ": " + e.getKey());
            }
        }
    }

    @Test
    void gradientAllReduceWithoutBatchNormEqualsOneLargeBatch() throws Exception {
        StateDict single = trainSingle(plainNet(100));
        List<StateDict> ranks = trainParallel((c, seed) -> plainNet(seed), null);
        assertBitwiseEqual(ranks.get(0), ranks.get(1), "replicas");
        assertStatesClose(single, ranks.get(0), "2 x 32 with gradient all-reduce vs 1 x 64");
        try (Module untrained = plainNet(100)) {
            assertTrue(maxDiff(single, untrained.stateDict(), "") > 1e-2, "training moved the parameters");
        }
    }

    @Test
    void syncBatchNormLeNetEqualsOneLargeBatchIncludingRunningStatistics() throws Exception {
        StateDict single = trainSingle(new LeNet5(device(), new Generator(100)));
        List<StateDict> ranks = trainParallel((c, seed) -> new LeNet5(device(), new Generator(seed), c), null);
        assertBitwiseEqual(ranks.get(0), ranks.get(1), "replicas");
        assertStatesClose(single, ranks.get(0), "LeNet-BN 2 x 32 with SyncBatchNorm vs 1 x 64");
        assertEquals(STEPS, ranks.get(0).get("bn1.num_batches_tracked").longValue());
        try (LeNet5 untrained = new LeNet5(device(), new Generator(100))) {
            assertTrue(maxDiff(single, untrained.stateDict(), "running_var") > 1e-3, "running statistics moved");
        }
    }

    @Test
    void smallGradientBucketsGiveTheBitsOfOneBucket() throws Exception {
        List<StateDict> oneBucket = trainParallel((c, seed) -> new LeNet5(device(), new Generator(seed), c), null);
        int[] buckets = new int[1];
        List<StateDict> small = trainParallel((c, seed) -> new LeNet5(device(), new Generator(seed), c),
                (rank, step, dp) -> buckets[0] = dp.buckets(dp.model().parameters()).size(), 16 * 1024);
        assertTrue(buckets[0] > 3, "16 KiB buckets split LeNet-5's gradients, got " + buckets[0] + " bucket(s)");
        assertBitwiseEqual(oneBucket.get(0), small.get(0), "16 KiB buckets vs one 25 MiB bucket");
        assertBitwiseEqual(small.get(0), small.get(1), "replicas");
    }

    @Test
    void syncBatchNormStatisticsAreNotBroadcastEachStepPlainBatchNormOnesAre() {
        // a fake group of two (rank 0 hears itself): construction only broadcasts rank 0's own state
        Collective two = new Collective() {
            @Override
            public int rank() {
                return 0;
            }

            @Override
            public int worldSize() {
                return 2;
            }

            @Override
            public byte[][] allGather(byte[] local) {
                return new byte[][]{local, local};
            }
        };
        try (LeNet5 synced = new LeNet5(device(), new Generator(1), two);
             LeNet5 plain = new LeNet5(device(), new Generator(1));
             DataParallel a = new DataParallel(synced, two);
             DataParallel b = new DataParallel(plain, two)) {
            assertFalse(a.broadcastsBuffers(), "SyncBatchNorm keeps its statistics global");
            assertTrue(b.broadcastsBuffers(), "plain batch norm follows DDP's broadcast_buffers");
        }
    }

    @Test
    void plainBatchNormKeepsRankZerosRunningStatisticsAsDdpDoes() throws Exception {
        // a reference replica that replays each of rank 0's steps on rank 0's shard from rank 0's state
        StateDict[] before = new StateDict[1];
        List<String> failures = new ArrayList<>();
        try (LeNet5 reference = new LeNet5(device(), new Generator(0))) {
            StepObserver observer = (rank, step, dp) -> {
                if (rank != 0) {
                    return;
                }
                StateDict after = dp.model().stateDict();
                if (before[0] != null) {
                    reference.loadStateDict(before[0]);
                    reference.train();
                    try (TensorScope scope = TensorScope.open(); GradMode g = GradMode.noGrad()) {
                        reference.forward(tensor(shard(IMAGES[step], 0, WORLD, 784), GLOBAL_BATCH / WORLD, 1, 28, 28));
                    }
                    for (Map.Entry<String, Tensor> e : reference.namedBuffers().entrySet()) {
                        if (!Arrays.equals(e.getValue().toArray(), after.get(e.getKey()).data())) {
                            failures.add("step " + step + ": " + e.getKey() + " is not rank 0's own statistics");
                        }
                    }
                }
                before[0] = after;
            };
            List<StateDict> ranks = trainParallel((c, seed) -> new LeNet5(device(), new Generator(seed)), observer);
            assertEquals(List.of(), failures);
            // parameters are identical on every replica; buffers are each rank's own update of rank 0's buffers
            for (String key : ranks.get(0).entries().keySet()) {
                if (key.contains("running") || key.contains("num_batches")) {
                    continue;
                }
                assertArrayEquals(ranks.get(0).get(key).data(), ranks.get(1).get(key).data(), key);
            }
            assertTrue(maxDiff(ranks.get(0), ranks.get(1), "running_mean") > 1e-4,
                    "rank 1 updated rank 0's buffers from its own shard");
        }
    }

    @Test
    void plainBatchNormIsNotTheGlobalBatch() throws Exception {
        StateDict single = trainSingle(new LeNet5(device(), new Generator(100)));
        List<StateDict> ranks = trainParallel((c, seed) -> new LeNet5(device(), new Generator(seed)), null);
        double diff = maxDiff(single, ranks.get(0), "weight");
        assertTrue(diff > 100 * ATOL, "local batch statistics change the training (max weight difference " + diff + ")");
    }

    @Test
    void syncBatchNormForwardAndBackwardMatchBatchNormOnTheConcatenatedBatch() throws Exception {
        int n = 3, c = 4, h = 5, w = 3;
        int per = c * h * w;
        float[] x = randnFloats(7, WORLD * n, c, h, w);
        float[] dyWeights = randnFloats(8, WORLD * n, c, h, w);
        float[] gamma = randnFloats(9, c);
        // one batch-norm layer on the whole batch
        float[] wantY;
        float[] wantDx;
        float[] wantDGamma;
        float[] wantDBeta;
        float[] wantRunningVar;
        try (BatchNorm2d bn = new BatchNorm2d(device(), c, 1e-5f, null, true, true);
             TensorScope scope = TensorScope.open()) {
            bn.weight().copyFrom(gamma);
            Tensor in = tensor(x, WORLD * n, c, h, w).requiresGrad(true);
            Tensor y = bn.forward(in);
            y.mul(tensor(dyWeights, WORLD * n, c, h, w)).sum().backward();
            wantY = y.toArray();
            wantDx = in.grad().toArray();
            wantDGamma = bn.weight().grad().toArray();
            wantDBeta = bn.bias().grad().toArray();
            wantRunningVar = bn.runningVar().toArray();
        }
        LocalCollectiveGroup group = new LocalCollectiveGroup(WORLD);
        ExecutorService pool = Executors.newFixedThreadPool(WORLD);
        try {
            List<Future<float[][]>> futures = new ArrayList<>();
            for (int r = 0; r < WORLD; r++) {
                int rank = r;
                futures.add(pool.submit(() -> {
                    try (SyncBatchNorm bn = new SyncBatchNorm(device(), c, 1e-5f, null, true, true, group.member(rank));
                         TensorScope scope = TensorScope.open()) {
                        bn.weight().copyFrom(gamma);
                        Tensor in = tensor(shard(x, rank, WORLD, per), n, c, h, w).requiresGrad(true);
                        Tensor y = bn.forward(in);
                        y.mul(tensor(shard(dyWeights, rank, WORLD, per), n, c, h, w)).sum().backward();
                        return new float[][]{y.toArray(), in.grad().toArray(), bn.weight().grad().toArray(),
                                bn.bias().grad().toArray(), bn.runningVar().toArray()};
                    }
                }));
            }
            float[][] r0 = futures.get(0).get();
            float[][] r1 = futures.get(1).get();
            assertClose(toDouble(wantY), concat(r0[0], r1[0]), 1e-5, 1e-5, "y");
            assertClose(toDouble(wantDx), concat(r0[1], r1[1]), 1e-4, 1e-5, "dx");
            assertClose(toDouble(wantDGamma), add(r0[2], r1[2]), 1e-4, 1e-5, "dgamma (summed over members)");
            assertClose(toDouble(wantDBeta), add(r0[3], r1[3]), 1e-4, 1e-5, "dbeta (summed over members)");
            // global unbiased variance with momentum=None (cumulative average) after one batch
            assertClose(toDouble(wantRunningVar), r0[4], 1e-5, 1e-6, "running_var");
            assertArrayEquals(r0[4], r1[4], "running_var identical on every member");
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void syncBatchNormOfOneMemberIsBatchNormAndEvalUsesRunningStatistics() {
        float[] x = randnFloats(3, 8, 3, 4, 4);
        try (BatchNorm2d bn = new BatchNorm2d(device(), 3);
             SyncBatchNorm sync = new SyncBatchNorm(device(), 3, Collective.single());
             TensorScope scope = TensorScope.open()) {
            assertArrayEquals(bn.forward(tensor(x, 8, 3, 4, 4)).toArray(), sync.forward(tensor(x, 8, 3, 4, 4)).toArray());
            assertArrayEquals(bn.runningVar().toArray(), sync.runningVar().toArray());
            bn.eval();
            sync.eval();
            assertArrayEquals(bn.forward(tensor(x, 8, 3, 4, 4)).toArray(), sync.forward(tensor(x, 8, 3, 4, 4)).toArray());
            assertEquals(bn.stateDict().entries().keySet(), sync.stateDict().entries().keySet());
        }
    }

    @ParameterizedTest(name = "pixel {0}, SyncBatchNorm {1}")
    @CsvSource({"NaN, true", "1e30, true", "3.4028235e38, true", "1e30, false", "-3.4028235e38, false"})
    void aNonFiniteStepOnOneMemberSkipsTheStepOnAllAndChangesNothing(float pixel, boolean syncBatchNorm)
            throws Exception {
        LocalCollectiveGroup group = new LocalCollectiveGroup(WORLD);
        ExecutorService pool = Executors.newFixedThreadPool(WORLD);
        try {
            List<Future<StateDict[]>> futures = new ArrayList<>();
            for (int r = 0; r < WORLD; r++) {
                int rank = r;
                futures.add(pool.submit(() -> {
                    Collective c = group.member(rank);
                    try (LeNet5 model = syncBatchNorm ? new LeNet5(device(), new Generator(100 + rank), c)
                            : new LeNet5(device(), new Generator(100 + rank));
                         SGD sgd = new SGD(model.parameters(), 0.1f, 0.9f, 0f, false, 0f);
                         DataParallel dp = new DataParallel(model, c)) {
                        StateDict before = model.stateDict();
                        float[] images = shard(IMAGES[0], rank, WORLD, 784);
                        if (rank == 1) {
                            images[5] = pixel;
                        }
                        float loss;
                        try (TensorScope scope = TensorScope.open()) {
                            loss = dp.trainStep(new CrossEntropyLoss(), sgd, tensor(images, 32, 1, 28, 28),
                                    tensor(shard(LABELS[0], rank, WORLD, 1), 32));
                        }
                        assertTrue(Float.isNaN(loss));
                        assertEquals(1, dp.skippedSteps());
                        return new StateDict[]{before, model.stateDict()};
                    }
                }));
            }
            for (Future<StateDict[]> f : futures) {
                StateDict[] states = f.get();
                assertBitwiseEqual(states[0], states[1], "state after a skipped step");
            }
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void aFailingMemberBreaksTheGroupInsteadOfHangingIt() throws Exception {
        LocalCollectiveGroup group = new LocalCollectiveGroup(2, Duration.ofSeconds(30));
        ExecutorService pool = Executors.newSingleThreadExecutor();
        try {
            Future<?> waiting = pool.submit(() -> group.member(0).allGather(new byte[]{1}));
            Thread.sleep(100);
            group.abort();
            Exception e = assertThrows(Exception.class, waiting::get);
            assertTrue(e.getCause() instanceof CollectiveException, String.valueOf(e.getCause()));
            assertTrue(e.getCause().getMessage().contains("rank 0"), e.getCause().getMessage());
        } finally {
            pool.shutdownNow();
        }
        Collective one = Collective.single();
        float[] v = {1f, 2f};
        one.allReduceMean(v);
        assertArrayEquals(new float[]{1f, 2f}, v);
        assertThrows(IllegalArgumentException.class, () -> one.broadcast(v, 1));
    }

    private float[] randnFloats(long seed, int... shape) {
        try (TensorScope scope = TensorScope.open()) {
            return randn(seed, shape).toArray();
        }
    }

    private static float[] concat(float[] a, float[] b) {
        float[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    private static float[] add(float[] a, float[] b) {
        float[] out = new float[a.length];
        for (int i = 0; i < a.length; i++) {
            out[i] = a[i] + b[i];
        }
        return out;
    }
}
