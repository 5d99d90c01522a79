package dev.kiln.onnx;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.kiln.core.Device;
import dev.kiln.io.KilnFormatException;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Whatever the bytes, {@link Onnx#load(byte[], Device)} returns a module or throws {@link KilnFormatException} naming
 * them; anything else (another exception, an {@code Error}) is a finding. Seeds (a small graph of every kind of
 * node PyTorch's exports use, and a single Relu) and regression inputs: {@code OnnxLoadFuzzTestInputs/load/}.
 */
class OnnxLoadFuzzTest {

    @FuzzTest(maxDuration = "25s")
    void load(byte[] bytes) {
        try (OnnxModule m = Onnx.load(bytes, Device.cpu())) {
            assertFalse(m.outputNames().isEmpty());
        } catch (KilnFormatException e) {
            assertTrue(e.getMessage().startsWith("ONNX bytes (" + bytes.length + " bytes): "), e.getMessage());
        }
    }
}
