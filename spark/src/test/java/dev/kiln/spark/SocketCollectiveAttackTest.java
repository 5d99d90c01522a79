package dev.kiln.spark;

import dev.kiln.distributed.Collective;
import dev.kiln.distributed.CollectiveException;
import dev.kiln.distributed.LocalCollectiveGroup;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PipedInputStream;
import java.io.PipedOutputStream;
import java.net.ConnectException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What a stranger on the network can try against a member that waits for its peers, each on the loopback address:
 * the member refuses it with a clear error, never hangs (every case has a hard time limit), never allocates what a
 * length prefix asks for, and the genuine members still complete with the right values.
 */
class SocketCollectiveAttackTest {

    private static final String LOOPBACK = "127.0.0.1";
    private static final SocketCollective.Options OPTIONS = SocketCollective.Options.of(Duration.ofSeconds(3))
            .handshakeTimeout(Duration.ofSeconds(1));
    private static final Duration LIMIT = Duration.ofSeconds(30);

    /** Rank 0 of two is genuine; the test plays rank 1 in the rendezvous and then attacks rank 0's port. */
    private static final class LoneMember implements AutoCloseable {
        final ExecutorService pool = Executors.newSingleThreadExecutor();
        final Future<Throwable> outcome;
        final SocketCollective.Announcement rank0;
        final AtomicReference<float[]> reduced = new AtomicReference<>();

        LoneMember(SocketCollective.Options options) {
            LocalCollectiveGroup group = new LocalCollectiveGroup(2, LIMIT);
            Collective zero = group.member(0);
            outcome = pool.submit(() -> {
                try (SocketCollective c = SocketCollective.connect(zero, LOOPBACK, options)) {
                    float[] v = {1, 2, 3};
                    c.allReduceMean(v);
                    reduced.set(v);
                    return null;
                } catch (Throwable t) {
                    return t;
                }
            });
            byte[][] all = group.member(1).allGather(SocketCollective.announcement(options, LOOPBACK, 1, null));
            rank0 = SocketCollective.Announcement.parse(all[0], 0, "test");
        }

        Socket dial() throws IOException {
            return dial(LOOPBACK);
        }

        Socket dial(String from) throws IOException {
            Socket s = new Socket();
            s.bind(new InetSocketAddress(from, 0));
            s.connect(new InetSocketAddress(rank0.host(), rank0.port()), 5_000);
            s.setSoTimeout(10_000);
            return s;
        }

        Handshake.Binding binding() {
            return new Handshake.Binding(rank0.secret(), OPTIONS.job(), OPTIONS.stageAttempt(), OPTIONS.encrypt());
        }

        /** Rank 0's end: a CollectiveException whose message holds every one of {@code parts}. */
        CollectiveException failure(String... parts) throws Exception {
            Throwable t = outcome.get(LIMIT.toSeconds(), TimeUnit.SECONDS);
            assertInstanceOf(CollectiveException.class, t, "rank 0 should fail with a CollectiveException");
            for (String p : parts) {
                assertTrue(t.getMessage().contains(p), "'" + p + "' missing from: " + t.getMessage());
            }
            assertEquals(null, reduced.get(), "rank 0 must not reduce with a stranger");
            return (CollectiveException) t;
        }

        @Override
        public void close() {
            pool.shutdownNow();
        }
    }

    static byte[] hello(int from, int to, byte[] nonce) {
        return ByteBuffer.allocate(Handshake.HELLO_BYTES).put(Handshake.MAGIC).put(Handshake.VERSION).putInt(from)
                .putInt(to).put(nonce).array();
    }

    @Test
    void anIdleConnectionIsDroppedAfterTheHandshakeTimeout() {
        assertTimeoutPreemptively(LIMIT, () -> {
            try (LoneMember m = new LoneMember(OPTIONS); Socket idle = m.dial()) {
                m.failure("no authenticated connection from rank(s) [1]", "0 of the 45 bytes of a HELLO");
            }
        });
    }

    @Test
    void garbageIsNotAHandshake() {
        assertTimeoutPreemptively(LIMIT, () -> {
            try (LoneMember m = new LoneMember(OPTIONS); Socket s = m.dial()) {
                byte[] junk = new byte[4096];
                new SplittableRandom(1).nextBytes(junk);
                s.getOutputStream().write(junk);
                m.failure("not a Kiln collective handshake");
            }
        });
    }

    @Test
    void fourStrayBytesAreRefusedWithoutAbortingTheWait() {
        assertTimeoutPreemptively(LIMIT, () -> {
            try (LoneMember m = new LoneMember(OPTIONS); Socket s = m.dial()) {
                s.getOutputStream().write(new byte[]{0, 0, 0, 1});
                s.getOutputStream().flush();
                s.shutdownOutput();
                m.failure("closed after 4 of the 45 bytes");
            }
        });
    }

    @Test
    void theWrongSecretIsRefused() {
        assertTimeoutPreemptively(LIMIT, () -> {
            try (LoneMember m = new LoneMember(OPTIONS); Socket s = m.dial()) {
                byte[] nonceC = new byte[Handshake.NONCE_BYTES];
                s.getOutputStream().write(hello(1, 0, nonceC));
                byte[] challenge = s.getInputStream().readNBytes(Handshake.CHALLENGE_BYTES);
                byte[] nonceA = java.util.Arrays.copyOf(challenge, Handshake.NONCE_BYTES);
                Handshake.Binding guessed = new Handshake.Binding(new byte[Handshake.SECRET_BYTES], OPTIONS.job(),
                        OPTIONS.stageAttempt(), false);
                s.getOutputStream().write(Handshake.mac(guessed, "connector", 0, 1, nonceC, nonceA));
                assertEquals(-1, s.getInputStream().read(), "a refused connection is closed without a verdict");
                m.failure("claims rank 1 but did not prove that it holds this job's secret");
            }
        });
    }

    @Test
    void aStrangerWithTheWrongSecretLearnsThatTheMemberIsNotItsPeer() {
        assertTimeoutPreemptively(LIMIT, () -> {
            try (LoneMember m = new LoneMember(OPTIONS); Socket s = m.dial()) {
                Handshake.Binding guessed = new Handshake.Binding(new byte[Handshake.SECRET_BYTES], OPTIONS.job(),
                        OPTIONS.stageAttempt(), false);
                CollectiveAuthenticationException e = assertThrows(CollectiveAuthenticationException.class,
                        () -> Handshake.connect(s.getInputStream(), s.getOutputStream(), guessed, 1, 0,
                                new SecureRandom()));
                assertTrue(e.getMessage().contains("did not prove that it holds this job's secret"), e.getMessage());
                s.close();
                m.failure("no authenticated connection from rank(s) [1]");
            }
        });
    }

    @Test
    void aRecordedHandshakeReplayedLaterIsRefused() {
        assertTimeoutPreemptively(LIMIT, () -> {
            try (LoneMember m = new LoneMember(OPTIONS)) {
                // an earlier, genuine handshake of rank 1 with the same secret, recorded on the wire
                byte[] recorded = recordConnectorBytes(m.binding());
                try (Socket s = m.dial()) {
                    s.getOutputStream().write(recorded);
                    s.getOutputStream().flush();
                    m.failure("claims rank 1 but did not prove that it holds this job's secret", "replayed");
                }
            }
        });
    }

    /** What a genuine rank 1 sends (HELLO, then its response) in a handshake with a genuine acceptor. */
    private static byte[] recordConnectorBytes(Handshake.Binding binding) throws Exception {
        PipedOutputStream toAcceptor = new PipedOutputStream();
        PipedInputStream acceptorIn = new PipedInputStream(toAcceptor, 1 << 16);
        PipedOutputStream toConnector = new PipedOutputStream();
        PipedInputStream connectorIn = new PipedInputStream(toConnector, 1 << 16);
        ByteArrayOutputStream wire = new ByteArrayOutputStream();
        OutputStream tapped = new OutputStream() {
            @Override
            public void write(int b) throws IOException {
                wire.write(b);
                toAcceptor.write(b);
            }

            @Override
            public void write(byte[] b, int off, int len) throws IOException {
                wire.write(b, off, len);
                toAcceptor.write(b, off, len);
            }

            @Override
            public void flush() throws IOException {
                toAcceptor.flush();
            }
        };
        ExecutorService acceptor = Executors.newSingleThreadExecutor();
        try {
            Future<Handshake.Session> accepted = acceptor.submit(() -> Handshake.accept(acceptorIn, toConnector,
                    binding, 0, claimed -> null, new SecureRandom(), "recording"));
            Handshake.Session s = Handshake.connect(connectorIn, tapped, binding, 1, 0, new SecureRandom());
            assertEquals(0, s.peerRank());
            assertEquals(1, accepted.get(10, TimeUnit.SECONDS).peerRank());
        } finally {
            acceptor.shutdownNow();
        }
        assertEquals(Handshake.HELLO_BYTES + Handshake.MAC_BYTES, wire.size());
        return wire.toByteArray();
    }

    @Test
    void aRankClaimedFromAnotherAddressIsRefusedEvenWithTheSecret() {
        assertTimeoutPreemptively(LIMIT, () -> {
            try (LoneMember m = new LoneMember(OPTIONS); Socket s = m.dial("127.0.0.2")) {
                assertThrows(CollectiveException.class, () -> Handshake.connect(s.getInputStream(),
                        s.getOutputStream(), m.binding(), 1, 0, new SecureRandom()));
                m.failure("it claims rank 1, refused: it comes from 127.0.0.2, rank 1 announced 127.0.0.1");
            }
        });
    }

    @Test
    void aRankThatMayNotConnectIsRefused() {
        assertTimeoutPreemptively(LIMIT, () -> {
            try (LoneMember m = new LoneMember(OPTIONS); Socket s = m.dial()) {
                s.getOutputStream().write(hello(0, 0, new byte[Handshake.NONCE_BYTES]));
                assertEquals(-1, s.getInputStream().read());
                m.failure("it claims rank 0, refused: only ranks 1 to 1 connect to rank 0");
            }
        });
    }

    @Test
    void anOversizedLengthPrefixFailsBeforeAnyAllocation() {
        assertTimeoutPreemptively(LIMIT, () -> {
            try (LoneMember m = new LoneMember(OPTIONS); Socket s = m.dial()) {
                // even a peer that authenticated (or a frame injected into a plaintext stream) cannot make the
                // member allocate what a length prefix asks for
                Handshake.connect(s.getInputStream(), s.getOutputStream(), m.binding(), 1, 0, new SecureRandom());
                s.getOutputStream().write(ByteBuffer.allocate(FrameChannel.HEADER_BYTES).putLong(0)
                        .put(FrameChannel.Ops.ALL_REDUCE_MEAN).putInt(0x7FFFFFF0).array());
                s.getOutputStream().flush();
                m.failure("rank 1 announced a frame of 2147483632 bytes (0x7FFFFFF0), expected 12");
            }
        });
    }

    @Test
    void aForgedFrameOnAnEncryptedConnectionFailsAuthentication() {
        SocketCollective.Options sealed = OPTIONS.encrypt(true);
        assertTimeoutPreemptively(LIMIT, () -> {
            try (LoneMember m = new LoneMember(sealed); Socket s = m.dial()) {
                Handshake.Binding b = new Handshake.Binding(m.rank0.secret(), sealed.job(), sealed.stageAttempt(), true);
                Handshake.connect(s.getInputStream(), s.getOutputStream(), b, 1, 0, new SecureRandom());
                // an on-path attacker who cannot know the connection's key writes a plausible frame
                s.getOutputStream().write(new byte[FrameChannel.HEADER_BYTES + FrameChannel.TAG_BYTES]);
                s.getOutputStream().flush();
                m.failure("a frame header from rank 1 failed authentication");
            }
        });
    }

    /**
     * Three genuine members; before ranks 1 and 2 connect, strangers try rank 0 (idle, garbage, wrong secret, a
     * claimed rank from another address). The genuine members complete with exact values, and once connected the
     * members no longer listen.
     */
    @Test
    void theGenuineMembersCompleteDespiteTheStrangers() {
        SocketCollective.Options options = SocketCollective.Options.of(Duration.ofSeconds(20))
                .handshakeTimeout(Duration.ofSeconds(1));
        assertTimeoutPreemptively(LIMIT, () -> {
            int world = 3;
            LocalCollectiveGroup group = new LocalCollectiveGroup(world, LIMIT);
            CountDownLatch attacked = new CountDownLatch(1);
            AtomicReference<SocketCollective.Announcement> rank0 = new AtomicReference<>();
            ExecutorService pool = Executors.newFixedThreadPool(world);
            try {
                List<Future<float[]>> members = new ArrayList<>();
                for (int r = 0; r < world; r++) {
                    Collective inner = group.member(r);
                    Collective rendezvous = r == 0 ? inner : new HeldRendezvous(inner, attacked, rank0);
                    members.add(pool.submit(() -> {
                        try (SocketCollective c = SocketCollective.connect(rendezvous, LOOPBACK, options)) {
                            float[] v = {c.rank() + 1f, 10f * (c.rank() + 1), -3f};
                            c.allReduceMean(v);
                            return v;
                        }
                    }));
                }
                while (rank0.get() == null) {
                    Thread.sleep(10);
                }
                SocketCollective.Announcement a = rank0.get();
                InetSocketAddress target = new InetSocketAddress(a.host(), a.port());
                try (Socket idle = new Socket(target.getAddress(), target.getPort());
                     Socket junk = new Socket(target.getAddress(), target.getPort());
                     Socket guesser = new Socket(target.getAddress(), target.getPort());
                     Socket elsewhere = new Socket()) {
                    junk.getOutputStream().write(new byte[64]);
                    Handshake.Binding guessed = new Handshake.Binding(new byte[Handshake.SECRET_BYTES],
                            options.job(), options.stageAttempt(), false);
                    guesser.setSoTimeout(10_000);
                    assertThrows(CollectiveException.class, () -> Handshake.connect(guesser.getInputStream(),
                            guesser.getOutputStream(), guessed, 2, 0, new SecureRandom()));
                    elsewhere.bind(new InetSocketAddress("127.0.0.2", 0));
                    elsewhere.connect(target);
                    elsewhere.setSoTimeout(10_000);
                    Handshake.Binding real = new Handshake.Binding(a.secret(), options.job(), options.stageAttempt(),
                            false);
                    assertThrows(CollectiveException.class, () -> Handshake.connect(elsewhere.getInputStream(),
                            elsewhere.getOutputStream(), real, 2, 0, new SecureRandom()));
                }
                attacked.countDown();
                for (Future<float[]> f : members) {
                    assertArrayEquals(new float[]{2f, 20f, -3f}, f.get(LIMIT.toSeconds(), TimeUnit.SECONDS));
                }
                assertThrows(ConnectException.class, () -> new Socket(target.getAddress(), target.getPort()).close(),
                        "a connected member no longer accepts connections");
            } finally {
                pool.shutdownNow();
            }
        });
    }

    /** Passes rank 0's announcement to the test and holds its member until the strangers have had their turn. */
    private static final class HeldRendezvous implements Collective {
        private final Collective inner;
        private final CountDownLatch release;
        private final AtomicReference<SocketCollective.Announcement> rank0;

        HeldRendezvous(Collective inner, CountDownLatch release, AtomicReference<SocketCollective.Announcement> rank0) {
            this.inner = inner;
            this.release = release;
            this.rank0 = rank0;
        }

        @Override
        public int rank() {
            return inner.rank();
        }

        @Override
        public int worldSize() {
            return inner.worldSize();
        }

        @Override
        public byte[][] allGather(byte[] local) {
            byte[][] all = inner.allGather(local);
            rank0.compareAndSet(null, SocketCollective.Announcement.parse(all[0], 0, "test"));
            try {
                release.await();
            } catch (InterruptedException e) {
                throw new IllegalStateException(e);
            }
            return all;
        }
    }

}
