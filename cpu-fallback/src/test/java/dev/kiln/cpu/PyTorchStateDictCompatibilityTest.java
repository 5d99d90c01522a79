package dev.kiln.cpu;

import dev.kiln.core.Device;
import dev.kiln.nn.BatchNorm1d;
import dev.kiln.nn.StateDict;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** State dicts PyTorch's load_state_dict accepts load here too: old files without the counter, scalars saved as [1]. */
class PyTorchStateDictCompatibilityTest {

    private static StateDict bnState(boolean withCounter, int[] counterShape) {
        StateDict sd = new StateDict();
        sd.put("weight", StateDict.Entry.of(new float[]{1, 2}, 2));
        sd.put("bias", StateDict.Entry.of(new float[]{0, 0}, 2));
        sd.put("running_mean", StateDict.Entry.of(new float[]{0.5f, -0.5f}, 2));
        sd.put("running_var", StateDict.Entry.of(new float[]{2, 3}, 2));
        if (withCounter) {
            sd.put("num_batches_tracked", new StateDict.Entry(counterShape, new float[]{9}, StateDict.DType.I64, 9));
        }
        return sd;
    }

    @Test
    @DisplayName("num_batches_tracked missing loads as 0, as PyTorch does for files from before the counter")
    void missingCounter() {
        try (BatchNorm1d bn = new BatchNorm1d(Device.of("cpu"), 2)) {
            bn.loadStateDict(bnState(true, new int[0]));
            assertEquals(9, bn.stateDict().get("num_batches_tracked").longValue());
            bn.loadStateDict(bnState(false, null));
            assertEquals(0, bn.stateDict().get("num_batches_tracked").longValue());
            assertEquals(-0.5f, bn.runningMean().toArray()[1]);
        }
    }

    @Test
    @DisplayName("a counter of shape [1] loads into the 0-d buffer; other shapes are still a size mismatch")
    void counterShapeOne() {
        try (BatchNorm1d bn = new BatchNorm1d(Device.of("cpu"), 2)) {
            bn.loadStateDict(bnState(true, new int[]{1}));
            assertEquals(9, bn.stateDict().get("num_batches_tracked").longValue());
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> bn.loadStateDict(bnState(true, new int[]{1, 1})));
            assertTrue(e.getMessage().contains("num_batches_tracked: checkpoint has shape (1, 1)"), e.getMessage());
        }
    }
}
