package dev.kiln.onnx;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import dev.kiln.onnx.proto.OnnxProto;
import java.nio.FloatBuffer;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The generated protobuf classes write a model that ONNX Runtime (the runtime the tests verify exports with) runs. */
class OnnxRuntimeSmokeTest {

    @Test
    void aReluModelBuiltFromTheGeneratedClassesRunsInOnnxRuntime() throws Exception {
        OnnxProto.TypeProto floatVector = OnnxProto.TypeProto.newBuilder()
                .setTensorType(OnnxProto.TypeProto.Tensor.newBuilder()
                        .setElemType(OnnxProto.TensorProto.DataType.FLOAT_VALUE)
                        .setShape(OnnxProto.TensorShapeProto.newBuilder()
                                .addDim(OnnxProto.TensorShapeProto.Dimension.newBuilder().setDimParam("batch"))
                                .addDim(OnnxProto.TensorShapeProto.Dimension.newBuilder().setDimValue(3))))
                .build();
        OnnxProto.ModelProto model = OnnxProto.ModelProto.newBuilder()
                .setIrVersion(8)
                .addOpsetImport(OnnxProto.OperatorSetIdProto.newBuilder().setDomain("").setVersion(17))
                .setGraph(OnnxProto.GraphProto.newBuilder()
                        .setName("relu")
                        .addNode(OnnxProto.NodeProto.newBuilder().setOpType("Relu").addInput("x").addOutput("y"))
                        .addInput(OnnxProto.ValueInfoProto.newBuilder().setName("x").setType(floatVector))
                        .addOutput(OnnxProto.ValueInfoProto.newBuilder().setName("y").setType(floatVector)))
                .build();
        byte[] bytes = model.toByteArray();
        assertEquals(model, OnnxProto.ModelProto.parseFrom(bytes));

        OrtEnvironment env = OrtEnvironment.getEnvironment();
        try (OrtSession session = env.createSession(bytes, new OrtSession.SessionOptions());
             OnnxTensor x = OnnxTensor.createTensor(env, FloatBuffer.wrap(new float[] {-1f, 0.5f, 2f, 3f, -4f, 0f}),
                     new long[] {2, 3});
             OrtSession.Result result = session.run(Map.of("x", x))) {
            float[][] y = (float[][]) result.get(0).getValue();
            assertArrayEquals(new float[] {0f, 0.5f, 2f}, y[0]);
            assertArrayEquals(new float[] {3f, 0f, 0f}, y[1]);
        }
    }
}
