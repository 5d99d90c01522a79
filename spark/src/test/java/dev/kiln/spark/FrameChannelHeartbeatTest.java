package dev.kiln.spark;

import dev.kiln.distributed.CollectiveException;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.concurrent.atomic.LongAdder;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Heartbeats between frames: skipped by the reader (sealed ones keep the counters in step), and length-checked. */
class FrameChannelHeartbeatTest {

    private static FrameChannel writer(boolean sealed, ByteArrayOutputStream wire) {
        return new FrameChannel("rank 1 of 2", 0, new ByteArrayInputStream(new byte[0]), wire,
                sealed ? FrameChannelTest.KEY_A : null, sealed ? FrameChannelTest.KEY_B : null, new LongAdder());
    }

    @Test
    void heartbeatsBetweenFramesAreSkippedPlainAndSealed() throws IOException {
        for (boolean sealed : new boolean[]{false, true}) {
            ByteArrayOutputStream wire = new ByteArrayOutputStream();
            FrameChannel w = writer(sealed, wire);
            assertTrue(w.heartbeatIfIdle(0));
            assertTrue(w.heartbeatIfIdle(0));
            w.write(0, FrameChannel.Ops.ALL_REDUCE_MEAN, new byte[]{1, 2, 3, 4}, 0, 4);
            assertFalse(w.heartbeatIfIdle(Long.MAX_VALUE), "a channel that just wrote a frame is not idle");
            assertTrue(w.heartbeatIfIdle(0));
            w.write(1, FrameChannel.Ops.BROADCAST, new byte[]{5, 6}, 0, 2);
            int header = FrameChannel.HEADER_BYTES + (sealed ? FrameChannel.TAG_BYTES : 0);
            int frames = 2 * header + 6 + (sealed ? 2 * FrameChannel.TAG_BYTES : 0);
            assertEquals(frames + 3 * header, wire.size(), "each heartbeat is one bare header");

            FrameChannel r = FrameChannelTest.reader(sealed, wire.toByteArray());
            byte[] a = new byte[4];
            r.readExactly(0, FrameChannel.Ops.ALL_REDUCE_MEAN, a, 0, 4);
            assertArrayEquals(new byte[]{1, 2, 3, 4}, a);
            byte[] b = new byte[2];
            r.readExactly(1, FrameChannel.Ops.BROADCAST, b, 0, 2);
            assertArrayEquals(new byte[]{5, 6}, b);
        }
    }

    @Test
    void aHeartbeatWithALengthIsRefusedBeforeItsPayload() {
        byte[] wire = ByteBuffer.allocate(FrameChannel.HEADER_BYTES).putLong(FrameChannel.HEARTBEAT_SEQ)
                .put(FrameChannel.Ops.HEARTBEAT).putInt(0x7FFFFFF0).array();
        CollectiveException e = assertThrows(CollectiveException.class,
                () -> FrameChannelTest.reader(false, wire).readHeader(0, FrameChannel.Ops.ALL_GATHER, 0, 1 << 20));
        assertTrue(e.getMessage().contains("rank 1 sent a malformed heartbeat (sequence -1, length 2147483632"),
                e.getMessage());
        byte[] wrongSeq = ByteBuffer.allocate(FrameChannel.HEADER_BYTES).putLong(3)
                .put(FrameChannel.Ops.HEARTBEAT).putInt(0).array();
        e = assertThrows(CollectiveException.class,
                () -> FrameChannelTest.reader(false, wrongSeq).readHeader(0, FrameChannel.Ops.ALL_GATHER, 0, 8));
        assertTrue(e.getMessage().contains("malformed heartbeat (sequence 3"), e.getMessage());
    }

    @Test
    void heartbeatsAloneDoNotOutlastTheOperationTimeout() throws IOException {
        ByteArrayOutputStream wire = new ByteArrayOutputStream();
        FrameChannel w = writer(false, wire);
        for (int i = 0; i < 3; i++) {
            w.heartbeatIfIdle(0);
        }
        byte[] beats = wire.toByteArray();
        // a peer that only ever sends heartbeats: an operation timeout of 0 ms ends the wait at the first one
        FrameChannel r = new FrameChannel("rank 0 of 2", 1, new ByteArrayInputStream(beats),
                new ByteArrayOutputStream(), null, null, new LongAdder(), 1_000, 0);
        CollectiveException e = assertThrows(CollectiveException.class,
                () -> r.readHeader(0, FrameChannel.Ops.ALL_GATHER, 0, 8));
        assertTrue(e.getMessage().contains("rank 1 is alive (it sends heartbeats) but sent no frame"), e.getMessage());
    }
}
