package com.example.consumer;

import dev.kiln.core.Device;
import dev.kiln.core.Generator;
import dev.kiln.core.NonFiniteLossException;
import dev.kiln.data.ArrayBatch;
import dev.kiln.models.LeNet5;
import dev.kiln.nn.CrossEntropyLoss;
import dev.kiln.nn.StateDict;
import dev.kiln.optim.SGD;
import dev.kiln.train.Trainer;
import dev.kiln.train.TrainingStep;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class NanBatchTest {

    private static void assertBitwiseEqual(StateDict want, StateDict got) {
        assertEquals(want.entries().keySet(), got.entries().keySet());
        for (String k : want.entries().keySet()) {
            float[] a = want.get(k).data();
            float[] b = got.get(k).data();
            assertEquals(want.get(k).longValue(), got.get(k).longValue(), k);
            for (int i = 0; i < a.length; i++) {
                assertEquals(Float.floatToRawIntBits(a[i]), Float.floatToRawIntBits(b[i]), k + "[" + i + "]");
            }
        }
    }

    private static StateDict trainSteps(List<ArrayBatch> batches) {
        try (LeNet5 model = new LeNet5(Device.cpu(), new Generator(4));
             SGD sgd = new SGD(model.parameters(), 0.05f, 0.9f, 0f, false, 0f);
             TrainingStep step = new TrainingStep(model, new CrossEntropyLoss(), sgd, Device.cpu(), 16,
                     new int[]{1, 28, 28}, true, 2)) {
            for (ArrayBatch b : batches) {
                step.inputs().copyFrom(b.features());
                float[] labels = new float[b.size()];
                for (int i = 0; i < labels.length; i++) {
                    labels[i] = b.labels()[i];
                }
                step.targets().copyFrom(labels);
                step.run();
            }
            return model.stateDict();
        }
    }

    @Test
    @DisplayName("a NaN image in batch 4 leaves the model (running statistics included) bitwise equal to the run that skipped batch 4")
    void nanImage() {
        int[] ys = new int[16 * 8];
        float[][] xs = Fixtures.normalised(Fixtures.images(3, ys));
        List<ArrayBatch> clean = Fixtures.batches(xs, ys, 16);
        float[][] poisoned = xs.clone();
        poisoned[4 * 16 + 5] = xs[4 * 16 + 5].clone();
        poisoned[4 * 16 + 5][400] = Float.NaN;
        List<ArrayBatch> withNan = Fixtures.batches(poisoned, ys, 16);
        List<ArrayBatch> skipped = new ArrayList<>(clean);
        skipped.remove(4);
        assertBitwiseEqual(trainSteps(skipped), trainSteps(withNan));
    }

    @Test
    @DisplayName("the Trainer stops at the NaN batch with the model of the batches before it")
    void trainerStopsWithModelIntact() {
        int[] ys = new int[16 * 6];
        float[][] xs = Fixtures.normalised(Fixtures.images(5, ys));
        xs[3 * 16][10] = Float.NaN;
        List<ArrayBatch> batches = Fixtures.batches(xs, ys, 16);
        StateDict stopped;
        StateDict before;
        try (LeNet5 model = new LeNet5(Device.cpu(), new Generator(4));
             SGD sgd = new SGD(model.parameters(), 0.05f, 0.9f, 0f, false, 0f)) {
            Trainer t = Trainer.builder().model(model).loss(new CrossEntropyLoss()).optimizer(sgd).device(Device.cpu())
                    .reportEvery(1).build();
            assertThrows(NonFiniteLossException.class, () -> t.fit(batches, null));
            stopped = model.stateDict();
        }
        try (LeNet5 model = new LeNet5(Device.cpu(), new Generator(4));
             SGD sgd = new SGD(model.parameters(), 0.05f, 0.9f, 0f, false, 0f)) {
            Trainer.builder().model(model).loss(new CrossEntropyLoss()).optimizer(sgd).device(Device.cpu())
                    .reportEvery(1).build().fit(batches.subList(0, 3), null);
            before = model.stateDict();
        }
        assertBitwiseEqual(before, stopped);
    }
}
