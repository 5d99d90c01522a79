package dev.kiln.spark;

import dev.kiln.distributed.CollectiveException;

import javax.crypto.AEADBadTagException;
import javax.crypto.Cipher;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.SecretKeySpec;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.security.GeneralSecurityException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.LongAdder;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The frames of one authenticated connection between two members, after the handshake. A frame is a header
 * (exchange sequence number, operation code, payload length: 13 bytes) and the payload. The reader knows how many
 * bytes the operation expects (exactly, or at most) and checks the header against it before it allocates or reads
 * anything of the payload; a header that does not match fails with a {@link CollectiveException} naming both ranks.
 *
 * <p>With encryption, the header and each record of at most {@link #RECORD_BYTES} payload bytes are sealed with
 * AES-GCM under a key of this connection and direction, with the record counter as nonce (so no nonce repeats
 * under a key, and records cannot be dropped, reordered or replayed unnoticed). Reads use the socket's read timeout;
 * writes are bounded by the caller's watchdog.
 *
 * <p><b>Liveness.</b> Between frames the sender may write a heartbeat: a header with sequence number −1, operation
 * {@link Ops#HEARTBEAT} and length 0 (sealed like any header, so the counters of both ends stay in step). The reader
 * skips heartbeats while it waits for the header of its exchange, so the socket's read timeout (the liveness
 * timeout) measures how long the peer has sent nothing at all, while an operation timeout bounds the whole wait for a
 * peer that is alive but does not send its frame.
 */
final class FrameChannel {

    static final int HEADER_BYTES = Long.BYTES + 1 + Integer.BYTES;
    static final int RECORD_BYTES = 1 << 20;
    static final int TAG_BYTES = 16;
    private static final int TAG_BITS = TAG_BYTES * 8;
    static final long HEARTBEAT_SEQ = -1;

    private final String self;
    private final int peerRank;
    private final InputStream in;
    private final OutputStream out;
    private final LongAdder bytesSent;
    private final long livenessMillis;
    private final long operationTimeoutNanos;
    private final ReentrantLock writeLock = new ReentrantLock();
    private volatile long lastWriteNanos = System.nanoTime();
    private final SecretKeySpec sendKey;
    private final SecretKeySpec receiveKey;
    private final Cipher sealer;
    private final Cipher opener;
    private long sendCounter;
    private long receiveCounter;
    // one buffer per direction: a sender thread writes while the caller reads
    private byte[] sealedOut = new byte[0];
    private byte[] sealedIn = new byte[0];
    private final byte[] header = new byte[HEADER_BYTES + TAG_BYTES];

    /**
     * @param sendKey    AES key for what this side writes, or null for plaintext frames (both keys null or neither)
     * @param receiveKey AES key for what the peer writes
     * @param bytesSent  counts every byte written (headers, tags and payload)
     */
    FrameChannel(String self, int peerRank, InputStream in, OutputStream out, byte[] sendKey, byte[] receiveKey,
                 LongAdder bytesSent) {
        this(self, peerRank, in, out, sendKey, receiveKey, bytesSent, 0, Long.MAX_VALUE);
    }

    /**
     * @param livenessMillis          the socket's read timeout, for the message when it passes (0: not known)
     * @param operationTimeoutMillis  how long {@link #readHeader} waits for its frame while heartbeats arrive
     */
    FrameChannel(String self, int peerRank, InputStream in, OutputStream out, byte[] sendKey, byte[] receiveKey,
                 LongAdder bytesSent, long livenessMillis, long operationTimeoutMillis) {
        if ((sendKey == null) != (receiveKey == null)) {
            throw new IllegalArgumentException("FrameChannel: both keys or neither");
        }
        this.self = self;
        this.peerRank = peerRank;
        this.in = in;
        this.out = out;
        this.bytesSent = bytesSent;
        this.livenessMillis = livenessMillis;
        this.operationTimeoutNanos = TimeUnit.MILLISECONDS.toNanos(operationTimeoutMillis);
        if (sendKey != null) {
            this.sendKey = new SecretKeySpec(sendKey, "AES");
            this.receiveKey = new SecretKeySpec(receiveKey, "AES");
            try {
                this.sealer = Cipher.getInstance("AES/GCM/NoPadding");
                this.opener = Cipher.getInstance("AES/GCM/NoPadding");
            } catch (GeneralSecurityException e) {
                throw new CollectiveException(self + ": AES-GCM is not available in this JVM", e);
            }
        } else {
            this.sendKey = null;
            this.receiveKey = null;
            this.sealer = null;
            this.opener = null;
        }
    }

    boolean encrypted() {
        return sealer != null;
    }

    int peerRank() {
        return peerRank;
    }

    /** Writes one frame and flushes it; frames and heartbeats are written one at a time. */
    void write(long seq, byte op, byte[] payload, int off, int len) throws IOException {
        writeLock.lock();
        try {
            writeFrame(seq, op, payload, off, len);
        } finally {
            lastWriteNanos = System.nanoTime();
            writeLock.unlock();
        }
    }

    /**
     * Writes a heartbeat when nothing has been written for {@code idleNanos} and no frame is being written (a frame
     * in progress shows the peer that this side lives). Returns whether it wrote one.
     */
    boolean heartbeatIfIdle(long idleNanos) throws IOException {
        if (System.nanoTime() - lastWriteNanos < idleNanos || !writeLock.tryLock()) {
            return false;
        }
        try {
            if (System.nanoTime() - lastWriteNanos < idleNanos) {
                return false;
            }
            writeFrame(HEARTBEAT_SEQ, Ops.HEARTBEAT, new byte[0], 0, 0);
            return true;
        } finally {
            lastWriteNanos = System.nanoTime();
            writeLock.unlock();
        }
    }

    private void writeFrame(long seq, byte op, byte[] payload, int off, int len) throws IOException {
        byte[] h = new byte[HEADER_BYTES];
        ByteBuffer.wrap(h).putLong(seq).put(op).putInt(len);
        if (sealer == null) {
            out.write(h);
            out.write(payload, off, len);
            bytesSent.add(HEADER_BYTES + (long) len);
        } else {
            writeSealed(h, 0, HEADER_BYTES);
            for (int done = 0; done < len; done += RECORD_BYTES) {
                writeSealed(payload, off + done, Math.min(RECORD_BYTES, len - done));
            }
        }
        out.flush();
    }

    private void writeSealed(byte[] plain, int off, int len) throws IOException {
        if (sealedOut.length < len + TAG_BYTES) {
            sealedOut = new byte[Math.min(RECORD_BYTES, Math.max(len, 4096)) + TAG_BYTES];
        }
        try {
            sealer.init(Cipher.ENCRYPT_MODE, sendKey, new GCMParameterSpec(TAG_BITS, nonce(sendCounter++)));
            int n = sealer.doFinal(plain, off, len, sealedOut, 0);
            out.write(sealedOut, 0, n);
            bytesSent.add(n);
        } catch (GeneralSecurityException e) {
            throw new CollectiveException(self + ": cannot seal a frame for rank " + peerRank, e);
        }
    }

    /**
     * Reads a frame header and checks it: the exchange {@code seq}, the operation {@code op}, and a length from
     * {@code minBytes} to {@code maxBytes}. Returns the length; the payload follows ({@link #readPayload}).
     * Heartbeats before it are skipped, for at most the operation timeout.
     */
    int readHeader(long seq, byte op, int minBytes, int maxBytes) throws IOException {
        long start = System.nanoTime();
        ByteBuffer h;
        long theirs;
        byte theirOp;
        int len;
        while (true) {
            if (opener == null) {
                readFully(header, 0, HEADER_BYTES, "exchange " + seq);
                h = ByteBuffer.wrap(header, 0, HEADER_BYTES);
            } else {
                readFully(header, 0, HEADER_BYTES + TAG_BYTES, "exchange " + seq);
                byte[] plain = new byte[HEADER_BYTES];
                open(header, HEADER_BYTES + TAG_BYTES, plain, 0, "frame header");
                h = ByteBuffer.wrap(plain);
            }
            theirs = h.getLong();
            theirOp = h.get();
            len = h.getInt();
            if (theirOp != Ops.HEARTBEAT) {
                break;
            }
            if (theirs != HEARTBEAT_SEQ || len != 0) {
                throw new CollectiveException(self + ": exchange " + seq + ": rank " + peerRank
                        + " sent a malformed heartbeat (sequence " + theirs + ", length "
                        + Integer.toUnsignedString(len) + "; expected " + HEARTBEAT_SEQ + " and 0)");
            }
            if (System.nanoTime() - start > operationTimeoutNanos) {
                throw new CollectiveException(self + ": exchange " + seq + " (" + Ops.name(op) + "): rank "
                        + peerRank + " is alive (it sends heartbeats) but sent no frame within the timeout of "
                        + TimeUnit.NANOSECONDS.toMillis(operationTimeoutNanos) + " ms");
            }
        }
        if (theirs != seq) {
            throw new CollectiveException(self + ": rank " + peerRank + " is at exchange " + theirs
                    + ", this member at " + seq + " (the stream is out of step)");
        }
        if (theirOp != op) {
            throw new CollectiveException(self + ": exchange " + seq + ": rank " + peerRank
                    + " sent a frame of operation " + Ops.name(theirOp) + ", this member is in " + Ops.name(op)
                    + " (the members made different calls)");
        }
        if (len < minBytes || len > maxBytes) {
            String want = minBytes == maxBytes ? String.valueOf(minBytes) : minBytes + " to " + maxBytes;
            throw new CollectiveException(self + ": exchange " + seq + " (" + Ops.name(op)
                    + "): rank " + peerRank + " announced a frame of " + Integer.toUnsignedString(len)
                    + " bytes (0x" + Integer.toHexString(len).toUpperCase() + "), expected " + want);
        }
        return len;
    }

    /** Reads {@code len} payload bytes (the length {@link #readHeader} returned) into {@code dst}. */
    void readPayload(byte[] dst, int off, int len) throws IOException {
        if (opener == null) {
            readFully(dst, off, len, "frame payload");
            return;
        }
        for (int done = 0; done < len; done += RECORD_BYTES) {
            int n = Math.min(RECORD_BYTES, len - done);
            if (sealedIn.length < n + TAG_BYTES) {
                sealedIn = new byte[Math.min(RECORD_BYTES, Math.max(len, 4096)) + TAG_BYTES];
            }
            readFully(sealedIn, 0, n + TAG_BYTES, "frame payload");
            open(sealedIn, n + TAG_BYTES, dst, off + done, "frame payload");
        }
    }

    /** A whole frame whose length is exactly {@code len}, into {@code dst}. */
    void readExactly(long seq, byte op, byte[] dst, int off, int len) throws IOException {
        readHeader(seq, op, len, len);
        readPayload(dst, off, len);
    }

    private void open(byte[] record, int recordLen, byte[] dst, int dstOff, String what) {
        try {
            opener.init(Cipher.DECRYPT_MODE, receiveKey, new GCMParameterSpec(TAG_BITS, nonce(receiveCounter++)));
            opener.doFinal(record, 0, recordLen, dst, dstOff);
        } catch (AEADBadTagException e) {
            throw new CollectiveException(self + ": a " + what + " from rank " + peerRank
                    + " failed authentication (altered, replayed or not sealed with this connection's key)", e);
        } catch (GeneralSecurityException e) {
            throw new CollectiveException(self + ": cannot open a " + what + " from rank " + peerRank, e);
        }
    }

    private void readFully(byte[] dst, int off, int len, String what) throws IOException {
        int done = 0;
        while (done < len) {
            int n;
            try {
                n = in.read(dst, off + done, len - done);
            } catch (SocketTimeoutException e) {
                throw new CollectiveException(self + ": " + what + ": rank " + peerRank
                        + " sent nothing, not even a heartbeat, within "
                        + (livenessMillis > 0 ? "the liveness timeout of " + livenessMillis + " ms" : "the read timeout")
                        + " (its host is down or unreachable, or its process hung)", e);
            }
            if (n < 0) {
                throw new CollectiveException(self + ": " + what + ": rank " + peerRank
                        + " closed its connection (it failed, or made fewer calls)", new EOFException(what));
            }
            done += n;
        }
    }

    private static byte[] nonce(long counter) {
        return ByteBuffer.allocate(12).putInt(0).putLong(counter).array();
    }

    /** Operation codes carried in frame headers, so that members making different calls fail clearly. */
    static final class Ops {
        static final byte HEARTBEAT = 0;
        static final byte ALL_GATHER = 1;
        static final byte ALL_REDUCE_MEAN = 2;
        static final byte ALL_REDUCE_SUM = 3;
        static final byte BROADCAST = 4;
        static final byte ALL_GATHER_LENGTHS = 5;

        private Ops() {
        }

        static String name(byte op) {
            return switch (op) {
                case HEARTBEAT -> "heartbeat";
                case ALL_GATHER -> "allGather";
                case ALL_REDUCE_MEAN -> "allReduceMean";
                case ALL_REDUCE_SUM -> "allReduceSum";
                case BROADCAST -> "broadcast";
                case ALL_GATHER_LENGTHS -> "allGather lengths";
                default -> "unknown operation " + (op & 0xFF);
            };
        }
    }
}
