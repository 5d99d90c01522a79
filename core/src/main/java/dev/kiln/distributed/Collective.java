package dev.kiln.distributed;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * A group of processes (or threads, or Spark barrier tasks) that exchange data in lock step: the one primitive is
 * {@link #allGather(byte[])}; reductions and broadcasts are built on it. Every member must make the same calls in
 * the same order, as with {@code torch.distributed}.
 *
 * <p>Reductions are deterministic and identical on every member, so all replicas of a model receive the same
 * bits. The default methods sum in rank order in double precision; an implementation may use another order (a
 * ring, a tree) as long as it is fixed by the ranks alone, never by timing, and every member ends with the same
 * bits (the Spark module's {@code SocketCollective} says what its algorithms sum in which order). Implementations:
 * {@link #single()} (one member), {@link LocalCollectiveGroup} (threads of one JVM, for tests and single-machine
 * runs) and the Spark module's barrier and socket collectives.
 */
public interface Collective {

    /** This member's index, 0 to {@code worldSize() - 1}. */
    int rank();

    int worldSize();

    /**
     * Sends {@code local} to every member and returns what each member sent, indexed by rank (this member's own
     * array included). Blocks until all members have called it.
     *
     * @throws CollectiveException when a member failed or the exchange timed out
     */
    byte[][] allGather(byte[] local);

    /** A group of one: every call returns its argument. */
    static Collective single() {
        return SingleCollective.INSTANCE;
    }

    /** {@link #allGather(byte[])} of float arrays (little-endian float32). */
    default float[][] allGatherFloats(float[] local) {
        byte[][] all = allGather(toBytes(local));
        float[][] out = new float[all.length][];
        for (int r = 0; r < all.length; r++) {
            out[r] = floatsOf(all[r]);
        }
        return out;
    }

    /** {@link #allGather(byte[])} of double arrays (little-endian float64). */
    default double[][] allGatherDoubles(double[] local) {
        ByteBuffer b = ByteBuffer.allocate(local.length * Double.BYTES).order(ByteOrder.LITTLE_ENDIAN);
        b.asDoubleBuffer().put(local);
        byte[][] all = allGather(b.array());
        double[][] out = new double[all.length][];
        for (int r = 0; r < all.length; r++) {
            out[r] = new double[all[r].length / Double.BYTES];
            ByteBuffer.wrap(all[r]).order(ByteOrder.LITTLE_ENDIAN).asDoubleBuffer().get(out[r]);
        }
        return out;
    }

    /**
     * Replaces {@code values} by the element-wise sum over all members (the default: summed in rank order; every
     * member gets the same bits whatever the implementation).
     */
    default void allReduceSum(double[] values) {
        double[][] all = allGatherDoubles(values);
        checkLengths(all, values.length, "allReduceSum");
        java.util.Arrays.fill(values, 0);
        for (double[] part : all) {
            for (int i = 0; i < values.length; i++) {
                values[i] += part[i];
            }
        }
    }

    /**
     * Replaces {@code values} by the element-wise mean over all members. The default sums in rank order in double,
     * divides by the world size and rounds to float once; an implementation that moves less data may sum float
     * partial sums in another fixed order (within a few units in the last place of this). Every member gets the
     * same bits.
     */
    default void allReduceMean(float[] values) {
        float[][] all = allGatherFloats(values);
        checkLengths(all, values.length, "allReduceMean");
        int world = all.length;
        for (int i = 0; i < values.length; i++) {
            double sum = 0;
            for (float[] part : all) {
                sum += part[i];
            }
            values[i] = (float) (sum / world);
        }
    }

    /** Replaces {@code values} on every member by the root's values (non-root members send nothing). */
    default void broadcast(float[] values, int root) {
        if (root < 0 || root >= worldSize()) {
            throw new IllegalArgumentException("broadcast: root " + root + " is not a rank of a group of " + worldSize());
        }
        byte[][] all = allGather(rank() == root ? toBytes(values) : new byte[0]);
        float[] fromRoot = floatsOf(all[root]);
        if (fromRoot.length != values.length) {
            throw new CollectiveException("broadcast: rank " + rank() + " expects " + values.length
                    + " values, root " + root + " sent " + fromRoot.length);
        }
        System.arraycopy(fromRoot, 0, values, 0, values.length);
    }

    /** Blocks until every member has reached the same call. */
    default void barrier() {
        allGather(new byte[0]);
    }

    private static void checkLengths(Object[] all, int expected, String op) {
        for (int r = 0; r < all.length; r++) {
            int len = all[r] instanceof float[] f ? f.length : ((double[]) all[r]).length;
            if (len != expected) {
                throw new CollectiveException(op + ": rank " + r + " sent " + len + " values, expected " + expected
                        + " (members must reduce arrays of the same length)");
            }
        }
    }

    static byte[] toBytes(float[] values) {
        ByteBuffer b = ByteBuffer.allocate(values.length * Float.BYTES).order(ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(values);
        return b.array();
    }

    static float[] floatsOf(byte[] bytes) {
        if (bytes.length % Float.BYTES != 0) {
            throw new CollectiveException("expected float32 data, got " + bytes.length + " bytes");
        }
        float[] out = new float[bytes.length / Float.BYTES];
        ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(out);
        return out;
    }
}
