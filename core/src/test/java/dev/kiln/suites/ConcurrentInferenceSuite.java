package dev.kiln.suites;

import dev.kiln.core.Generator;
import dev.kiln.core.GradMode;
import dev.kiln.core.Tensor;
import dev.kiln.core.TensorScope;
import dev.kiln.models.LeNet5;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/** One model in eval mode serving many threads at once (the embedding use case). */
public class ConcurrentInferenceSuite extends DeviceSuite {

    @Test
    @DisplayName("8 threads x 20 eval forwards on a shared LeNet equal the single-threaded results")
    void concurrentEvalMatchesSequential() throws Exception {
        int threads = 8;
        try (LeNet5 model = new LeNet5(device(), new Generator(3))) {
            try (TensorScope warm = TensorScope.open()) {
                for (int i = 0; i < 3; i++) {
                    model.forward(randn(10 + i, 16, 1, 28, 28));
                }
            }
            model.eval();
            List<float[]> inputs = new ArrayList<>();
            List<float[]> expected = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                float[] x = randn(100 + t, 5, 1, 28, 28).toArray();
                inputs.add(x);
                try (GradMode g = GradMode.noGrad(); TensorScope s = TensorScope.open()) {
                    expected.add(model.forward(tensor(x, 5, 1, 28, 28)).toArray());
                }
            }
            ExecutorService pool = Executors.newFixedThreadPool(threads);
            try {
                List<Future<List<float[]>>> futures = new ArrayList<>();
                for (int t = 0; t < threads; t++) {
                    float[] x = inputs.get(t);
                    futures.add(pool.submit(() -> {
                        List<float[]> outs = new ArrayList<>();
                        for (int r = 0; r < 20; r++) {
                            try (GradMode g = GradMode.noGrad(); TensorScope s = TensorScope.open()) {
                                outs.add(model.forward(Tensor.of(device(), x, 5, 1, 28, 28)).toArray());
                            }
                        }
                        return outs;
                    }));
                }
                for (int t = 0; t < threads; t++) {
                    for (float[] out : futures.get(t).get()) {
                        assertArrayEquals(expected.get(t), out, "thread " + t);
                    }
                }
            } finally {
                pool.shutdownNow();
            }
        }
    }
}
