package dev.kiln.spark;

import dev.kiln.distributed.Collective;
import dev.kiln.distributed.CollectiveException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.LongAdder;

/**
 * A {@link Collective} over direct, authenticated TCP connections between the members, after a rendezvous through a
 * slower collective that every member already shares: in Spark, {@link BarrierCollective}, whose {@code allGather}
 * passes through the driver over Spark's RPC (and so inherits {@code spark.authenticate} and its encryption) and,
 * in Spark 4.0, polls for the answer once a second — too slow for an exchange per layer and step.
 *
 * <p><b>Connecting.</b> Rank 0 draws a 256-bit secret from {@link SecureRandom}; it travels to the other members
 * inside the rendezvous, beside each member's {@code host:port} (an ephemeral port of {@code host}, its executor's
 * address). Every member connects to each lower rank from its own announced address and accepts each higher one.
 * Before any frame both sides of a connection run {@link Handshake}: fresh nonces from both sides and HMAC-SHA256
 * proofs of the secret bound to the job, the stage attempt and both ranks. The accepting member also checks that
 * the connection comes from the address that the claimed rank announced, and that the rank is one it still waits
 * for. A connection that fails any of this is refused and logged, and the member goes on waiting for the genuine one
 * until the timeout; then it fails with a {@link CollectiveException} naming the missing ranks and the last refusal.
 * Every read has a timeout from the first byte (the handshake's, then {@link Options#livenessTimeout}, which the
 * heartbeats of a live peer renew up to {@link Options#timeout}), every write a
 * watchdog that closes the connection when it does not finish in time, and every frame's length is checked against
 * what the operation expects before anything is allocated ({@link FrameChannel}). With {@link Options#encrypt} the
 * frames are sealed with AES-GCM.
 *
 * <p><b>Reductions.</b> {@link Algorithm#AUTO} (the default) reduces large arrays with a ring (reduce-scatter, then
 * all-gather: each member sends 2(N−1)/N of the array's bytes, the lower bound, in 2(N−1) steps) and small ones with
 * recursive doubling (log2 p steps of the whole array, p the largest power of two ≤ N, plus one step before and after
 * for the members beyond p); an α-β model decides where small ends ({@link Options#latencyBytes}). Both sum every element in an order fixed by the ranks alone — along the ring starting at the chunk's owner,
 * or pairwise up a fixed tree — and the final values are computed once and passed on, so every member gets the same
 * bits and timing changes nothing. For a mean each member divides its values by N first (no partial sum can then
 * overflow where the mean is finite); the float partial sums are rounded at every step, so for three or more members
 * the result may differ from {@link Algorithm#MESH}'s double-precision rank-order mean by at most
 * u·Σ|x| + 2u·|mean| per element (u = 2^-24), a few units in the last place (two members: the same bits). {@link Algorithm#MESH} is the exchange of {@link Collective}'s default methods: every
 * member sends its whole array to every other, (N−1) times the array's bytes, and sums in rank order in double.
 *
 * <p>A failed exchange closes every connection, so the other members fail at once rather than at their timeout.
 * Close it to release the sockets.
 */
public final class SocketCollective implements Collective, AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(SocketCollective.class);
    private static final byte RENDEZVOUS_VERSION = 1;
    private static final SecureRandom RANDOM = new SecureRandom();
    private static final ScheduledThreadPoolExecutor WATCHDOG = watchdog();

    /** How {@link #allReduceMean(float[])} and {@link #allReduceSum(double[])} move the data. */
    public enum Algorithm {
        /** every member sends its whole array to every other and sums all in rank order (in double) */
        MESH,
        /** ring reduce-scatter + all-gather, whatever the size */
        RING,
        /** whichever of recursive doubling and the ring the latency model says is faster ({@link Options#latencyBytes}) */
        AUTO
    }

    /** How a {@link SocketCollective} connects and exchanges. Immutable; the setters return copies. */
    public static final class Options {
        /**
         * α/β: the bytes one member sends in the time of one step's latency. AUTO compares the two algorithms with
         * it: for S bytes over N members, recursive doubling costs k·(α + Sβ) (k = log2 of the largest power of two ≤ N,
         * plus 2 when N is none) and the ring 2(N−1)·α + 2(N−1)/N·Sβ. The default, 62,500, is 50 µs of TCP and JVM latency per
         * step at 10 Gb/s; the sizes where the ring starts to win are then about 0.5 MB at 8 members, 1.9 MB at 64
         * and 9 MB at 512 (LeNet's 250 kB gradients take recursive doubling, ResNet-50's 100 MB the ring).
         */
        public static final int DEFAULT_LATENCY_BYTES = 62_500;
        /** the largest frame {@link #allGather(byte[])} accepts from a peer, whose size it cannot know in advance */
        public static final int DEFAULT_MAX_GATHER_BYTES = 256 << 20;
        /**
         * How long a member waits while a peer sends nothing at all (no frame, no heartbeat) before it fails naming
         * that peer: a dead host or a hung process. Each connection carries a heartbeat every quarter of it while
         * it is otherwise idle, so a peer that is alive but slow (a long step) keeps it open up to {@link #timeout}.
         */
        public static final Duration DEFAULT_LIVENESS_TIMEOUT = Duration.ofSeconds(30);

        private final Duration timeout;
        private final Duration handshakeTimeout;
        private final String job;
        private final int stageAttempt;
        private final boolean encrypt;
        private final Algorithm algorithm;
        private final int latencyBytes;
        private final int maxGatherBytes;
        private final Duration livenessTimeout;

        private Options(Duration timeout, Duration handshakeTimeout, String job, int stageAttempt, boolean encrypt,
                        Algorithm algorithm, int latencyBytes, int maxGatherBytes, Duration livenessTimeout) {
            this.livenessTimeout = positive(livenessTimeout, "livenessTimeout");
            this.timeout = positive(timeout, "timeout");
            this.handshakeTimeout = positive(handshakeTimeout, "handshakeTimeout");
            this.job = Objects.requireNonNull(job, "job");
            this.stageAttempt = stageAttempt;
            this.encrypt = encrypt;
            this.algorithm = Objects.requireNonNull(algorithm, "algorithm");
            if (latencyBytes < 0 || maxGatherBytes < 0) {
                throw new IllegalArgumentException("SocketCollective.Options: negative size " + latencyBytes
                        + " / " + maxGatherBytes);
            }
            this.latencyBytes = latencyBytes;
            this.maxGatherBytes = maxGatherBytes;
        }

        /**
         * Defaults: {@code timeout} for connecting and for every read and write of the exchanges, the smaller of it
         * and 10 s for each incoming handshake, job "kiln" attempt 0, no encryption, {@link Algorithm#AUTO}.
         */
        public static Options of(Duration timeout) {
            Duration hs = positive(timeout, "timeout").compareTo(Duration.ofSeconds(10)) < 0 ? timeout
                    : Duration.ofSeconds(10);
            return new Options(timeout, hs, "kiln", 0, false, Algorithm.AUTO, DEFAULT_LATENCY_BYTES,
                    DEFAULT_MAX_GATHER_BYTES, DEFAULT_LIVENESS_TIMEOUT);
        }

        /** The job and stage attempt the handshake binds (a Spark stage's id and attempt number). */
        public Options job(String jobId, int attempt) {
            return new Options(timeout, handshakeTimeout, jobId, attempt, encrypt, algorithm, latencyBytes,
                    maxGatherBytes, livenessTimeout);
        }

        /** Seal every frame with AES-GCM (what a cluster with {@code spark.network.crypto.enabled} asks for). */
        public Options encrypt(boolean on) {
            return new Options(timeout, handshakeTimeout, job, stageAttempt, on, algorithm, latencyBytes,
                    maxGatherBytes, livenessTimeout);
        }

        public Options algorithm(Algorithm a) {
            return new Options(timeout, handshakeTimeout, job, stageAttempt, encrypt, a, latencyBytes,
                    maxGatherBytes, livenessTimeout);
        }

        /** α/β of the network, in bytes (see {@link #DEFAULT_LATENCY_BYTES}). */
        public Options latencyBytes(int bytes) {
            return new Options(timeout, handshakeTimeout, job, stageAttempt, encrypt, algorithm, bytes,
                    maxGatherBytes, livenessTimeout);
        }

        /** How long an incoming connection may take to complete its handshake before it is refused. */
        public Options handshakeTimeout(Duration t) {
            return new Options(timeout, t, job, stageAttempt, encrypt, algorithm, latencyBytes,
                    maxGatherBytes, livenessTimeout);
        }

        public Options maxGatherBytes(int bytes) {
            return new Options(timeout, handshakeTimeout, job, stageAttempt, encrypt, algorithm, latencyBytes,
                    bytes, livenessTimeout);
        }

        /**
         * How long a peer may send nothing at all, not even a heartbeat, before this member fails naming it (the
         * same on every member, since it also sets how often heartbeats are sent).
         */
        public Options livenessTimeout(Duration t) {
            return new Options(timeout, handshakeTimeout, job, stageAttempt, encrypt, algorithm, latencyBytes,
                    maxGatherBytes, t);
        }

        public Duration livenessTimeout() {
            return livenessTimeout;
        }

        public Duration timeout() {
            return timeout;
        }

        public Duration handshakeTimeout() {
            return handshakeTimeout;
        }

        public String job() {
            return job;
        }

        public int stageAttempt() {
            return stageAttempt;
        }

        public boolean encrypt() {
            return encrypt;
        }

        public Algorithm algorithm() {
            return algorithm;
        }

        public int latencyBytes() {
            return latencyBytes;
        }

        public int maxGatherBytes() {
            return maxGatherBytes;
        }

        private static Duration positive(Duration d, String what) {
            if (d == null || d.isNegative() || d.isZero()) {
                throw new IllegalArgumentException("SocketCollective.Options: " + what + " must be positive, got " + d);
            }
            return d;
        }

        @Override
        public String toString() {
            return "Options(timeout " + timeout + ", handshake " + handshakeTimeout + ", job " + job + " attempt "
                    + stageAttempt + ", " + (encrypt ? "AES-GCM" : "plaintext") + ", " + algorithm
                    + ", α/β " + latencyBytes + " bytes, liveness " + livenessTimeout + ")";
        }
    }

    /** A rendezvous that knows the job it belongs to (a Spark barrier stage): it fills in the options' binding. */
    interface JobBound {
        Options bind(Options options);
    }

    private final int rank;
    private final int worldSize;
    private final String self;
    private final Options options;
    private final Socket[] peers;
    private final FrameChannel[] channels;
    private final ExecutorService senders;
    private final ScheduledThreadPoolExecutor heartbeats;
    private volatile boolean heartbeatsSuspended;
    private final LongAdder bytesSent = new LongAdder();
    private long sequence;
    private volatile boolean broken;

    private SocketCollective(int rank, int worldSize, Options options, Socket[] peers, Handshake.Session[] sessions)
            throws IOException {
        this.rank = rank;
        this.worldSize = worldSize;
        this.self = "rank " + rank + " of " + worldSize;
        this.options = options;
        this.peers = peers;
        this.channels = new FrameChannel[worldSize];
        for (int r = 0; r < worldSize; r++) {
            if (r != rank) {
                peers[r].setTcpNoDelay(true);
                // a read waits at most the liveness timeout for any byte; heartbeats keep a live peer within it
                int liveness = Math.min(millis(options.livenessTimeout), millis(options.timeout));
                peers[r].setSoTimeout(liveness);
                channels[r] = new FrameChannel(self, r, new BufferedInputStream(peers[r].getInputStream(), 1 << 16),
                        new BufferedOutputStream(peers[r].getOutputStream(), 1 << 16), sessions[r].sendKey(),
                        sessions[r].receiveKey(), bytesSent, liveness, millis(options.timeout));
            }
        }
        this.senders = Executors.newFixedThreadPool(Math.max(1, worldSize - 1), r -> {
            Thread t = new Thread(r, "kiln-collective-send-" + rank);
            t.setDaemon(true);
            return t;
        });
        this.heartbeats = new ScheduledThreadPoolExecutor(1, r -> {
            Thread t = new Thread(r, "kiln-collective-heartbeat-" + rank);
            t.setDaemon(true);
            return t;
        });
        long interval = Math.max(1, options.livenessTimeout.toMillis() / 4);
        heartbeats.scheduleWithFixedDelay(() -> sendHeartbeats(TimeUnit.MILLISECONDS.toNanos(interval)), interval,
                interval, TimeUnit.MILLISECONDS);
    }

    /**
     * A heartbeat to every peer this member has written nothing to for {@code idleNanos}. A failed write is left
     * to the exchanges: the next read or write on that connection fails and names the peer.
     */
    private void sendHeartbeats(long idleNanos) {
        if (broken || heartbeatsSuspended) {
            return;
        }
        for (int r = 0; r < worldSize; r++) {
            if (r == rank) {
                continue;
            }
            FrameChannel channel = channels[r];
            try {
                guarded(peers[r], millis(options.timeout), self, r, () -> channel.heartbeatIfIdle(idleNanos));
            } catch (IOException | RuntimeException e) {
                LOG.debug("{}: heartbeat to rank {} failed: {}", self, r, e.toString());
            }
        }
    }

    /** Stops this member's heartbeats while its sockets stay open: how a hung process or a dead host looks. */
    void suspendHeartbeatsForTest() {
        heartbeatsSuspended = true;
    }

    /**
     * Connects the members of {@code rendezvous} (which must have the same ranks) over TCP with
     * {@link Options#of(Duration)}; when the rendezvous is a Spark barrier stage, bound to that stage's attempt and
     * encrypted when the cluster sets {@code spark.network.crypto.enabled}.
     *
     * @param host    this member's address as the others reach it; the listening socket binds to it
     * @param timeout for connecting and for every later read and write
     */
    public static SocketCollective connect(Collective rendezvous, String host, Duration timeout) {
        Options options = Options.of(timeout);
        if (rendezvous instanceof JobBound bound) {
            options = bound.bind(options);
        }
        return connect(rendezvous, host, options);
    }

    /** Connects the members of {@code rendezvous} over TCP with these options (the same on every member). */
    public static SocketCollective connect(Collective rendezvous, String host, Options options) {
        int rank = rendezvous.rank();
        int world = rendezvous.worldSize();
        String self = "rank " + rank + " of " + world;
        Socket[] peers = new Socket[world];
        Handshake.Session[] sessions = new Handshake.Session[world];
        long deadline = System.nanoTime() + options.timeout.toNanos();
        try (ServerSocket server = new ServerSocket()) {
            InetAddress local = InetAddress.getByName(host);
            server.bind(new InetSocketAddress(local, 0), Math.max(50, world));
            byte[] secret = null;
            if (rank == 0) {
                secret = new byte[Handshake.SECRET_BYTES];
                RANDOM.nextBytes(secret);
            }
            byte[][] all = rendezvous.allGather(announcement(options, host, server.getLocalPort(), secret));
            Announcement[] announced = new Announcement[world];
            for (int r = 0; r < world; r++) {
                announced[r] = Announcement.parse(all[r], r, self);
                if (!announced[r].sameConfiguration(announced[0])) {
                    throw new CollectiveException(self + ": rank " + r + " connects with " + announced[r].describe()
                            + ", rank 0 with " + announced[0].describe() + " (every member needs the same options)");
                }
            }
            if (announced[0].secret == null) {
                throw new CollectiveException(self + ": rank 0 announced no secret");
            }
            if (announced[0].encrypt != options.encrypt || announced[0].algorithm != options.algorithm
                    || announced[0].latencyBytes != options.latencyBytes) {
                throw new CollectiveException(self + ": rank 0 connects with " + announced[0].describe()
                        + ", this member with different options (every member needs the same options)");
            }
            Handshake.Binding binding = new Handshake.Binding(announced[0].secret, options.job, options.stageAttempt,
                    options.encrypt);
            for (int r = 0; r < rank; r++) {
                peers[r] = new Socket();
                sessions[r] = connectTo(peers[r], local, announced[r], binding, rank, r, deadline, self);
            }
            acceptAll(server, announced, binding, rank, world, peers, sessions, options, deadline, self);
            LOG.debug("{} connected at {}:{} ({})", self, host, server.getLocalPort(), options);
            return new SocketCollective(rank, world, options, peers, sessions);
        } catch (IOException e) {
            closeAll(peers);
            throw new CollectiveException(self + ": cannot connect the members over TCP (" + e + ")", e);
        } catch (RuntimeException e) {
            closeAll(peers);
            throw e;
        }
    }

    private static Handshake.Session connectTo(Socket s, InetAddress local, Announcement peer,
                                               Handshake.Binding binding, int rank, int r, long deadline,
                                               String self) throws IOException {
        // from our announced address, which is what the peer checks the connection against
        s.bind(new InetSocketAddress(local, 0));
        try {
            s.connect(new InetSocketAddress(peer.host, peer.port), remainingMillis(deadline, self, "rank " + r));
        } catch (SocketTimeoutException e) {
            throw new CollectiveException(self + ": rank " + r + " at " + peer.host + ":" + peer.port
                    + " did not accept the connection in time", e);
        }
        // the peer may still be connecting to its own lower ranks: wait for its challenge until the deadline
        s.setSoTimeout(remainingMillis(deadline, self, "rank " + r));
        InputStream in = s.getInputStream();
        OutputStream out = new GuardedOutput(s, remainingMillis(deadline, self, "rank " + r), self, r);
        return Handshake.connect(in, out, binding, rank, r, RANDOM);
    }

    private static void acceptAll(ServerSocket server, Announcement[] announced, Handshake.Binding binding, int rank,
                                  int world, Socket[] peers, Handshake.Session[] sessions, Options options,
                                  long deadline, String self) throws IOException {
        int missing = world - 1 - rank;
        int refused = 0;
        CollectiveAuthenticationException lastRefusal = null;
        while (missing > 0) {
            long left = (deadline - System.nanoTime()) / 1_000_000;
            Socket s;
            try {
                if (left <= 0) {
                    throw new SocketTimeoutException();
                }
                server.setSoTimeout((int) Math.min(Integer.MAX_VALUE, left));
                s = server.accept();
            } catch (SocketTimeoutException e) {
                List<Integer> waiting = new ArrayList<>();
                for (int r = rank + 1; r < world; r++) {
                    if (peers[r] == null) {
                        waiting.add(r);
                    }
                }
                String why = refused == 0 ? "" : "; refused " + refused + " connection(s), the last: "
                        + lastRefusal.getMessage();
                throw new CollectiveException(self + ": no authenticated connection from rank(s) " + waiting
                        + " within " + options.timeout + why, lastRefusal);
            }
            String from = s.getRemoteSocketAddress().toString();
            try {
                s.setSoTimeout((int) Math.max(1, Math.min(millis(options.handshakeTimeout), left)));
                Handshake.Session session = Handshake.accept(s.getInputStream(),
                        new GuardedOutput(s, millis(options.handshakeTimeout), self, -1), binding, rank,
                        claimed -> refusal(claimed, s.getInetAddress(), announced, peers, rank, world), RANDOM,
                        from);
                peers[session.peerRank()] = s;
                sessions[session.peerRank()] = session;
                missing--;
            } catch (CollectiveAuthenticationException e) {
                refused++;
                lastRefusal = e;
                LOG.warn("{}", e.getMessage());
                closeQuietly(s);
            } catch (IOException | CollectiveException e) {
                refused++;
                lastRefusal = new CollectiveAuthenticationException(self + ": connection from " + from
                        + " failed in the handshake: " + e, e);
                LOG.warn("{}", lastRefusal.getMessage());
                closeQuietly(s);
            }
        }
    }

    private static String refusal(int claimed, InetAddress from, Announcement[] announced, Socket[] peers, int rank,
                                  int world) {
        if (claimed <= rank || claimed >= world) {
            return "only ranks " + (rank + 1) + " to " + (world - 1) + " connect to rank " + rank;
        }
        if (peers[claimed] != null) {
            return "rank " + claimed + " is already connected";
        }
        if (!announced[claimed].addresses().contains(from)) {
            return "it comes from " + from.getHostAddress() + ", rank " + claimed + " announced "
                    + announced[claimed].host;
        }
        return null;
    }

    /** This member's part of the rendezvous: options, address, and (rank 0) the job's secret. */
    static byte[] announcement(Options o, String host, int port, byte[] secret) {
        byte[] h = host.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(1 + 1 + 1 + 4 + 2 + h.length + 4 + (secret == null ? 0 : secret.length));
        b.put(RENDEZVOUS_VERSION).put((byte) (o.encrypt ? 1 : 0)).put((byte) o.algorithm.ordinal())
                .putInt(o.latencyBytes).putShort((short) h.length).put(h).putInt(port);
        if (secret != null) {
            b.put(secret);
        }
        return b.array();
    }

    record Announcement(boolean encrypt, Algorithm algorithm, int latencyBytes, String host, int port,
                                byte[] secret) {

        static Announcement parse(byte[] bytes, int r, String self) {
            try {
                ByteBuffer b = ByteBuffer.wrap(bytes);
                if (b.get() != RENDEZVOUS_VERSION) {
                    throw new CollectiveException(self + ": rank " + r + " announced an unknown rendezvous version");
                }
                boolean encrypt = b.get() == 1;
                int a = b.get();
                if (a < 0 || a >= Algorithm.values().length) {
                    throw new CollectiveException(self + ": rank " + r + " announced algorithm " + a);
                }
                int threshold = b.getInt();
                byte[] h = new byte[b.getShort() & 0xFFFF];
                b.get(h);
                int port = b.getInt();
                byte[] secret = null;
                if (b.remaining() == Handshake.SECRET_BYTES) {
                    secret = new byte[Handshake.SECRET_BYTES];
                    b.get(secret);
                } else if (b.remaining() != 0) {
                    throw new CollectiveException(self + ": rank " + r + " announced " + b.remaining()
                            + " trailing bytes");
                }
                return new Announcement(encrypt, Algorithm.values()[a], threshold,
                        new String(h, StandardCharsets.UTF_8), port, secret);
            } catch (java.nio.BufferUnderflowException e) {
                throw new CollectiveException(self + ": rank " + r + " announced " + bytes.length
                        + " bytes, too short for an address", e);
            }
        }

        boolean sameConfiguration(Announcement o) {
            return encrypt == o.encrypt && algorithm == o.algorithm && latencyBytes == o.latencyBytes;
        }

        String describe() {
            return (encrypt ? "AES-GCM" : "plaintext") + ", " + algorithm + ", α/β " + latencyBytes + " bytes";
        }

        List<InetAddress> addresses() {
            try {
                return Arrays.asList(InetAddress.getAllByName(host));
            } catch (IOException e) {
                return List.of();
            }
        }
    }

    @Override
    public int rank() {
        return rank;
    }

    @Override
    public int worldSize() {
        return worldSize;
    }

    public Options options() {
        return options;
    }

    /** Every byte this member has written to its peers since it connected (frame headers and tags included). */
    public long bytesSent() {
        return bytesSent.sum();
    }

    @Override
    public byte[][] allGather(byte[] local) {
        long seq = begin();
        byte[][] result = new byte[worldSize][];
        result[rank] = local.clone();
        return run(seq, "allGather", () -> {
            List<Future<?>> sends = new ArrayList<>(worldSize - 1);
            for (int r = 0; r < worldSize; r++) {
                if (r != rank) {
                    sends.add(send(r, seq, FrameChannel.Ops.ALL_GATHER, local, 0, local.length));
                }
            }
            for (int r = 0; r < worldSize; r++) {
                if (r != rank) {
                    int n = channels[r].readHeader(seq, FrameChannel.Ops.ALL_GATHER, 0, options.maxGatherBytes);
                    result[r] = new byte[n];
                    channels[r].readPayload(result[r], 0, n);
                }
            }
            awaitAll(sends);
            return result;
        });
    }

    @Override
    public void broadcast(float[] values, int root) {
        if (root < 0 || root >= worldSize) {
            throw new IllegalArgumentException("broadcast: root " + root + " is not a rank of a group of " + worldSize);
        }
        long seq = begin();
        run(seq, "broadcast", () -> {
            int bytes = values.length * Float.BYTES;
            if (rank == root) {
                byte[] payload = Collective.toBytes(values);
                List<Future<?>> sends = new ArrayList<>(worldSize - 1);
                for (int r = 0; r < worldSize; r++) {
                    if (r != rank) {
                        sends.add(send(r, seq, FrameChannel.Ops.BROADCAST, payload, 0, bytes));
                    }
                }
                awaitAll(sends);
            } else {
                byte[] payload = new byte[bytes];
                channels[root].readExactly(seq, FrameChannel.Ops.BROADCAST, payload, 0, bytes);
                ByteBuffer.wrap(payload).order(java.nio.ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(values);
            }
            return null;
        });
    }

    @Override
    public void allReduceMean(float[] values) {
        if (worldSize == 1) {
            return;
        }
        long seq = begin();
        run(seq, "allReduceMean", () -> {
            reduce(seq, FrameChannel.Ops.ALL_REDUCE_MEAN, new ReduceBuffer.Floats(values, worldSize));
            return null;
        });
    }

    @Override
    public void allReduceSum(double[] values) {
        if (worldSize == 1) {
            return;
        }
        long seq = begin();
        run(seq, "allReduceSum", () -> {
            reduce(seq, FrameChannel.Ops.ALL_REDUCE_SUM, new ReduceBuffer.Doubles(values));
            return null;
        });
    }

    private void reduce(long seq, byte op, ReduceBuffer v) throws IOException {
        long bytes = (long) v.length() * v.elementBytes();
        Algorithm a = options.algorithm;
        if (a == Algorithm.MESH) {
            mesh(seq, op, v);
        } else if (a == Algorithm.RING || !doublingIsFaster(bytes, worldSize, options.latencyBytes)) {
            v.prepare();
            ring(seq, op, v);
        } else {
            v.prepare();
            recursiveDoubling(seq, op, v);
        }
    }

    /** The α-β model of {@link Options#DEFAULT_LATENCY_BYTES}, in units of β. */
    static boolean doublingIsFaster(long bytes, int world, long latencyBytes) {
        int steps = 31 - Integer.numberOfLeadingZeros(world) + (Integer.bitCount(world) == 1 ? 0 : 2);
        double doubling = steps * ((double) latencyBytes + bytes);
        double ring = 2.0 * (world - 1) * latencyBytes + 2.0 * (world - 1) / world * bytes;
        return doubling < ring;
    }

    /** Every member's whole array to every other, summed in rank order in double: the default methods' bits. */
    private void mesh(long seq, byte op, ReduceBuffer v) throws IOException {
        int n = v.length();
        int bytes = Math.multiplyExact(n, v.elementBytes());
        byte[] mine = new byte[bytes];
        v.encode(0, n, mine, 0);
        List<Future<?>> sends = new ArrayList<>(worldSize - 1);
        for (int r = 0; r < worldSize; r++) {
            if (r != rank) {
                sends.add(send(r, seq, op, mine, 0, bytes));
            }
        }
        double[] sum = new double[n];
        byte[] theirs = new byte[bytes];
        for (int r = 0; r < worldSize; r++) {
            byte[] part = mine;
            if (r != rank) {
                channels[r].readExactly(seq, op, theirs, 0, bytes);
                part = theirs;
            }
            v.accumulate(part, sum);
        }
        awaitAll(sends);
        v.finishFromSum(sum);
    }

    /**
     * Ring reduce-scatter, then ring all-gather. Chunk c is summed along the ring starting at rank c (the partial
     * sum arriving from the left plus this member's values), so its order is c, c+1, …, c−1 whatever the timing;
     * the all-gather passes on the finished chunks' bits unchanged.
     */
    private void ring(long seq, byte op, ReduceBuffer v) throws IOException {
        int n = v.length();
        int eb = v.elementBytes();
        int right = (rank + 1) % worldSize;
        int left = (rank - 1 + worldSize) % worldSize;
        int largest = 0;
        for (int c = 0; c < worldSize; c++) {
            largest = Math.max(largest, chunkEnd(c, n) - chunkStart(c, n));
        }
        byte[] out = new byte[Math.multiplyExact(largest, eb)];
        byte[] in = new byte[out.length];
        for (int step = 0; step < worldSize - 1; step++) {
            int sendChunk = Math.floorMod(rank - step, worldSize);
            int recvChunk = Math.floorMod(rank - step - 1, worldSize);
            exchangeChunk(seq, op, v, right, sendChunk, left, recvChunk, out, in, n, true);
        }
        for (int step = 0; step < worldSize - 1; step++) {
            int sendChunk = Math.floorMod(rank + 1 - step, worldSize);
            int recvChunk = Math.floorMod(rank - step, worldSize);
            exchangeChunk(seq, op, v, right, sendChunk, left, recvChunk, out, in, n, false);
        }
    }

    private void exchangeChunk(long seq, byte op, ReduceBuffer v, int to, int sendChunk, int from, int recvChunk,
                               byte[] out, byte[] in, int n, boolean add) throws IOException {
        int s0 = chunkStart(sendChunk, n);
        int sn = chunkEnd(sendChunk, n) - s0;
        int r0 = chunkStart(recvChunk, n);
        int rn = chunkEnd(recvChunk, n) - r0;
        v.encode(s0, sn, out, 0);
        Future<?> sent = send(to, seq, op, out, 0, sn * v.elementBytes());
        channels[from].readExactly(seq, op, in, 0, rn * v.elementBytes());
        if (add) {
            v.add(r0, rn, in);
        } else {
            v.set(r0, rn, in);
        }
        await(sent);
    }

    private int chunkStart(int c, int n) {
        return (int) ((long) c * n / worldSize);
    }

    private int chunkEnd(int c, int n) {
        return (int) ((long) (c + 1) * n / worldSize);
    }

    /**
     * Recursive doubling over the largest power of two p ≤ N; member p+i first hands its array to member i and gets
     * the result back at the end. Partners add the same two arrays (IEEE addition commutes), so both hold the same
     * bits after each step, and the tree of additions depends on the ranks only.
     */
    private void recursiveDoubling(long seq, byte op, ReduceBuffer v) throws IOException {
        int n = v.length();
        int bytes = Math.multiplyExact(n, v.elementBytes());
        int p = Integer.highestOneBit(worldSize);
        byte[] out = new byte[bytes];
        byte[] in = new byte[bytes];
        if (rank >= p) {
            v.encode(0, n, out, 0);
            await(send(rank - p, seq, op, out, 0, bytes));
            channels[rank - p].readExactly(seq, op, in, 0, bytes);
            v.set(0, n, in);
            return;
        }
        if (rank + p < worldSize) {
            channels[rank + p].readExactly(seq, op, in, 0, bytes);
            v.add(0, n, in);
        }
        for (int mask = 1; mask < p; mask <<= 1) {
            int partner = rank ^ mask;
            v.encode(0, n, out, 0);
            Future<?> sent = send(partner, seq, op, out, 0, bytes);
            channels[partner].readExactly(seq, op, in, 0, bytes);
            v.add(0, n, in);
            await(sent);
        }
        if (rank + p < worldSize) {
            v.encode(0, n, out, 0);
            await(send(rank + p, seq, op, out, 0, bytes));
        }
    }

    // ---- plumbing -------------------------------------------------------------------------------------------

    private interface Exchange<T> {
        T run() throws IOException;
    }

    private long begin() {
        if (broken) {
            throw new CollectiveException(self + ": an earlier exchange failed and closed the connections");
        }
        return sequence++;
    }

    private <T> T run(long seq, String what, Exchange<T> body) {
        try {
            return body.run();
        } catch (IOException e) {
            fail();
            throw new CollectiveException(self + ": exchange " + seq + " (" + what + ") failed: " + e, e);
        } catch (RuntimeException e) {
            fail();
            throw e;
        }
    }

    private void fail() {
        broken = true;
        heartbeats.shutdownNow();
        closeAll(peers);
    }

    private Future<?> send(int peer, long seq, byte op, byte[] payload, int off, int len) {
        FrameChannel channel = channels[peer];
        Socket socket = peers[peer];
        return senders.submit(() -> {
            guarded(socket, millis(options.timeout), self, peer, () -> {
                channel.write(seq, op, payload, off, len);
                return null;
            });
            return null;
        });
    }

    private void await(Future<?> f) {
        try {
            f.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new CollectiveException(self + ": interrupted while sending", e);
        } catch (ExecutionException e) {
            Throwable c = e.getCause();
            if (c instanceof CollectiveException ce) {
                throw ce;
            }
            throw new CollectiveException(self + ": sending failed: " + c, c);
        }
    }

    private void awaitAll(List<Future<?>> sends) {
        for (Future<?> f : sends) {
            await(f);
        }
    }

    /** Runs a write; when it has not finished after {@code millis}, closes the socket, which ends it. */
    static <T> T guarded(Socket socket, long millis, String self, int peer, Exchange<T> write) throws IOException {
        AtomicBoolean fired = new AtomicBoolean();
        ScheduledFuture<?> alarm = WATCHDOG.schedule(() -> {
            fired.set(true);
            closeQuietly(socket);
        }, millis, TimeUnit.MILLISECONDS);
        try {
            return write.run();
        } catch (IOException | RuntimeException e) {
            if (fired.get()) {
                throw new CollectiveException(self + ": writing to " + (peer < 0 ? "a connecting peer" : "rank " + peer)
                        + " did not finish within " + millis + " ms (the peer does not read); connection closed", e);
            }
            throw e;
        } finally {
            alarm.cancel(false);
        }
    }

    /** The handshake's writes, each bounded by the watchdog like the frames'. */
    private static final class GuardedOutput extends OutputStream {
        private final Socket socket;
        private final OutputStream out;
        private final long millis;
        private final String self;
        private final int peer;

        GuardedOutput(Socket socket, long millis, String self, int peer) throws IOException {
            this.socket = socket;
            this.out = socket.getOutputStream();
            this.millis = millis;
            this.self = self;
            this.peer = peer;
        }

        @Override
        public void write(int b) throws IOException {
            write(new byte[]{(byte) b}, 0, 1);
        }

        @Override
        public void write(byte[] b, int off, int len) throws IOException {
            guarded(socket, millis, self, peer, () -> {
                out.write(b, off, len);
                return null;
            });
        }

        @Override
        public void flush() throws IOException {
            out.flush();
        }
    }

    private static ScheduledThreadPoolExecutor watchdog() {
        ScheduledThreadPoolExecutor w = new ScheduledThreadPoolExecutor(1, r -> {
            Thread t = new Thread(r, "kiln-collective-watchdog");
            t.setDaemon(true);
            return t;
        });
        w.setRemoveOnCancelPolicy(true);
        return w;
    }

    private static int millis(Duration d) {
        return (int) Math.max(1, Math.min(Integer.MAX_VALUE, d.toMillis()));
    }

    private static int remainingMillis(long deadline, String self, String what) {
        long left = (deadline - System.nanoTime()) / 1_000_000;
        if (left <= 0) {
            throw new CollectiveException(self + ": the connect timeout passed before " + what + " was connected");
        }
        return (int) Math.min(Integer.MAX_VALUE, left);
    }

    @Override
    public void close() {
        broken = true;
        senders.shutdownNow();
        heartbeats.shutdownNow();
        closeAll(peers);
    }

    private static void closeAll(Socket[] sockets) {
        for (Socket s : sockets) {
            closeQuietly(s);
        }
    }

    private static void closeQuietly(Socket s) {
        if (s != null) {
            try {
                s.close();
            } catch (IOException ignored) {
                // closing: nothing left to lose
            }
        }
    }

    @Override
    public String toString() {
        return "SocketCollective(rank " + rank + " of " + worldSize + ", " + options.algorithm
                + (options.encrypt ? ", AES-GCM" : "") + ")";
    }
}
