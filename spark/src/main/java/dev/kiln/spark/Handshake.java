package dev.kiln.spark;

import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.Arrays;

/**
 * The challenge-response that opens every connection of a {@link SocketCollective}, before any frame. The member
 * that connects (the higher rank) and the one that accepts each send a fresh random nonce and prove that they hold
 * the job's secret with an HMAC-SHA256 over the job, the stage attempt, both ranks, both nonces and their role:
 *
 * <pre>
 * connector → acceptor   HELLO     "KLNC", version 1, connector rank, acceptor rank, nonce C (32 bytes)   45 bytes
 * acceptor  → connector  CHALLENGE nonce A (32), HMAC(secret, "acceptor"  | job | attempt | ranks | C | A)  64 bytes
 * connector → acceptor   RESPONSE  HMAC(secret, "connector" | job | attempt | ranks | C | A)                 32 bytes
 * acceptor  → connector  ACCEPTED  'K'                                                                        1 byte
 * </pre>
 *
 * Every message has a fixed size, so nothing is allocated from what the peer sends. Because each side's nonce is
 * fresh, a recorded handshake replayed later fails, and the role in the MAC keeps one side's answer from serving as
 * the other's. With encryption each direction gets its own AES-256 key, an HMAC of the secret over the same
 * binding and the direction. Reads are bounded by the socket's read timeout, set by the caller before the first
 * byte; any failure is a {@link CollectiveAuthenticationException}.
 */
final class Handshake {

    static final byte[] MAGIC = {'K', 'L', 'N', 'C'};
    static final byte VERSION = 1;
    static final int NONCE_BYTES = 32;
    static final int MAC_BYTES = 32;
    static final int SECRET_BYTES = 32;
    static final int HELLO_BYTES = MAGIC.length + 1 + 2 * Integer.BYTES + NONCE_BYTES;
    static final int CHALLENGE_BYTES = NONCE_BYTES + MAC_BYTES;
    static final byte ACCEPTED = 'K';

    /** What both sides of a connection agree on before it opens: the secret and what it is bound to. */
    record Binding(byte[] secret, String job, int stageAttempt, boolean encrypt) {
        Binding {
            if (secret.length != SECRET_BYTES) {
                throw new IllegalArgumentException("Handshake: the secret has " + secret.length + " bytes, not "
                        + SECRET_BYTES);
            }
        }
    }

    /** A completed handshake: the peer's rank and this side's frame keys (null without encryption). */
    record Session(int peerRank, byte[] sendKey, byte[] receiveKey) {
    }

    /** Decides whether a connection may claim a rank; returns null when it may, else why not. */
    @FunctionalInterface
    interface ClaimCheck {
        String refuse(int claimedRank);
    }

    private Handshake() {
    }

    /** The connecting side, rank {@code self}, opening a connection to {@code acceptor}. */
    static Session connect(InputStream in, OutputStream out, Binding b, int self, int acceptor, SecureRandom random)
            throws IOException {
        String who = "rank " + self + ": connection to rank " + acceptor;
        byte[] nonceC = new byte[NONCE_BYTES];
        random.nextBytes(nonceC);
        ByteBuffer hello = ByteBuffer.allocate(HELLO_BYTES);
        hello.put(MAGIC).put(VERSION).putInt(self).putInt(acceptor).put(nonceC);
        out.write(hello.array());
        out.flush();
        byte[] challenge = new byte[CHALLENGE_BYTES];
        readFully(in, challenge, who, "its challenge");
        byte[] nonceA = Arrays.copyOfRange(challenge, 0, NONCE_BYTES);
        byte[] macA = Arrays.copyOfRange(challenge, NONCE_BYTES, CHALLENGE_BYTES);
        if (!MessageDigest.isEqual(macA, mac(b, "acceptor", acceptor, self, nonceC, nonceA))) {
            throw new CollectiveAuthenticationException(who + ": the peer did not prove that it holds this job's "
                    + "secret (wrong secret, another job or stage attempt, or not a member)");
        }
        out.write(mac(b, "connector", acceptor, self, nonceC, nonceA));
        out.flush();
        byte[] verdict = new byte[1];
        readFully(in, verdict, who, "its verdict");
        if (verdict[0] != ACCEPTED) {
            throw new CollectiveAuthenticationException(who + ": refused by the peer (verdict byte "
                    + (verdict[0] & 0xFF) + ")");
        }
        return session(b, acceptor, acceptor, self, nonceC, nonceA, self);
    }

    /**
     * The accepting side, rank {@code self}: reads a HELLO, asks {@code claims} whether the claimed rank may
     * connect, and runs the challenge.
     */
    static Session accept(InputStream in, OutputStream out, Binding b, int self, ClaimCheck claims,
                          SecureRandom random, String from) throws IOException {
        String who = "rank " + self + ": connection from " + from;
        byte[] helloBytes = new byte[HELLO_BYTES];
        readFully(in, helloBytes, who, "a HELLO");
        ByteBuffer hello = ByteBuffer.wrap(helloBytes);
        byte[] magic = new byte[MAGIC.length];
        hello.get(magic);
        if (!Arrays.equals(magic, MAGIC)) {
            throw new CollectiveAuthenticationException(who + ": not a Kiln collective handshake (first bytes "
                    + hex(magic) + ")");
        }
        byte version = hello.get();
        if (version != VERSION) {
            throw new CollectiveAuthenticationException(who + ": handshake version " + (version & 0xFF)
                    + ", this member speaks " + VERSION);
        }
        int claimed = hello.getInt();
        int target = hello.getInt();
        if (target != self) {
            throw new CollectiveAuthenticationException(who + ": it asks for rank " + target
                    + ", this member is rank " + self);
        }
        String refusal = claims.refuse(claimed);
        if (refusal != null) {
            throw new CollectiveAuthenticationException(who + ": it claims rank " + claimed + ", refused: " + refusal);
        }
        byte[] nonceC = new byte[NONCE_BYTES];
        hello.get(nonceC);
        byte[] nonceA = new byte[NONCE_BYTES];
        random.nextBytes(nonceA);
        out.write(nonceA);
        out.write(mac(b, "acceptor", self, claimed, nonceC, nonceA));
        out.flush();
        byte[] macC = new byte[MAC_BYTES];
        readFully(in, macC, who + " (claiming rank " + claimed + ")", "its response");
        if (!MessageDigest.isEqual(macC, mac(b, "connector", self, claimed, nonceC, nonceA))) {
            throw new CollectiveAuthenticationException(who + ": it claims rank " + claimed + " but did not prove "
                    + "that it holds this job's secret (wrong secret, a replayed handshake, another job or stage "
                    + "attempt)");
        }
        out.write(ACCEPTED);
        out.flush();
        return session(b, claimed, self, claimed, nonceC, nonceA, self);
    }

    private static Session session(Binding b, int peer, int acceptor, int connector, byte[] nonceC, byte[] nonceA,
                                   int self) {
        if (!b.encrypt()) {
            return new Session(peer, null, null);
        }
        byte[] fromConnector = mac(b, "key " + connector + "->" + acceptor, acceptor, connector, nonceC, nonceA);
        byte[] fromAcceptor = mac(b, "key " + acceptor + "->" + connector, acceptor, connector, nonceC, nonceA);
        return self == connector ? new Session(peer, fromConnector, fromAcceptor)
                : new Session(peer, fromAcceptor, fromConnector);
    }

    static byte[] mac(Binding b, String role, int acceptor, int connector, byte[] nonceC, byte[] nonceA) {
        try {
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(b.secret(), "HmacSHA256"));
            byte[] label = ("kiln-collective-v1 " + role).getBytes(StandardCharsets.UTF_8);
            byte[] job = b.job().getBytes(StandardCharsets.UTF_8);
            mac.update(ByteBuffer.allocate(Integer.BYTES).putInt(label.length).array());
            mac.update(label);
            mac.update(ByteBuffer.allocate(Integer.BYTES).putInt(job.length).array());
            mac.update(job);
            mac.update(ByteBuffer.allocate(3 * Integer.BYTES).putInt(b.stageAttempt()).putInt(acceptor)
                    .putInt(connector).array());
            mac.update(nonceC);
            mac.update(nonceA);
            return mac.doFinal();
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("HmacSHA256 is not available in this JVM", e);
        }
    }

    private static void readFully(InputStream in, byte[] dst, String who, String what) throws IOException {
        int done = 0;
        try {
            while (done < dst.length) {
                int n = in.read(dst, done, dst.length - done);
                if (n < 0) {
                    throw new CollectiveAuthenticationException(who + ": closed after " + done + " of the "
                            + dst.length + " bytes of " + what, new EOFException());
                }
                done += n;
            }
        } catch (SocketTimeoutException e) {
            throw new CollectiveAuthenticationException(who + ": sent " + done + " of the " + dst.length
                    + " bytes of " + what + " within the handshake timeout", e);
        }
    }

    private static String hex(byte[] bytes) {
        StringBuilder s = new StringBuilder();
        for (byte x : bytes) {
            s.append(String.format("%02x", x));
        }
        return s.toString();
    }
}
