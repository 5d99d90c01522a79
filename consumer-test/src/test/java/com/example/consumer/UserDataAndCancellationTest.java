package com.example.consumer;

import dev.kiln.core.Device;
import dev.kiln.core.Generator;
import dev.kiln.data.ArrayBatch;
import dev.kiln.models.LeNet5;
import dev.kiln.nn.CrossEntropyLoss;
import dev.kiln.optim.SGD;
import dev.kiln.train.EpochMetrics;
import dev.kiln.train.Trainer;
import dev.kiln.train.TrainingCancelledException;
import dev.kiln.train.TrainingListener;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class UserDataAndCancellationTest {

    @Test
    @DisplayName("training from a stream of the application's batches, then cancelling a long run from another thread")
    void streamThenCancel() throws Exception {
        int[] ys = new int[192];
        float[][] xs = Fixtures.normalised(Fixtures.images(31, ys));
        List<ArrayBatch> batches = Fixtures.batches(xs, ys, 32);
        try (LeNet5 model = new LeNet5(Device.cpu(), new Generator(1));
             SGD sgd = new SGD(model.parameters(), 0.05f, 0.9f, 0f, false, 0f)) {
            CountDownLatch running = new CountDownLatch(1);
            Trainer trainer = Trainer.builder().model(model).loss(new CrossEntropyLoss()).optimizer(sgd)
                    .device(Device.cpu()).epochs(10_000).reportEvery(1).listener(new TrainingListener() {
                        @Override
                        public void onEpochEnd(EpochMetrics m) {
                            running.countDown();
                        }
                    }).build();
            // a stream made anew for every epoch, e.g. rows of a query
            CompletableFuture<List<EpochMetrics>> run = CompletableFuture.supplyAsync(
                    () -> trainer.fit(() -> Stream.of(batches.toArray(new ArrayBatch[0])).iterator(), null));
            assertTrue(running.await(60, TimeUnit.SECONDS));
            trainer.cancellation().cancel();
            Throwable t = null;
            try {
                run.get(60, TimeUnit.SECONDS);
            } catch (java.util.concurrent.ExecutionException e) {
                t = e.getCause();
            }
            assertTrue(t instanceof TrainingCancelledException, "cancelled: " + t);
            int completed = ((TrainingCancelledException) t).completedEpochs();
            assertTrue(completed >= 1 && completed < 10_000);
            assertEquals(completed, trainer.history().size());
            assertEquals(192, trainer.history().get(0).trainImages());
            assertTrue(trainer.history().get(completed - 1).trainAccuracy() > 0.3, trainer.history().toString());
        }
    }
}
