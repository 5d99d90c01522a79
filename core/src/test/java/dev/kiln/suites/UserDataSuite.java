package dev.kiln.suites;

import dev.kiln.core.Generator;
import dev.kiln.data.ArrayBatch;
import dev.kiln.data.ArrayDataset;
import dev.kiln.data.DataLoader;
import dev.kiln.models.LeNet5;
import dev.kiln.nn.CrossEntropyLoss;
import dev.kiln.nn.StateDict;
import dev.kiln.optim.SGD;
import dev.kiln.train.Checkpoint;
import dev.kiln.train.EpochMetrics;
import dev.kiln.train.Trainer;
import dev.kiln.train.TrainingCancelledException;
import dev.kiln.train.TrainingListener;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The trainer on the user's own data: a Dataset of arrays, an Iterable or stream of batches; cancellation; listeners. */
public class UserDataSuite extends DeviceSuite {

    private static final int N = 96;
    private static final int BATCH = 16;

    /** Learnable synthetic images: a bright square whose position is the label. */
    private static float[][] samples(long seed, int[] labels) {
        SplittableRandom r = new SplittableRandom(seed);
        float[][] xs = new float[labels.length][784];
        for (int i = 0; i < labels.length; i++) {
            labels[i] = r.nextInt(10);
            for (int p = 0; p < 784; p++) {
                xs[i][p] = (float) r.nextDouble() * 0.3f;
            }
            int row = 2 + (labels[i] / 5) * 12;
            int col = 2 + (labels[i] % 5) * 5;
            for (int y = row; y < row + 8; y++) {
                for (int x = col; x < col + 4; x++) {
                    xs[i][y * 28 + x] = 2f;
                }
            }
        }
        return xs;
    }

    private record Run(List<EpochMetrics> history, StateDict state) {
    }

    private Run train(int epochs, Function<Trainer, List<EpochMetrics>> fit, Trainer.Builder extra) {
        try (LeNet5 model = new LeNet5(device(), new Generator(9));
             SGD sgd = new SGD(model.parameters(), 0.05f, 0.9f, 0f, false, 0f)) {
            Trainer t = extra.model(model).loss(new CrossEntropyLoss()).optimizer(sgd).device(device())
                    .epochs(epochs).seed(3).batchSize(BATCH).build();
            List<EpochMetrics> h = fit.apply(t);
            return new Run(h, model.stateDict());
        }
    }

    private static void assertSameState(StateDict a, StateDict b) {
        for (String k : a.entries().keySet()) {
            assertArrayEquals(a.get(k).data(), b.get(k).data(), k);
            assertEquals(a.get(k).longValue(), b.get(k).longValue(), k);
        }
    }

    private static List<ArrayBatch> batches(float[][] xs, int[] ys) {
        List<ArrayBatch> out = new ArrayList<>();
        for (int s = 0; s < xs.length; s += BATCH) {
            int e = Math.min(xs.length, s + BATCH);
            out.add(ArrayBatch.of(java.util.Arrays.copyOfRange(xs, s, e), java.util.Arrays.copyOfRange(ys, s, e), 1, 28, 28));
        }
        return out;
    }

    @Test
    @DisplayName("a Dataset of arrays, a List of batches and a stream of batches train exactly as the DataLoader over the same data")
    void userDataMatchesDataLoader() {
        int[] ys = new int[N];
        float[][] xs = samples(5, ys);
        int[] testYs = new int[40];
        float[][] testXs = samples(6, testYs);
        ArrayDataset train = new ArrayDataset(xs, ys, 1, 28, 28);
        ArrayDataset test = new ArrayDataset(testXs, testYs, 1, 28, 28);
        Run viaDataset = train(2, t -> t.fit(train, test), Trainer.builder());
        Run viaLoader = train(2, t -> {
            try (DataLoader tl = DataLoader.builder(train).batchSize(BATCH).seed(3).build();
                 DataLoader vl = DataLoader.builder(test).batchSize(BATCH).shuffle(false).build()) {
                return t.fit(tl, vl);
            }
        }, Trainer.builder());
        assertSameState(viaLoader.state, viaDataset.state);
        assertEquals(viaLoader.history.get(1).testAccuracy(), viaDataset.history.get(1).testAccuracy());
        assertTrue(viaDataset.history.get(1).trainAccuracy() > 0.5, "learns: " + viaDataset.history);

        List<ArrayBatch> list = batches(xs, ys);
        List<ArrayBatch> testList = batches(testXs, testYs);
        Run viaList = train(2, t -> t.fit(list, testList), Trainer.builder());
        Run viaStream = train(2, t -> t.fit(() -> list.stream().iterator(), () -> testList.stream().iterator()), Trainer.builder());
        Run viaUnshuffledLoader = train(2, t -> {
            try (DataLoader tl = DataLoader.builder(train).batchSize(BATCH).shuffle(false).build();
                 DataLoader vl = DataLoader.builder(test).batchSize(BATCH).shuffle(false).build()) {
                return t.fit(tl, vl);
            }
        }, Trainer.builder());
        assertSameState(viaUnshuffledLoader.state, viaList.state);
        assertSameState(viaUnshuffledLoader.state, viaStream.state);
        assertEquals(N, viaStream.history.get(0).trainImages());
        assertEquals(viaUnshuffledLoader.history.get(1).testLoss(), viaStream.history.get(1).testLoss());
    }

    @Test
    @DisplayName("a batch with 7 labels for 8 images or a negative label is refused before it reaches the model")
    void badBatches() {
        assertThrows(IllegalArgumentException.class, () -> ArrayBatch.of(new float[8][784], new int[7], 1, 28, 28));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new ArrayBatch(new float[2 * 784], new int[]{1, -1}, new int[]{1, 28, 28}));
        assertMessageContains(e, "-1");
    }

    @Test
    @DisplayName("cancel from another thread stops the run between steps, with the loader stopped and the last epoch's checkpoint intact")
    void cancelFromAnotherThread(@TempDir Path dir) throws Exception {
        int[] ys = new int[N];
        float[][] xs = samples(7, ys);
        Path ckpt = dir.resolve("c.safetensors");
        CountDownLatch secondEpochStarted = new CountDownLatch(1);
        CountDownLatch cancelled = new CountDownLatch(1);
        AtomicReference<Trainer> trainer = new AtomicReference<>();
        ExecutorService pool = Executors.newSingleThreadExecutor();
        try {
            Future<Throwable> run = pool.submit(() -> {
                try {
                    train(50, t -> {
                        trainer.set(t);
                        return t.fit(new ArrayDataset(xs, ys, 1, 28, 28), null);
                    }, Trainer.builder().checkpoint(ckpt).reportEvery(1).listener(new TrainingListener() {
                        @Override
                        public void onBatch(int epoch, int batch, int batches, double loss, double ips) {
                            if (epoch == 1 && batch == 1) {
                                secondEpochStarted.countDown();
                                awaitQuietly(cancelled);
                            }
                        }
                    }));
                    return null;
                } catch (Throwable t) {
                    return t;
                }
            });
            assertTrue(secondEpochStarted.await(60, TimeUnit.SECONDS));
            trainer.get().cancellation().cancel();
            cancelled.countDown();
            Throwable t = run.get(60, TimeUnit.SECONDS);
            assertTrue(t instanceof TrainingCancelledException, "expected a cancellation, got " + t);
            assertEquals(1, ((TrainingCancelledException) t).completedEpochs());
            assertEquals(1, Checkpoint.load(ckpt).completedEpochs());
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    @DisplayName("an interrupt stops the run as a cancellation, with the interrupt flag kept")
    void interruptStops() throws Exception {
        int[] ys = new int[N];
        float[][] xs = samples(8, ys);
        AtomicReference<Throwable> error = new AtomicReference<>();
        AtomicReference<Boolean> flag = new AtomicReference<>();
        Thread worker = new Thread(() -> {
            try {
                train(1000, t -> t.fit(new ArrayDataset(xs, ys, 1, 28, 28), null), Trainer.builder().reportEvery(1)
                        .listener(new TrainingListener() {
                            @Override
                            public void onBatch(int epoch, int batch, int batches, double loss, double ips) {
                                if (epoch == 0 && batch == 2) {
                                    Thread.currentThread().interrupt();
                                }
                            }
                        }));
            } catch (Throwable t) {
                error.set(t);
            }
            flag.set(Thread.currentThread().isInterrupted());
        });
        worker.start();
        worker.join(60_000);
        assertTrue(error.get() instanceof TrainingCancelledException, "got " + error.get());
        assertEquals(0, ((TrainingCancelledException) error.get()).completedEpochs());
        assertEquals(Boolean.TRUE, flag.get());
    }

    @Test
    @DisplayName("a listener that throws at an epoch's end runs after that epoch's checkpoint is written")
    void listenerThrowsAfterCheckpoint(@TempDir Path dir) throws Exception {
        int[] ys = new int[N];
        float[][] xs = samples(9, ys);
        Path ckpt = dir.resolve("c.safetensors");
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> train(3,
                t -> t.fit(new ArrayDataset(xs, ys, 1, 28, 28), null),
                Trainer.builder().checkpoint(ckpt).listener(new TrainingListener() {
                    @Override
                    public void onEpochEnd(EpochMetrics m) {
                        if (m.epoch() == 1) {
                            throw new IllegalStateException("listener failed at epoch " + m.epoch());
                        }
                    }
                })));
        assertMessageContains(e, "epoch 1");
        assertEquals(2, Checkpoint.load(ckpt).completedEpochs(), "epoch 1's checkpoint was written before the listener ran");
    }

    private static void awaitQuietly(CountDownLatch latch) {
        try {
            latch.await(60, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

}
