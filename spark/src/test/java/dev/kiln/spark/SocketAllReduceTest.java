package dev.kiln.spark;

import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The ring and recursive doubling against the mesh, on threads over loopback sockets: every member ends with the
 * same bits, runs with random delays give the same bits again, and the values stay within the rounding bound of the
 * mesh's double-precision rank-order mean (the same bits with two members).
 */
class SocketAllReduceTest {

    private static final Duration TIMEOUT = Duration.ofSeconds(30);

    /** Member r's values: mixed signs and magnitudes, so that the order of the additions shows in the bits. */
    static float[] input(int rank, int n, long seed) {
        SplittableRandom random = new SplittableRandom(seed * 1_000 + rank);
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) ((random.nextDouble() * 2 - 1) * Math.pow(10, random.nextInt(-3, 4)));
        }
        return v;
    }

    private static List<float[]> mean(int world, int n, SocketCollective.Options options, long seed,
                                      boolean randomDelays) throws Exception {
        return SocketCollectiveTest.onMembers(world, options, c -> {
            float[] v = input(c.rank(), n, seed);
            if (randomDelays) {
                try {
                    Thread.sleep(new SplittableRandom(System.nanoTime() + c.rank()).nextInt(40));
                } catch (InterruptedException e) {
                    throw new IllegalStateException(e);
                }
            }
            c.allReduceMean(v);
            return v;
        });
    }

    private static SocketCollective.Options options(SocketCollective.Algorithm a) {
        return SocketCollective.Options.of(TIMEOUT).algorithm(a);
    }

    private static void assertSameBitsOnEveryMember(List<float[]> results, String what) {
        for (int r = 1; r < results.size(); r++) {
            assertArrayEquals(results.get(0), results.get(r), what + ": rank " + r + " differs from rank 0");
        }
    }

    @Test
    void ringAndDoublingGiveEveryMemberTheSameBitsAtEveryWorldSize() throws Exception {
        for (int world : new int[]{2, 3, 5, 8}) {
            for (SocketCollective.Algorithm a : new SocketCollective.Algorithm[]{SocketCollective.Algorithm.RING,
                    SocketCollective.Algorithm.AUTO}) {
                // 1001 elements: chunks of unequal size; AUTO takes recursive doubling at this size
                List<float[]> results = mean(world, 1001, options(a), 7, false);
                assertSameBitsOnEveryMember(results, a + " with " + world + " members");
            }
        }
    }

    @Test
    void randomDelaysChangeNoBit() throws Exception {
        for (int world : new int[]{3, 6}) {
            for (SocketCollective.Algorithm a : new SocketCollective.Algorithm[]{SocketCollective.Algorithm.RING,
                    SocketCollective.Algorithm.AUTO}) {
                float[] first = mean(world, 4099, options(a), 11, false).get(0);
                for (int run = 0; run < 3; run++) {
                    List<float[]> again = mean(world, 4099, options(a), 11, true);
                    assertSameBitsOnEveryMember(again, a + " run " + run);
                    assertArrayEquals(first, again.get(0), a + " with " + world + " members, run " + run
                            + " with random delays");
                }
            }
        }
    }

    @Test
    void twoMembersGiveTheMeshBitsEveryWay() throws Exception {
        float[] mesh = mean(2, 3000, options(SocketCollective.Algorithm.MESH), 3, false).get(0);
        assertArrayEquals(mesh, mean(2, 3000, options(SocketCollective.Algorithm.RING), 3, false).get(0), "ring");
        assertArrayEquals(mesh, mean(2, 3000, options(SocketCollective.Algorithm.AUTO), 3, false).get(0), "doubling");
    }

    /**
     * N divisions and N−1 float additions, each rounded (relative error at most u = 2^-24), against the mesh's
     * exact-then-rounded mean: |ring − mesh| ≤ u·Σ|x_r| + 2u·|mesh|.
     */
    @Test
    void ringAndDoublingStayWithinTheRoundingBoundOfTheMesh() throws Exception {
        double u = Math.ulp(1.0f) / 2;
        for (int world : new int[]{3, 5, 8}) {
            int n = 2053;
            float[] mesh = mean(world, n, options(SocketCollective.Algorithm.MESH), 5, false).get(0);
            for (SocketCollective.Algorithm a : new SocketCollective.Algorithm[]{SocketCollective.Algorithm.RING,
                    SocketCollective.Algorithm.AUTO}) {
                float[] other = mean(world, n, options(a), 5, false).get(0);
                int differ = 0;
                for (int i = 0; i < n; i++) {
                    double abs = 0;
                    for (int r = 0; r < world; r++) {
                        abs += Math.abs(input(r, n, 5)[i]);
                    }
                    double bound = u * abs + 2 * u * Math.abs(mesh[i]);
                    assertTrue(Math.abs(other[i] - mesh[i]) <= bound, a + " with " + world + " members, element "
                            + i + ": " + other[i] + " vs mesh " + mesh[i] + ", bound " + bound);
                    differ += other[i] != mesh[i] ? 1 : 0;
                }
                // the bound is not vacuous: the summation order does show in some bits
                assertTrue(differ > 0, a + " with " + world + " members: no element differs from the mesh");
            }
        }
    }

    @Test
    void aMeanOfValuesNearTheFloatRangeDoesNotOverflow() throws Exception {
        for (SocketCollective.Algorithm a : SocketCollective.Algorithm.values()) {
            for (int n : new int[]{8, 200_000}) {   // recursive doubling and the ring under AUTO
                List<float[]> results = SocketCollectiveTest.onMembers(3, options(a), c -> {
                    float[] v = new float[n];
                    java.util.Arrays.fill(v, c.rank() == 2 ? -Float.MAX_VALUE : Float.MAX_VALUE);
                    c.allReduceMean(v);
                    return v;
                });
                float want = (float) (Float.MAX_VALUE / 3.0);
                for (float[] r : results) {
                    assertEquals(want, r[0], Math.ulp(want) * 2, a + " with " + n + " values");
                    assertEquals(want, r[n - 1], Math.ulp(want) * 2, a + " with " + n + " values");
                }
            }
        }
    }

    @Test
    void doubleSumsMatchTheRankOrderSumWithinRounding() throws Exception {
        int world = 5;
        int n = 40_000;   // 320 kB: the ring under AUTO
        for (SocketCollective.Algorithm a : SocketCollective.Algorithm.values()) {
            List<double[]> results = SocketCollectiveTest.onMembers(world, options(a), c -> {
                double[] v = new double[n];
                float[] f = input(c.rank(), n, 9);
                for (int i = 0; i < n; i++) {
                    v[i] = f[i];
                }
                c.allReduceSum(v);
                return v;
            });
            for (int r = 1; r < world; r++) {
                assertArrayEquals(results.get(0), results.get(r), a + ": rank " + r);
            }
            for (int i = 0; i < n; i += 997) {
                double want = 0;
                for (int r = 0; r < world; r++) {
                    want += input(r, n, 9)[i];
                }
                assertEquals(want, results.get(0)[i], Math.abs(want) * 1e-14 + 1e-300, a + " element " + i);
            }
        }
    }

    @Test
    void encryptedFramesGiveTheSameBitsAsPlaintext() throws Exception {
        int n = 300_000;   // 1.2 MB: several AES-GCM records per frame, the ring under AUTO
        float[] plain = mean(4, n, options(SocketCollective.Algorithm.AUTO), 13, false).get(0);
        List<float[]> sealed = mean(4, n, options(SocketCollective.Algorithm.AUTO).encrypt(true), 13, false);
        assertSameBitsOnEveryMember(sealed, "encrypted");
        assertArrayEquals(plain, sealed.get(0));
    }

    @Test
    void autoTakesDoublingForLeNetAndTheRingForResNet50AsTheModelSays() {
        long lenet = 62_158L * Float.BYTES;
        long resnet = 25_557_032L * Float.BYTES;
        int latency = SocketCollective.Options.DEFAULT_LATENCY_BYTES;
        for (int world : new int[]{2, 4, 8, 64, 512}) {
            assertTrue(SocketCollective.doublingIsFaster(lenet, world, latency), "LeNet at " + world);
        }
        for (int world : new int[]{3, 4, 8, 64, 512}) {
            assertTrue(!SocketCollective.doublingIsFaster(resnet, world, latency), "ResNet-50 at " + world);
        }
        // three members: recursive doubling needs 3 steps (one in, one exchange, one out), the ring 4 of a third
        assertTrue(!SocketCollective.doublingIsFaster(lenet, 3, latency));
        assertTrue(SocketCollective.doublingIsFaster(4_000, 3, latency));
        // the crossover grows with the number of members: 0.5 MB at 8, 1.9 MB at 64
        assertTrue(SocketCollective.doublingIsFaster(500_000, 8, latency));
        assertTrue(!SocketCollective.doublingIsFaster(600_000, 8, latency));
        assertTrue(SocketCollective.doublingIsFaster(1_800_000, 64, latency));
        assertTrue(!SocketCollective.doublingIsFaster(2_000_000, 64, latency));
    }

    @Test
    void bytesSentAreTheRingsLowerBoundPlusHeaders() throws Exception {
        int world = 4;
        int n = 100_000;
        List<Long> bytes = SocketCollectiveTest.onMembers(world, options(SocketCollective.Algorithm.RING), c -> {
            float[] v = input(c.rank(), n, 1);
            long before = c.bytesSent();
            c.allReduceMean(v);
            return c.bytesSent() - before;
        });
        long bound = 2L * (world - 1) * n * Float.BYTES / world;
        long headers = 2L * (world - 1) * FrameChannel.HEADER_BYTES;
        for (long b : bytes) {
            assertEquals(bound + headers, b, "bytes sent by one member " + bytes);
        }
        List<Long> mesh = SocketCollectiveTest.onMembers(world, options(SocketCollective.Algorithm.MESH), c -> {
            float[] v = input(c.rank(), n, 1);
            long before = c.bytesSent();
            c.allReduceMean(v);
            return c.bytesSent() - before;
        });
        assertEquals((world - 1) * ((long) n * Float.BYTES + FrameChannel.HEADER_BYTES), mesh.get(0));
        assertTrue(Arrays.stream(new long[]{mesh.get(0)}).allMatch(m -> m > bytes.get(0)));
    }
}
