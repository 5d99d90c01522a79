package dev.kiln.io;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.kiln.nn.StateDict;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Whatever the bytes, {@link SafeTensors#read} returns a state dict or throws {@link KilnFormatException} naming the
 * file; anything else is a finding. What it accepts must write back and read again to the same tensors. Seeds and
 * regression inputs: {@code SafeTensorsFuzzTestInputs/read/}.
 */
class SafeTensorsFuzzTest {

    private static Path scratch;

    @FuzzTest(maxDuration = "25s")
    void read(byte[] file) throws IOException {
        SafeTensors.Content c;
        try {
            c = SafeTensors.read("fuzz.safetensors", file);
        } catch (KilnFormatException e) {
            assertTrue(e.getMessage().startsWith("fuzz.safetensors: "), e.getMessage());
            return;
        }
        if (scratch == null) {
            scratch = Files.createTempFile("kiln-fuzz", ".safetensors");
            scratch.toFile().deleteOnExit();
        }
        SafeTensors.write(scratch, c.tensors(), c.metadata());
        SafeTensors.Content again = SafeTensors.read(scratch);
        assertEquals(c.tensors().entries().keySet(), again.tensors().entries().keySet());
        for (Map.Entry<String, StateDict.Entry> e : c.tensors().entries().entrySet()) {
            StateDict.Entry b = again.tensors().get(e.getKey());
            assertArrayEquals(e.getValue().shape(), b.shape());
            assertArrayEquals(e.getValue().data(), b.data());
            assertEquals(e.getValue().longValue(), b.longValue());
        }
    }
}
