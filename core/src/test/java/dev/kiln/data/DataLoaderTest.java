package dev.kiln.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class DataLoaderTest {
    /** Sample i: features [i, i+1, i+2] (shape [3]), label i % 10. */
    static final class Counting implements Dataset {
        final int n;
        volatile int failAt = -1;
        volatile CountDownLatch block;

        Counting(int n) {
            this.n = n;
        }

        @Override
        public int size() {
            return n;
        }

        @Override
        public int[] featureShape() {
            return new int[] {3};
        }

        @Override
        public void fill(int index, float[] dst, int offset) {
            if (index == failAt) {
                throw new IllegalStateException("bad sample " + index);
            }
            CountDownLatch b = block;
            if (b != null) {
                try {
                    b.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
            dst[offset] = index;
            dst[offset + 1] = index + 1;
            dst[offset + 2] = index + 2;
        }

        @Override
        public int label(int index) {
            return index % 10;
        }
    }

    private static List<Integer> collect(DataLoader loader, int epoch) {
        List<Integer> seen = new ArrayList<>();
        for (Batch b : loader.epoch(epoch)) {
            for (int i = 0; i < b.size(); i++) {
                int s = (int) b.features()[i * 3];
                assertEquals(s + 1, b.features()[i * 3 + 1]);
                assertEquals(s % 10, b.labels()[i]);
                assertEquals(s, b.indices()[i]);
                seen.add(s);
            }
        }
        return seen;
    }

    @ParameterizedTest
    @ValueSource(ints = {0, 1, 3})
    void everySampleExactlyOncePerEpoch(int prefetch) {
        try (DataLoader loader = DataLoader.builder(new Counting(103)).batchSize(10).seed(7).prefetch(prefetch).build()) {
            assertEquals(11, loader.batchesPerEpoch());
            for (int e = 0; e < 3; e++) {
                List<Integer> seen = collect(loader, e);
                assertEquals(103, seen.size());
                List<Integer> sorted = new ArrayList<>(seen);
                Collections.sort(sorted);
                for (int i = 0; i < 103; i++) {
                    assertEquals(i, sorted.get(i));
                }
            }
        }
    }

    @Test
    void epochsDifferSameSeedReproducesAndResumeMatches() {
        List<Integer> e0;
        List<Integer> e1;
        List<Integer> e5;
        try (DataLoader a = DataLoader.builder(new Counting(500)).batchSize(32).seed(42).build()) {
            e0 = collect(a, 0);
            e1 = collect(a, 1);
            e5 = collect(a, 5);
        }
        assertFalse(e0.equals(e1), "different epochs, different orders");
        try (DataLoader b = DataLoader.builder(new Counting(500)).batchSize(32).seed(42).build()) {
            assertEquals(e5, collect(b, 5), "resuming at epoch 5 reproduces it");
            assertEquals(e0, collect(b, 0), "same seed, same order");
        }
        try (DataLoader c = DataLoader.builder(new Counting(500)).batchSize(32).seed(43).build()) {
            assertFalse(e0.equals(collect(c, 0)), "another seed, another order");
        }
        assertArrayEquals(EpochOrder.permutation(42, 5, 500), e5.stream().mapToInt(Integer::intValue).toArray());
    }

    @Test
    void noShuffleKeepsOrder() {
        try (DataLoader loader = DataLoader.builder(new Counting(25)).batchSize(4).shuffle(false).build()) {
            List<Integer> seen = collect(loader, 3);
            for (int i = 0; i < 25; i++) {
                assertEquals(i, seen.get(i));
            }
        }
    }

    @Test
    void partialLastBatchKeptByDefault() {
        try (DataLoader loader = DataLoader.builder(new Counting(25)).batchSize(10).build()) {
            List<Integer> sizes = new ArrayList<>();
            for (Batch b : loader.epoch(0)) {
                sizes.add(b.size());
                assertArrayEquals(new int[] {b.size(), 3}, b.shape());
            }
            assertEquals(List.of(10, 10, 5), sizes);
            assertEquals(25, loader.samplesPerEpoch());
        }
    }

    @Test
    void dropLastDropsThePartialBatch() {
        try (DataLoader loader = DataLoader.builder(new Counting(25)).batchSize(10).dropLast(true).seed(1).build()) {
            assertEquals(2, loader.batchesPerEpoch());
            List<Integer> seen = collect(loader, 0);
            assertEquals(20, seen.size());
            assertEquals(20, Set.copyOf(seen).size());
        }
        try (DataLoader loader = DataLoader.builder(new Counting(20)).batchSize(10).dropLast(true).build()) {
            assertEquals(2, loader.batchesPerEpoch(), "nothing dropped when n divides evenly");
        }
    }

    @Test
    void mnistNormalisation() {
        byte[] img = new byte[4];
        img[0] = 0;
        img[1] = (byte) 255;
        img[2] = (byte) 128;
        img[3] = 33;
        ImageSplit split = new ImageSplit(1, 2, 2, img, new byte[] {7});
        try (DataLoader loader = DataLoader.builder(split).batchSize(8).normalization(Normalization.MNIST).build()) {
            var it = loader.epoch(0).iterator();
            Batch b = it.next();
            assertEquals(1, b.size());
            assertArrayEquals(new int[] {1, 1, 2, 2}, b.shape());
            assertEquals(7f, b.labels()[0]);
            int[] raw = {0, 255, 128, 33};
            for (int i = 0; i < 4; i++) {
                float expected = (float) ((raw[i] / 255.0 - 0.1307) / 0.3081);
                assertEquals(expected, b.features()[i], 1e-5f, "pixel " + raw[i]);
            }
            assertEquals(-0.42421296f, b.features()[0], 1e-6f);
            assertEquals(2.8214867f, b.features()[1], 1e-5f);
            assertFalse(it.hasNext());
        }
        Normalization custom = Normalization.bytes(0.5f, 0.5f);
        assertEquals(1f, custom.apply(255f), 1e-6f);
        assertEquals(-1f, custom.apply(0f), 1e-6f);
    }

    @Test
    void decodingExceptionSurfacesInConsumer() {
        Counting ds = new Counting(100);
        ds.failAt = 57;
        try (DataLoader loader = DataLoader.builder(ds).batchSize(10).shuffle(false).prefetch(2).build()) {
            DataLoader.Epoch epoch = loader.epoch(0);
            int taken = 0;
            DataLoaderException e = null;
            try {
                while (epoch.hasNext()) {
                    epoch.next();
                    taken++;
                }
            } catch (DataLoaderException ex) {
                e = ex;
            }
            assertNotNull(e, "the failure reaches the consumer");
            assertEquals(5, taken, "batches 0-4 were fine");
            assertTrue(e.getCause() instanceof IllegalStateException);
            assertTrue(e.getMessage().contains("batch 5") && e.getMessage().contains("bad sample 57"), e.getMessage());
            assertFalse(epoch.hasNext());
            assertFalse(epoch.producerThread().isAlive());
        }
        // synchronous mode too
        try (DataLoader loader = DataLoader.builder(ds).batchSize(10).shuffle(false).prefetch(0).build()) {
            DataLoaderException e = assertThrows(DataLoaderException.class, () -> collect(loader, 0));
            assertTrue(e.getCause() instanceof IllegalStateException);
        }
    }

    @Test
    void closeStopsTheThread() throws Exception {
        Counting ds = new Counting(1000);
        DataLoader loader = DataLoader.builder(ds).batchSize(10).prefetch(3).build();
        DataLoader.Epoch epoch = loader.epoch(0);
        epoch.next();
        Thread t = epoch.producerThread();
        assertTrue(t.isDaemon());
        // the producer is now parked: K batches ahead, the pool is exhausted
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (t.getState() != Thread.State.WAITING && System.nanoTime() < deadline) {
            Thread.sleep(5);
        }
        assertEquals(Thread.State.WAITING, t.getState(), "producer waits for a free batch, at most K ahead");
        loader.close();
        assertFalse(t.isAlive(), "close() stops the thread");
        assertFalse(epoch.hasNext());
        assertThrows(IllegalStateException.class, () -> loader.epoch(1));
        loader.close(); // idempotent
    }

    @Test
    void newEpochClosesThePreviousOne() {
        try (DataLoader loader = DataLoader.builder(new Counting(1000)).batchSize(10).build()) {
            DataLoader.Epoch e0 = loader.epoch(0);
            e0.next();
            Thread t0 = e0.producerThread();
            List<Integer> e1 = collect(loader, 1);
            assertFalse(t0.isAlive());
            assertEquals(1000, e1.size());
        }
    }

    @Test
    void batchesAreRecycledFromASmallPool() {
        int prefetch = 2;
        try (DataLoader loader = DataLoader.builder(new Counting(1000)).batchSize(7).prefetch(prefetch).build()) {
            Set<Batch> distinct = Collections.newSetFromMap(new IdentityHashMap<>());
            Set<float[]> arrays = Collections.newSetFromMap(new IdentityHashMap<>());
            for (int e = 0; e < 3; e++) {
                for (Batch b : loader.epoch(e)) {
                    distinct.add(b);
                    arrays.add(b.features());
                }
            }
            assertTrue(distinct.size() <= prefetch + 1, "pool of K+1 batches, got " + distinct.size());
            assertEquals(distinct.size(), arrays.size());
        }
        try (DataLoader sync = DataLoader.builder(new Counting(100)).batchSize(7).prefetch(0).build()) {
            Batch first = null;
            for (Batch b : sync.epoch(0)) {
                if (first == null) {
                    first = b;
                }
                assertSame(first, b);
            }
        }
    }

    @Test
    void realMnistOneEpoch() throws Exception {
        ImageDataset ds = MnistDirectory.read(IdxTestFiles.realMnistDirOrSkip(), "KILN_MNIST_DIR", false);
        try (DataLoader loader = DataLoader.builder(ds.train()).batchSize(128).seed(3)
                .normalization(Normalization.MNIST).build()) {
            long t0 = System.nanoTime();
            double sum = 0;
            long count = 0;
            int[] labels = new int[10];
            for (Batch b : loader.epoch(0)) {
                assertArrayEquals(new int[] {b.size(), 1, 28, 28}, Arrays.copyOf(b.shape(), 4));
                for (int i = 0; i < b.size() * 784; i++) {
                    sum += b.features()[i];
                }
                for (int i = 0; i < b.size(); i++) {
                    labels[(int) b.labels()[i]]++;
                }
                count += (long) b.size() * 784;
            }
            double mean = sum / count;
            assertTrue(Math.abs(mean) < 0.01, "normalised MNIST mean ~ 0, got " + mean);
            assertEquals(5923, labels[0]);
            org.slf4j.LoggerFactory.getLogger(DataLoaderTest.class)
                    .info("one MNIST epoch (469 batches) in {} ms", (System.nanoTime() - t0) / 1_000_000);
        }
    }

    @Test
    void interruptedConsumerClosesWithoutAFalseStuckWarning() throws Exception {
        java.io.PrintStream err = System.err;
        java.io.ByteArrayOutputStream captured = new java.io.ByteArrayOutputStream();
        Counting data = new Counting(400);
        try (DataLoader loader = DataLoader.builder(data).batchSize(4).prefetch(2).build()) {
            DataLoader.Epoch epoch = loader.epoch(0);
            epoch.next();
            System.setErr(new java.io.PrintStream(captured, true));
            Thread.currentThread().interrupt();
            long start = System.nanoTime();
            epoch.close();
            assertTrue(Thread.interrupted(), "the interrupt stays set for the caller");
            assertTrue(System.nanoTime() - start < 4_000_000_000L, "the producer stopped at once");
        } finally {
            System.setErr(err);
        }
        assertFalse(captured.toString().contains("did not stop"), "no stuck-thread warning: " + captured);
    }

    @Test
    void pytorchOrderIsEpochOrderPytorchPermutationEpochByEpoch() {
        try (DataLoader torchOrder = DataLoader.builder(new Counting(100)).batchSize(10).seed(0).pytorchOrder(true).build();
             DataLoader kilnOrder = DataLoader.builder(new Counting(100)).batchSize(10).seed(0).build()) {
            for (int epoch = 0; epoch < 3; epoch++) {
                // EpochOrder.pytorchPermutation is checked against PyTorch's DataLoader in PyTorchRandomStreamsTest.
                assertArrayEquals(EpochOrder.pytorchPermutation(0, epoch, 100), torchOrder.order(epoch), "epoch " + epoch);
                assertFalse(java.util.Arrays.equals(kilnOrder.order(epoch), torchOrder.order(epoch)));
            }
        }
    }
}
