package dev.kiln.suites;

import dev.kiln.core.Generator;
import dev.kiln.core.NonFiniteLossException;
import dev.kiln.core.Tensor;
import dev.kiln.nn.Conv2d;
import dev.kiln.nn.CrossEntropyLoss;
import dev.kiln.nn.Linear;
import dev.kiln.nn.MSELoss;
import dev.kiln.optim.SGD;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** Bad input gets a specific exception and loses nothing. */
public class BadInputSuite extends DeviceSuite {

    @Test
    @DisplayName("conv2d channel mismatch names both shapes")
    void convMismatch() {
        try (Conv2d conv = new Conv2d(device(), new Generator(1), 3, 4, 3)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> conv.forward(randn(1, 2, 5, 8, 8)));
            assertMessageContains(e, "(2, 5, 8, 8)", "(4, 3, 3, 3)");
            e = assertThrows(IllegalArgumentException.class, () -> conv.forward(randn(1, 5, 8, 8)));
            assertMessageContains(e, "4-d", "(5, 8, 8)");
            e = assertThrows(IllegalArgumentException.class, () -> conv.forward(randn(1, 1, 3, 2, 2)));
            assertMessageContains(e, "smaller than");
        }
    }

    @Test
    @DisplayName("linear feature mismatch names both shapes")
    void linearMismatch() {
        try (Linear fc = new Linear(device(), new Generator(1), 400, 120)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> fc.forward(randn(1, 8, 399)));
            assertMessageContains(e, "(8, 399)", "(120, 400)");
        }
    }

    @Test
    @DisplayName("element-wise broadcasting and matmul errors name both shapes")
    void elementwiseMismatch() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> randn(1, 2, 3).add(randn(2, 4)));
        assertMessageContains(e, "(2, 3)", "(4,)");
        e = assertThrows(IllegalArgumentException.class, () -> randn(1, 2, 3).matmul(randn(2, 2, 3)));
        assertMessageContains(e, "(2, 3)", "(2, 3)");
        e = assertThrows(IllegalArgumentException.class, () -> randn(1, 2, 3).reshape(4, 2));
        assertMessageContains(e, "(4, 2)", "(2, 3)");
    }

    @Test
    @DisplayName("losses: target shape mismatch and out-of-range class")
    void lossMismatch() {
        CrossEntropyLoss ce = new CrossEntropyLoss();
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ce.forward(randn(1, 4, 10), tensor(new float[]{1, 2, 3}, 3)));
        assertMessageContains(e, "(3,)", "(4, 10)");
        assertThrows(IllegalArgumentException.class, () -> ce.forward(randn(1, 2, 10), tensor(new float[]{1, 10}, 2)).item());
        e = assertThrows(IllegalArgumentException.class, () -> new MSELoss().forward(randn(1, 4, 2), randn(2, 4, 3)));
        assertMessageContains(e, "(4, 2)", "(4, 3)");
    }

    @Test
    @DisplayName("a NaN loss is reported by backward() and the optimizer changes nothing")
    void nanLossIsReported() {
        try (Linear fc = new Linear(device(), new Generator(3), 3, 2); SGD sgd = new SGD(fc.parameters(), 0.1f)) {
            float[] weightBefore = fc.weight().toArray();
            float[] xs = {1, Float.NaN, 3, 4, 5, 6};
            Tensor loss = new MSELoss().forward(fc.forward(tensor(xs, 2, 3)), randn(4, 2, 2));
            NonFiniteLossException e = assertThrows(NonFiniteLossException.class, loss::backward);
            assertMessageContains(e, "NaN");
            assertNull(fc.weight().grad());
            sgd.step();
            assertArrayEquals(weightBefore, fc.weight().toArray());
        }
    }

    @Test
    @DisplayName("state dict load with a wrong shape fails whole and changes nothing")
    void stateDictMismatch() {
        try (Linear a = new Linear(device(), new Generator(1), 3, 2); Linear b = new Linear(device(), new Generator(2), 4, 2)) {
            float[] before = a.bias().toArray();
            var sd = b.stateDict();
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> a.loadStateDict(sd));
            assertMessageContains(e, "weight", "(2, 4)", "(2, 3)");
            assertArrayEquals(before, a.bias().toArray(), "bias must not be loaded when weight mismatches");
        }
    }
}
