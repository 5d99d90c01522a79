package dev.kiln.suites;

import dev.kiln.core.GradMode;
import dev.kiln.core.OpGraph;
import dev.kiln.core.Tensor;
import dev.kiln.core.TensorScope;
import dev.kiln.nn.functional.BatchNormOp;
import dev.kiln.nn.functional.Conv2dOp;
import dev.kiln.nn.functional.PoolOps;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Ops record what their name and shapes leave out on their result ({@code Tensor.recordOpAttributes}, read through
 * {@link OpGraph#attributes}) when a graph is recorded, and nothing when none is.
 */
public class OpAttributesSuite extends DeviceSuite {

    @Test
    @DisplayName("conv, pools, scalar ops, sums, cat, narrow and eval batch norm record their attributes in the graph")
    void recordedWithTheGraph() {
        try (TensorScope scope = TensorScope.open(); GradMode g = GradMode.enableGrad()) {
            Tensor x = randn(1, 2, 3, 8, 8).requiresGrad(true);
            Tensor w = randn(2, 4, 3, 3, 3);
            Tensor conv = Conv2dOp.conv2d(x, w, null, 2, 1, 1, 0, 1, 2, 1);
            Map<String, Object> a = OpGraph.attributes(conv);
            assertArrayEquals(new int[]{2, 1}, (int[]) a.get("stride"));
            assertArrayEquals(new int[]{1, 0}, (int[]) a.get("padding"));
            assertArrayEquals(new int[]{1, 2}, (int[]) a.get("dilation"));
            assertEquals(1, a.get("groups"));
            Tensor pooled = PoolOps.maxPool2d(x, 3, 2, 2, 1, 1, 0);
            assertArrayEquals(new int[]{3, 2}, (int[]) OpGraph.attributes(pooled).get("kernel"));
            assertArrayEquals(new int[]{2, 1}, (int[]) OpGraph.attributes(pooled).get("stride"));
            assertArrayEquals(new int[]{1, 0}, (int[]) OpGraph.attributes(pooled).get("padding"));
            assertEquals(0.25f, OpGraph.attributes(x.mul(0.25f)).get("scalar"));
            Tensor mean = x.mean(3, false);
            assertEquals(1f / 8, OpGraph.attributes(mean).get("scalar"));
            assertArrayEquals(new int[]{2, 3, 8, 1}, (int[]) OpGraph.attributes(OpGraph.inputs(mean).get(0)).get("kept_shape"));
            assertEquals(1, OpGraph.attributes(Tensor.cat(List.of(x, x), -3)).get("dim"));
            assertEquals(Map.of("dim", 2, "start", 5, "length", 2), OpGraph.attributes(x.narrow(2, -3, 2)));
            Tensor rm = randn(3, 3);
            Tensor rv = tensor(new float[]{1f, 2f, 3f}, 3);
            Tensor bn = BatchNormOp.batchNorm(x, rm, rv, null, null, false, 0, 1e-3f);
            assertEquals(1e-3f, OpGraph.attributes(bn).get("eps"));
            assertEquals(false, OpGraph.attributes(bn).get("batch_stats"));
            assertSame(rm, OpGraph.attributes(bn).get("running_mean"));
            assertSame(rv, OpGraph.attributes(bn).get("running_var"));
        }
    }

    @Test
    @DisplayName("without a recorded graph nothing is attached")
    void nothingWithoutAGraph() {
        try (TensorScope scope = TensorScope.open(); GradMode g = GradMode.noGrad()) {
            Tensor x = randn(1, 2, 3, 8, 8).requiresGrad(true);
            assertTrue(OpGraph.attributes(PoolOps.avgPool2d(x, 2, 2, 2, 2, 0, 0)).isEmpty());
            assertTrue(OpGraph.attributes(x.mul(3f)).isEmpty());
            assertTrue(OpGraph.attributes(x).isEmpty());
        }
    }
}
