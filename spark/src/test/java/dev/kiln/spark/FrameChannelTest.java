package dev.kiln.spark;

import dev.kiln.distributed.CollectiveException;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.concurrent.atomic.LongAdder;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Frames on byte streams: round trips, and headers or records that do not fit refused before any allocation. */
class FrameChannelTest {

    static final byte[] KEY_A = key(1);
    static final byte[] KEY_B = key(2);

    static byte[] key(int fill) {
        byte[] k = new byte[32];
        Arrays.fill(k, (byte) fill);
        return k;
    }

    /** What rank 1 writes to rank 0 (its send key is rank 0's receive key). */
    static byte[] written(boolean sealed, long seq, byte op, byte[] payload) throws IOException {
        ByteArrayOutputStream wire = new ByteArrayOutputStream();
        FrameChannel writer = new FrameChannel("rank 1 of 2", 0, new ByteArrayInputStream(new byte[0]), wire,
                sealed ? KEY_A : null, sealed ? KEY_B : null, new LongAdder());
        writer.write(seq, op, payload, 0, payload.length);
        return wire.toByteArray();
    }

    static FrameChannel reader(boolean sealed, byte[] wire) {
        return new FrameChannel("rank 0 of 2", 1, new ByteArrayInputStream(wire), new ByteArrayOutputStream(),
                sealed ? KEY_B : null, sealed ? KEY_A : null, new LongAdder());
    }

    @Test
    void framesRoundTripPlainAndSealedAcrossRecords() throws IOException {
        byte[] payload = new byte[FrameChannel.RECORD_BYTES * 2 + 5];
        new java.util.SplittableRandom(3).nextBytes(payload);
        for (boolean sealed : new boolean[]{false, true}) {
            byte[] wire = written(sealed, 7, FrameChannel.Ops.ALL_GATHER, payload);
            int overhead = sealed ? FrameChannel.HEADER_BYTES + 4 * FrameChannel.TAG_BYTES : FrameChannel.HEADER_BYTES;
            assertEquals(payload.length + overhead, wire.length);
            byte[] got = new byte[payload.length];
            reader(sealed, wire).readExactly(7, FrameChannel.Ops.ALL_GATHER, got, 0, got.length);
            assertArrayEquals(payload, got);
        }
    }

    @Test
    void anOversizedLengthIsRefusedFromTheHeaderAlone() {
        // the stream ends after the header: reading (or allocating) the payload would fail differently
        byte[] header = ByteBuffer.allocate(FrameChannel.HEADER_BYTES).putLong(0).put(FrameChannel.Ops.ALL_GATHER)
                .putInt(0x7FFFFFF0).array();
        CollectiveException e = assertThrows(CollectiveException.class,
                () -> reader(false, header).readHeader(0, FrameChannel.Ops.ALL_GATHER, 0, 1 << 20));
        assertEquals("rank 0 of 2: exchange 0 (allGather): rank 1 announced a frame of 2147483632 bytes "
                + "(0x7FFFFFF0), expected 0 to 1048576", e.getMessage());
        byte[] negative = ByteBuffer.allocate(FrameChannel.HEADER_BYTES).putLong(0).put(FrameChannel.Ops.ALL_GATHER)
                .putInt(-4).array();
        e = assertThrows(CollectiveException.class,
                () -> reader(false, negative).readHeader(0, FrameChannel.Ops.ALL_GATHER, 0, 1 << 20));
        assertTrue(e.getMessage().contains("4294967292 bytes (0xFFFFFFFC)"), e.getMessage());
    }

    @Test
    void anotherExchangeOrOperationIsOutOfStep() throws IOException {
        byte[] wire = written(false, 4, FrameChannel.Ops.BROADCAST, new byte[8]);
        CollectiveException e = assertThrows(CollectiveException.class,
                () -> reader(false, wire).readHeader(5, FrameChannel.Ops.BROADCAST, 8, 8));
        assertTrue(e.getMessage().contains("rank 1 is at exchange 4, this member at 5"), e.getMessage());
        e = assertThrows(CollectiveException.class,
                () -> reader(false, wire).readHeader(4, FrameChannel.Ops.ALL_REDUCE_MEAN, 8, 8));
        assertTrue(e.getMessage().contains("sent a frame of operation broadcast, this member is in allReduceMean"),
                e.getMessage());
    }

    @Test
    void anAlteredOrReplayedSealedRecordFailsAuthentication() throws IOException {
        byte[] wire = written(true, 0, FrameChannel.Ops.ALL_REDUCE_SUM, new byte[64]);
        byte[] altered = wire.clone();
        altered[altered.length - 20] ^= 1;
        byte[] got = new byte[64];
        CollectiveException e = assertThrows(CollectiveException.class,
                () -> reader(true, altered).readExactly(0, FrameChannel.Ops.ALL_REDUCE_SUM, got, 0, 64));
        assertTrue(e.getMessage().contains("a frame payload from rank 1 failed authentication"), e.getMessage());
        // the same frame twice: the second is sealed under a used counter
        byte[] twice = new byte[wire.length * 2];
        System.arraycopy(wire, 0, twice, 0, wire.length);
        System.arraycopy(wire, 0, twice, wire.length, wire.length);
        FrameChannel r = reader(true, twice);
        r.readExactly(0, FrameChannel.Ops.ALL_REDUCE_SUM, got, 0, 64);
        e = assertThrows(CollectiveException.class, () -> r.readExactly(0, FrameChannel.Ops.ALL_REDUCE_SUM, got, 0, 64));
        assertTrue(e.getMessage().contains("a frame header from rank 1 failed authentication"), e.getMessage());
    }

    @Test
    void aTruncatedFrameNamesThePeerThatClosed() throws IOException {
        byte[] wire = written(false, 2, FrameChannel.Ops.ALL_GATHER, new byte[100]);
        byte[] cut = Arrays.copyOf(wire, wire.length - 1);
        CollectiveException e = assertThrows(CollectiveException.class,
                () -> reader(false, cut).readExactly(2, FrameChannel.Ops.ALL_GATHER, new byte[100], 0, 100));
        assertEquals("rank 0 of 2: frame payload: rank 1 closed its connection (it failed, or made fewer calls)",
                e.getMessage());
    }
}
