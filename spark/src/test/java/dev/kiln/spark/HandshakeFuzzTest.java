package dev.kiln.spark;

import com.code_intelligence.jazzer.junit.FuzzTest;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.security.SecureRandom;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.fail;

/**
 * Whatever a stranger sends, both sides of {@link Handshake} refuse it with a
 * {@link CollectiveAuthenticationException}: without the job's secret no input may complete a handshake, and no
 * other exception may escape. The first byte picks the side (even: the accepting member reading a HELLO and a
 * response; odd: the connecting member reading a challenge and a verdict). Seeds and regression inputs:
 * {@code HandshakeFuzzTestInputs/read/}.
 */
class HandshakeFuzzTest {

    private static final Handshake.Binding BINDING = new Handshake.Binding(FrameChannelTest.key(9), "job", 0, true);

    @FuzzTest(maxDuration = "25s")
    void read(byte[] input) throws IOException {
        if (input.length < 1) {
            return;
        }
        ByteArrayInputStream in = new ByteArrayInputStream(Arrays.copyOfRange(input, 1, input.length));
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try {
            if ((input[0] & 1) == 0) {
                Handshake.accept(in, out, BINDING, 0, claimed -> claimed == 1 ? null : "not rank 1",
                        new SecureRandom(), "fuzz");
            } else {
                Handshake.connect(in, out, BINDING, 1, 0, new SecureRandom());
            }
            fail("a handshake completed without the secret");
        } catch (CollectiveAuthenticationException e) {
            // refused
        }
    }
}
