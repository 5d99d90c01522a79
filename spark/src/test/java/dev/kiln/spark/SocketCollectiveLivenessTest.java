package dev.kiln.spark;

import dev.kiln.distributed.CollectiveException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Liveness on loopback: a member that goes silent with its sockets open (a dead host, a hung process) is named by
 * the others within the liveness timeout, far below the operation timeout; a member that is alive but slow between
 * exchanges keeps its connections through many liveness timeouts.
 */
class SocketCollectiveLivenessTest {

    private static final Duration TIMEOUT = Duration.ofSeconds(60);
    private static final Duration LIVENESS = Duration.ofSeconds(2);

    @Test
    @Timeout(value = 40, unit = TimeUnit.SECONDS)
    void aSilentPeerIsNamedWithinTheLivenessTimeout() throws Exception {
        SocketCollective.Options options = SocketCollective.Options.of(TIMEOUT).livenessTimeout(LIVENESS)
                .algorithm(SocketCollective.Algorithm.MESH);
        CountDownLatch othersDone = new CountDownLatch(2);
        List<String> outcomes = SocketCollectiveTest.onMembers(3, options, c -> {
            float[] v = {c.rank()};
            c.allReduceMean(v);
            if (c.rank() == 2) {
                // stops sending anything and never reads again, its sockets open until the others have failed
                c.suspendHeartbeatsForTest();
                try {
                    othersDone.await(30, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                return "silent";
            }
            long start = System.nanoTime();
            try {
                c.allReduceMean(v);
                return "no failure";
            } catch (CollectiveException e) {
                long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
                return ms + " ms: " + e.getMessage();
            } finally {
                othersDone.countDown();
            }
        });
        assertEquals("silent", outcomes.get(2));
        for (int r = 0; r < 2; r++) {
            String o = outcomes.get(r);
            assertTrue(o.contains("rank 2 sent nothing, not even a heartbeat, within the liveness timeout of 2000 ms"),
                    "rank " + r + ": " + o);
            long ms = Long.parseLong(o.substring(0, o.indexOf(' ')));
            // the silence began at most one heartbeat interval before this call; the margin is for a loaded machine
            assertTrue(ms >= 1_000 && ms < LIVENESS.toMillis() + 3_000, "rank " + r + " failed after " + o);
        }
    }

    @ParameterizedTest(name = "encrypted {0}")
    @ValueSource(booleans = {false, true})
    @Timeout(value = 40, unit = TimeUnit.SECONDS)
    void aSlowButAlivePeerKeepsItsConnections(boolean encrypted) throws Exception {
        Duration liveness = Duration.ofSeconds(1);
        SocketCollective.Options options = SocketCollective.Options.of(TIMEOUT).livenessTimeout(liveness)
                .encrypt(encrypted);
        List<float[]> results = SocketCollectiveTest.onMembers(3, options, c -> {
            float[] out = new float[2];
            for (int step = 0; step < 2; step++) {
                if (c.rank() == 2) {
                    try {
                        Thread.sleep(3 * liveness.toMillis() + 200);   // a long step: the others wait in the read
                    } catch (InterruptedException e) {
                        throw new IllegalStateException(e);
                    }
                }
                float[] v = {c.rank() + step};
                c.allReduceMean(v);
                out[step] = v[0];
            }
            return out;
        });
        for (float[] r : results) {
            assertArrayEquals(new float[]{1f, 2f}, r);
        }
    }
}
