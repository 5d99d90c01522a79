package dev.kiln.data;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.kiln.io.KilnFormatException;

import java.io.ByteArrayInputStream;
import java.io.IOException;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Whatever the bytes, the IDX reader returns a consistent result or throws {@link IdxFormatException} naming the
 * stream; any other throwable (an Error, NPE, index or arithmetic exception, an OutOfMemoryError from a lying
 * header) is a finding. Regression inputs and seeds: {@code IdxReaderFuzzTestInputs/readIdx/}.
 */
class IdxReaderFuzzTest {

    @FuzzTest(maxDuration = "25s")
    void readIdx(FuzzedDataProvider in) throws IOException {
        boolean images = in.consumeBoolean();
        int expectedSide = in.pickValue(new int[]{0, 0, 28, 3});
        int numClasses = in.pickValue(new int[]{0, 10, 2});
        byte[] file = in.consumeRemainingAsBytes();
        try {
            if (images) {
                IdxImages r = IdxReader.readImages(new ByteArrayInputStream(file), "fuzz.idx", expectedSide, expectedSide);
                assertEquals((long) r.count() * r.rows() * r.cols(), r.pixels().length);
                assertTrue(expectedSide == 0 || r.rows() == expectedSide && r.cols() == expectedSide);
            } else {
                IdxLabels r = IdxReader.readLabels(new ByteArrayInputStream(file), "fuzz.idx", numClasses);
                for (int i = 0; numClasses > 0 && i < r.count(); i++) {
                    assertTrue(r.label(i) < numClasses);
                }
            }
        } catch (KilnFormatException e) {
            assertTrue(e instanceof IdxFormatException, e.toString());
            assertTrue(e.getMessage().startsWith("fuzz.idx: "), e.getMessage());
        }
    }
}
