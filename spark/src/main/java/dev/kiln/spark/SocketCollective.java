package dev.kiln.spark;

import dev.kiln.distributed.Collective;
import dev.kiln.distributed.CollectiveException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * A {@link Collective} over direct TCP connections between the members (a full mesh, fine for the handful of
 * tasks of a data-parallel job), after a rendezvous through a slower collective that every member already shares:
 * in Spark, {@link BarrierCollective}, whose {@code allGather} passes through the driver and, in Spark 4.0,
 * polls for the answer once a second — about one second per exchange, too slow for an exchange per layer and step.
 * This is how the usual distributed trainers on Spark work too: barrier mode for the rendezvous, their own
 * transport for the steps.
 *
 * <p>Each member listens on an ephemeral port of {@code host} (its executor's address), announces
 * {@code host:port} through the rendezvous, connects to every lower rank and accepts every higher one. Each
 * exchange writes the local bytes to all peers on a sender thread and reads theirs; frames carry a sequence
 * number that guards the framing. A peer that closed or died, or stays silent longer than the timeout, fails the
 * exchange with a {@link CollectiveException} naming both ranks instead of hanging it. Close it to release the
 * sockets.
 */
public final class SocketCollective implements Collective, AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(SocketCollective.class);

    private final int rank;
    private final int worldSize;
    private final Socket[] peers;
    private final DataInputStream[] in;
    private final DataOutputStream[] out;
    private final ExecutorService senders;
    private long sequence;

    private SocketCollective(int rank, int worldSize, Socket[] peers) throws IOException {
        this.rank = rank;
        this.worldSize = worldSize;
        this.peers = peers;
        this.in = new DataInputStream[worldSize];
        this.out = new DataOutputStream[worldSize];
        for (int r = 0; r < worldSize; r++) {
            if (r != rank) {
                peers[r].setTcpNoDelay(true);
                in[r] = new DataInputStream(new BufferedInputStream(peers[r].getInputStream(), 1 << 16));
                out[r] = new DataOutputStream(new BufferedOutputStream(peers[r].getOutputStream(), 1 << 16));
            }
        }
        this.senders = Executors.newFixedThreadPool(Math.max(1, worldSize - 1), r -> {
            Thread t = new Thread(r, "kiln-collective-send-" + rank);
            t.setDaemon(true);
            return t;
        });
    }

    /**
     * Connects the members of {@code rendezvous} (which must have the same ranks) over TCP.
     *
     * @param host    this member's address as the others reach it; the listening socket binds to it
     * @param timeout for connecting and for every later read
     */
    public static SocketCollective connect(Collective rendezvous, String host, Duration timeout) {
        int rank = rendezvous.rank();
        int world = rendezvous.worldSize();
        Socket[] peers = new Socket[world];
        try (ServerSocket server = new ServerSocket()) {
            server.bind(new InetSocketAddress(InetAddress.getByName(host), 0), world);
            server.setSoTimeout((int) Math.min(Integer.MAX_VALUE, timeout.toMillis()));
            String me = host + ":" + server.getLocalPort();
            byte[][] all = rendezvous.allGather(me.getBytes(StandardCharsets.UTF_8));
            // connect to lower ranks, announcing our rank; accept higher ranks
            for (int r = 0; r < rank; r++) {
                String addr = new String(all[r], StandardCharsets.UTF_8);
                int colon = addr.lastIndexOf(':');
                Socket s = new Socket();
                s.connect(new InetSocketAddress(addr.substring(0, colon), Integer.parseInt(addr.substring(colon + 1))),
                        (int) Math.min(Integer.MAX_VALUE, timeout.toMillis()));
                new DataOutputStream(s.getOutputStream()).writeInt(rank);
                peers[r] = s;
            }
            for (int i = rank + 1; i < world; i++) {
                Socket s = server.accept();
                int peer = new DataInputStream(s.getInputStream()).readInt();
                if (peer <= rank || peer >= world || peers[peer] != null) {
                    s.close();
                    throw new CollectiveException("rank " + rank + ": unexpected connection announcing rank " + peer);
                }
                peers[peer] = s;
            }
            for (int r = 0; r < world; r++) {
                if (r != rank) {
                    peers[r].setSoTimeout((int) Math.min(Integer.MAX_VALUE, timeout.toMillis()));
                }
            }
            LOG.debug("rank {} of {} connected at {}", rank, world, me);
            return new SocketCollective(rank, world, peers);
        } catch (IOException e) {
            closeAll(peers);
            throw new CollectiveException("rank " + rank + " of " + world + ": cannot connect the members over TCP ("
                    + e.getMessage() + ")", e);
        } catch (RuntimeException e) {
            closeAll(peers);
            throw e;
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

    @Override
    public byte[][] allGather(byte[] local) {
        long seq = sequence++;
        byte[][] result = new byte[worldSize][];
        result[rank] = local.clone();
        List<Future<?>> sends = new ArrayList<>(worldSize - 1);
        for (int r = 0; r < worldSize; r++) {
            if (r == rank) {
                continue;
            }
            DataOutputStream o = out[r];
            int peer = r;
            sends.add(senders.submit(() -> {
                try {
                    o.writeLong(seq);
                    o.writeInt(local.length);
                    o.write(local);
                    o.flush();
                } catch (IOException e) {
                    throw new CollectiveException("rank " + rank + ": sending to rank " + peer + " failed: "
                            + e.getMessage(), e);
                }
                return null;
            }));
        }
        try {
            for (int r = 0; r < worldSize; r++) {
                if (r == rank) {
                    continue;
                }
                long theirs;
                try {
                    theirs = in[r].readLong();
                } catch (java.io.EOFException e) {
                    throw new CollectiveException("rank " + rank + " of " + worldSize + ": exchange " + seq
                            + ": rank " + r + " closed its connection (it failed, or made fewer calls)", e);
                }
                if (theirs != seq) {
                    throw new CollectiveException("rank " + rank + ": rank " + r + " is at exchange " + theirs
                            + ", this member at " + seq + " (the stream is out of step)");
                }
                int n = in[r].readInt();
                if (n < 0) {
                    throw new CollectiveException("rank " + rank + ": rank " + r + " sent a frame of " + n + " bytes");
                }
                byte[] data = new byte[n];
                in[r].readFully(data);
                result[r] = data;
            }
            for (Future<?> f : sends) {
                f.get();
            }
        } catch (IOException e) {
            throw new CollectiveException("rank " + rank + " of " + worldSize + ": exchange " + seq + " failed: " + e, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new CollectiveException("rank " + rank + ": interrupted in exchange " + seq, e);
        } catch (java.util.concurrent.ExecutionException e) {
            throw e.getCause() instanceof CollectiveException c ? c
                    : new CollectiveException("rank " + rank + ": exchange " + seq + " failed", e.getCause());
        }
        return result;
    }

    @Override
    public void close() {
        senders.shutdownNow();
        closeAll(peers);
    }

    private static void closeAll(Socket[] sockets) {
        for (Socket s : sockets) {
            if (s != null) {
                try {
                    s.close();
                } catch (IOException ignored) {
                    // closing: nothing left to lose
                }
            }
        }
    }

    @Override
    public String toString() {
        return "SocketCollective(rank " + rank + " of " + worldSize + ")";
    }
}
