package dev.kiln.onnx;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kiln.backend.Backend;
import dev.kiln.backend.Buffer;
import dev.kiln.core.Device;
import dev.kiln.core.Generator;
import dev.kiln.core.GradMode;
import dev.kiln.core.Tensor;
import dev.kiln.nn.BatchNorm2d;
import dev.kiln.nn.Conv2d;
import dev.kiln.nn.Module;
import dev.kiln.onnx.proto.OnnxProto;

import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * One Kiln op may be several ONNX nodes: fused ops (batch norm + ReLU, add + ReLU, each recorded as one op with the
 * unfused ops' inputs and attributes) export through {@link OnnxOps#registerBatchNormThen} and
 * {@link OnnxOps#registerBinaryThen}, folded or not, and agree with Kiln in ONNX Runtime.
 */
class FusedOpMappingTest {

    static final String BN_RELU = "test_fused_batch_norm_relu";
    static final String ADD_RELU = "test_fused_add_relu";

    static {
        OnnxOps.registerBatchNormThen(BN_RELU, "Relu");
        OnnxOps.registerBinaryThen(ADD_RELU, "Add", "Relu");
    }

    private final Device device = Device.cpu();

    /** relu(bn(conv(x))) + shortcut(x), then relu: a residual block written with the two fused ops. */
    static final class FusedBlock extends Module {
        private final Conv2d conv;
        private final BatchNorm2d bn;
        private final Conv2d shortcut;

        FusedBlock(Device d) {
            conv = registerModule("conv", new Conv2d(d, new Generator(1), 3, 4, 3, 1, 1, 1, false));
            bn = registerModule("bn", new BatchNorm2d(d, 4));
            shortcut = registerModule("shortcut", new Conv2d(d, new Generator(2), 3, 4, 1, 1, 0));
        }

        @Override
        public Tensor forward(Tensor x) {
            Tensor c = conv.forward(x);
            Tensor normalised;
            try (GradMode g = GradMode.noGrad()) {
                normalised = bn.forward(c).relu();
            }
            Tensor fused = asOneOp(BN_RELU, normalised, c, null, null, bn.weight(), bn.bias())
                    .recordOpAttributes(Map.of("eps", bn.eps(), "batch_stats", false,
                            "running_mean", bn.runningMean(), "running_var", bn.runningVar()));
            Tensor s = shortcut.forward(x);
            Tensor sum;
            try (GradMode g = GradMode.noGrad()) {
                sum = fused.add(s).relu();
            }
            return asOneOp(ADD_RELU, sum, fused, s);
        }

        /** {@code value} as the result of one recorded op over {@code inputs}, as a fused kernel would give it. */
        private static Tensor asOneOp(String op, Tensor value, Tensor... inputs) {
            Backend be = value.device().backend();
            Buffer y = be.allocateUninitialized(value.numel());
            be.copy(value.buffer(), 0, y, 0, value.numel());
            return Tensor.fromOp(op, value.device(), y, value.shape(), g -> new Tensor[inputs.length], inputs);
        }
    }

    @Test
    void fusedOpsExportAsSeveralNodesFoldedOrNotAndAgreeWithKiln() throws Exception {
        try (FusedBlock block = new FusedBlock(device)) {
            ExportCases.randomizeStatistics(block, new Random(4));
            block.eval();
            int[] in = {3, 6, 6};
            for (boolean fold : new boolean[]{false, true}) {
                byte[] onnx = OnnxExporter.of(block, in).foldBatchNorm(fold).toBytes();
                List<String> ops = OnnxProto.ModelProto.parseFrom(onnx).getGraph().getNodeList().stream()
                        .map(OnnxProto.NodeProto::getOpType).toList();
                assertEquals(fold ? List.of("Conv", "Relu", "Conv", "Add", "Relu")
                        : List.of("Conv", "BatchNormalization", "Relu", "Conv", "Add", "Relu"), ops);
                try (OrtRun ort = new OrtRun(onnx)) {
                    int[] shape = OrtRun.batchShape(8, in);
                    float[] x = OrtRun.random(6, shape);
                    OrtRun.maxAbsDiff("fused, folded=" + fold, OrtRun.kiln(block, device, x, shape), ort.run(x, shape));
                }
            }
        }
    }
}
