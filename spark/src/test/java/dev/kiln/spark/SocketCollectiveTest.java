package dev.kiln.spark;

import dev.kiln.distributed.Collective;
import dev.kiln.distributed.CollectiveException;
import dev.kiln.distributed.LocalCollectiveGroup;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The TCP collective on the loopback address, with threads as members and a thread group as rendezvous. */
class SocketCollectiveTest {

    private static <T> List<T> onMembers(int world, Function<SocketCollective, T> body) throws Exception {
        return onMembers(world, SocketCollective.Options.of(Duration.ofSeconds(20)), body);
    }

    static <T> List<T> onMembers(int world, SocketCollective.Options options, Function<SocketCollective, T> body)
            throws Exception {
        LocalCollectiveGroup rendezvous = new LocalCollectiveGroup(world, Duration.ofSeconds(60));
        ExecutorService pool = Executors.newFixedThreadPool(world);
        try {
            List<Future<T>> futures = new ArrayList<>();
            for (int r = 0; r < world; r++) {
                Collective member = rendezvous.member(r);
                futures.add(pool.submit(() -> {
                    try (SocketCollective c = SocketCollective.connect(member, "127.0.0.1", options)) {
                        return body.apply(c);
                    }
                }));
            }
            List<T> out = new ArrayList<>();
            for (Future<T> f : futures) {
                out.add(f.get());
            }
            return out;
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void threeMembersGatherInRankOrderAndReduceToTheSameBits() throws Exception {
        // the mesh sums in rank order in double, as the default methods do
        List<float[]> results = onMembers(3, SocketCollective.Options.of(Duration.ofSeconds(20))
                .algorithm(SocketCollective.Algorithm.MESH), c -> {
            byte[][] all = c.allGather(new byte[]{(byte) c.rank(), 7});
            for (int r = 0; r < 3; r++) {
                assertArrayEquals(new byte[]{(byte) r, 7}, all[r]);
            }
            float[] big = new float[300_000];   // larger than the socket buffers: sending must not block reading
            java.util.Arrays.fill(big, c.rank() + 0.1f);
            c.allReduceMean(big);
            float[] root = {c.rank() == 1 ? 42f : 0f};
            c.broadcast(root, 1);
            assertEquals(42f, root[0]);
            return new float[]{big[0], big[299_999]};
        });
        float want = (float) (((0 + 0.1f) + (double) (1 + 0.1f) + (2 + 0.1f)) / 3);
        for (float[] r : results) {
            assertArrayEquals(new float[]{want, want}, r);
        }
    }

    @Test
    void aMemberThatCallsMoreOftenFailsWhenTheOthersAreDone() throws Exception {
        List<String> errors = onMembers(2, c -> {
            try {
                c.allGather(new byte[2]);
                if (c.rank() == 0) {
                    c.allGather(new byte[3]);
                }
                return "no error";
            } catch (CollectiveException e) {
                return e.getMessage();
            }
        });
        assertTrue(errors.get(0).contains("exchange 1: rank 1 closed its connection"), errors.toString());
        assertEquals("no error", errors.get(1));
    }

    @Test
    void aMemberThatLeavesFailsTheOthersInsteadOfHangingThem() throws Exception {
        List<String> errors = onMembers(2, c -> {
            if (c.rank() == 1) {
                return "left";
            }
            CollectiveException e = assertThrows(CollectiveException.class, () -> c.allGather(new byte[]{1}));
            return e.getMessage();
        });
        assertTrue(errors.get(0).contains("rank 0 of 2"), errors.toString());
    }
}
