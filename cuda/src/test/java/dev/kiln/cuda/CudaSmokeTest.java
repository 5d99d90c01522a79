package dev.kiln.cuda;

import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The smoke program a GPU run starts with, run against the checking stand-in: every call it makes must be one the
 * real libraries accept, so on a GPU its lines report the GPU and not the program.
 */
class CudaSmokeTest {

    private static final List<String> CALLS = List.of("start", "conv2dForward", "conv2dBackwardData",
            "conv2dBackwardWeight", "conv2dBackwardBias", "gemm", "batchNormForwardTraining",
            "batchNormUpdateRunningStats", "batchNormBackward", "batchNormForwardInference", "maxPool2dForward",
            "maxPool2dBackward", "avgPool2dForward", "avgPool2dBackward", "softmaxForward", "softmaxBackward",
            "activationForward", "activationBackward", "biasActivation", "unary", "scalar", "binary",
            "binary broadcast", "axpy", "broadcastTo", "sumTo", "argmax", "gatherRows", "copySlice", "conv2d grouped",
            "adaptiveAvgPool2dForward", "adaptiveAvgPool2dBackward", "adaptiveMaxPool2dForward",
            "adaptiveMaxPool2dBackward", "upsampleNearest2dForward", "upsampleNearest2dBackward", "softmaxCrossEntropyForward",
            "softmaxCrossEntropyBackward", "sgdStepMany", "adamStep", "capture and replay",
            "download with the error flag", "error flag raised", "every kernel launched", "close");

    private static String status(String line) {
        return line.substring("smoke ".length(), "smoke ".length() + 8).trim();
    }

    private static String name(String line) {
        return line.substring("smoke ".length() + 9, "smoke ".length() + 9 + 34).trim();
    }

    @Test
    @DisplayName("one OK line per call on the stand-in (the error-flag check skipped, saying why), nothing left after")
    void everyCallOk() {
        CheckingCudaApi api = new CheckingCudaApi();
        List<String> lines = new ArrayList<>();
        int failures = CudaSmoke.run(api, new CudaOptions(0, false, 512L << 20), lines::add, false);
        String all = String.join("\n", lines);
        assertEquals(0, failures, all);
        assertEquals(CALLS, lines.stream().map(CudaSmokeTest::name).toList(), all);
        for (String line : lines) {
            String expected = name(line).equals("error flag raised") ? "SKIPPED" : "OK";
            assertEquals(expected, status(line), line);
        }
        assertTrue(all.contains("no device memory contents"), all);
        api.assertAllReleased();
    }

    @Test
    @DisplayName("a failing call is reported on its own line and the rest still run; close() still releases everything")
    void failureReportedAndRunContinues() {
        CheckingCudaApi checking = new CheckingCudaApi();
        checking.failAlgorithm(0);
        checking.failAlgorithm(1); // every convolution algorithm the stand-in offers fails when it runs
        List<String> lines = new ArrayList<>();
        int failures = CudaSmoke.run(checking, new CudaOptions(0, false, 512L << 20), lines::add, false);
        String all = String.join("\n", lines);
        List<String> failed = lines.stream().filter(l -> l.startsWith("smoke FAILED")).map(CudaSmokeTest::name).toList();
        assertEquals(List.of("conv2dForward", "conv2dBackwardData", "conv2dBackwardWeight", "conv2d grouped",
                "capture and replay"),
                failed, all);
        assertEquals(failed.size(), failures);
        assertTrue(all.contains("CUDNN_STATUS_EXECUTION_FAILED"), all);
        assertEquals("OK", status(lines.get(lines.size() - 1)), all);
        checking.assertAllReleased();
    }
}
