package dev.kiln.spark;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.kiln.distributed.CollectiveException;

import java.io.IOException;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Whatever a peer sends after the handshake, {@link FrameChannel} returns a payload of the size the operation
 * expects or throws {@link CollectiveException}; anything else (another exception, an allocation the header asked
 * for, a hang) is a finding. Input: one byte of mode (bit 0: sealed; bit 1: an exact length rather than a bound),
 * two bytes of expected length, then the stream. Seeds and regression inputs: {@code FrameChannelFuzzTestInputs/read/}.
 */
class FrameChannelFuzzTest {

    @FuzzTest(maxDuration = "25s")
    void read(byte[] input) throws IOException {
        if (input.length < 3) {
            return;
        }
        boolean sealed = (input[0] & 1) != 0;
        boolean exact = (input[0] & 2) != 0;
        int expected = ((input[1] & 0xFF) << 8) | (input[2] & 0xFF);
        byte[] wire = Arrays.copyOfRange(input, 3, input.length);
        FrameChannel reader = FrameChannelTest.reader(sealed, wire);
        try {
            for (long seq = 0; seq < 3; seq++) {
                int n = reader.readHeader(seq, FrameChannel.Ops.ALL_GATHER, exact ? expected : 0, expected);
                if (exact) {
                    assertEquals(expected, n);
                }
                byte[] payload = new byte[n];
                reader.readPayload(payload, 0, n);
            }
        } catch (CollectiveException e) {
            // refused: what the peer sent is not the frame this exchange expects
        }
    }
}
