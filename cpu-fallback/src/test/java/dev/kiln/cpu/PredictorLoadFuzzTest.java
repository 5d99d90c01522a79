package dev.kiln.cpu;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.kiln.core.Device;
import dev.kiln.inference.Predictor;
import dev.kiln.io.KilnFormatException;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Whatever the bytes, {@link Predictor#load(byte[], Predictor.Options)} returns a predictor or throws
 * {@link KilnFormatException} naming them; anything else (another exception, an {@code Error}) is a finding.
 * Seeds and regression inputs: {@code PredictorLoadFuzzTestInputs/load/}.
 */
class PredictorLoadFuzzTest {

    @FuzzTest(maxDuration = "25s")
    void load(byte[] bytes) {
        try (Predictor p = Predictor.load(bytes, Predictor.Options.defaults().device(Device.cpu()))) {
            assertTrue(p.numClasses() > 0);
        } catch (KilnFormatException e) {
            assertTrue(e.getMessage().startsWith("model bytes (" + bytes.length + " bytes): "), e.getMessage());
        }
    }
}
