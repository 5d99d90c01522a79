package com.example.consumer;

import dev.kiln.inference.HotSwapPredictor;
import dev.kiln.inference.Predictor;
import dev.kiln.models.LeNet5;
import dev.kiln.train.ModelFiles;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class HotSwapTest {

    @Test
    @DisplayName("8 threads score through 10 hot swaps: no failed request, every answer from one of the two models")
    void eightThreadsThroughHotSwaps() throws Exception {
        byte[] modelA;
        byte[] modelB;
        try (LeNet5 a = Fixtures.trained(11, 1); LeNet5 b = Fixtures.trained(12, 1)) {
            modelA = ModelFiles.toBytes(a, Fixtures.NORMALIZATION);
            modelB = ModelFiles.toBytes(b, Fixtures.NORMALIZATION);
        }
        byte[][] images = Fixtures.images(13, new int[16]);
        int[] classesA;
        int[] classesB;
        try (Predictor pa = Predictor.load(modelA); Predictor pb = Predictor.load(modelB)) {
            classesA = pa.classes(images);
            classesB = pb.classes(images);
        }
        AtomicInteger failed = new AtomicInteger();
        AtomicInteger served = new AtomicInteger();
        AtomicBoolean stop = new AtomicBoolean();
        ExecutorService pool = Executors.newFixedThreadPool(8);
        try (HotSwapPredictor service = new HotSwapPredictor(Predictor.load(modelA))) {
            List<Future<?>> callers = new ArrayList<>();
            for (int t = 0; t < 8; t++) {
                callers.add(pool.submit(() -> {
                    while (!stop.get()) {
                        try {
                            int[] got = service.classes(images);
                            if (!Arrays.equals(got, classesA) && !Arrays.equals(got, classesB)) {
                                failed.incrementAndGet();
                            }
                            served.incrementAndGet();
                        } catch (RuntimeException e) {
                            failed.incrementAndGet();
                        }
                    }
                }));
            }
            for (int swap = 0; swap < 10; swap++) {
                int before = served.get();
                while (served.get() < before + 8) {
                    Thread.sleep(1);
                }
                service.swap(Predictor.load(swap % 2 == 0 ? modelB : modelA));
            }
            stop.set(true);
            for (Future<?> f : callers) {
                f.get(60, TimeUnit.SECONDS);
            }
        } finally {
            pool.shutdownNow();
        }
        assertEquals(0, failed.get(), "failed requests");
        assertTrue(served.get() >= 80, "served " + served.get());
    }
}
