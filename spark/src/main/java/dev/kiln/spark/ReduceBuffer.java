package dev.kiln.spark;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;

/**
 * The array a {@link SocketCollective} reduces, as the algorithms see it: ranges encoded to and decoded from
 * little-endian bytes, and partial sums added in.
 */
abstract class ReduceBuffer {

    abstract int length();

    abstract int elementBytes();

    /** Before the ring or the tree: what this member contributes (its values divided by N for a mean). */
    abstract void prepare();

    /** {@code count} elements from {@code from} into {@code dst} at {@code off}. */
    abstract void encode(int from, int count, byte[] dst, int off);

    /** Element i of the range becomes the incoming partial sum plus this member's value. */
    abstract void add(int from, int count, byte[] src);

    /** Element i of the range becomes the incoming (final) value. */
    abstract void set(int from, int count, byte[] src);

    /** Adds a whole encoded array into {@code sum} (the mesh's double-precision rank-order sum). */
    abstract void accumulate(byte[] src, double[] sum);

    /** Sets every element from the mesh's double-precision sum, rounded once. */
    abstract void finishFromSum(double[] sum);

    /** float32 values whose mean over {@code world} members is wanted. */
    static final class Floats extends ReduceBuffer {
        private final float[] v;
        private final int world;

        Floats(float[] v, int world) {
            this.v = v;
            this.world = world;
        }

        @Override
        int length() {
            return v.length;
        }

        @Override
        int elementBytes() {
            return Float.BYTES;
        }

        private static FloatBuffer view(byte[] b, int off, int count) {
            return ByteBuffer.wrap(b, off, count * Float.BYTES).slice().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer();
        }

        @Override
        void encode(int from, int count, byte[] dst, int off) {
            view(dst, off, count).put(v, from, count);
        }

        @Override
        void add(int from, int count, byte[] src) {
            FloatBuffer in = view(src, 0, count);
            for (int i = 0; i < count; i++) {
                v[from + i] = in.get(i) + v[from + i];
            }
        }

        @Override
        void set(int from, int count, byte[] src) {
            view(src, 0, count).get(v, from, count);
        }

        /**
         * Divides before summing, so that no partial sum can overflow where the mean is finite (|Σ x/N| ≤ max |x|);
         * for a power-of-two N the division is exact, and with two members the sum of the halves is the mesh's
         * correctly rounded mean.
         */
        @Override
        void prepare() {
            float w = world;
            for (int i = 0; i < v.length; i++) {
                v[i] = v[i] / w;
            }
        }

        @Override
        void accumulate(byte[] src, double[] sum) {
            FloatBuffer in = view(src, 0, v.length);
            for (int i = 0; i < sum.length; i++) {
                sum[i] += in.get(i);
            }
        }

        @Override
        void finishFromSum(double[] sum) {
            for (int i = 0; i < v.length; i++) {
                v[i] = (float) (sum[i] / world);
            }
        }
    }

    /** float64 values whose sum is wanted. */
    static final class Doubles extends ReduceBuffer {
        private final double[] v;

        Doubles(double[] v) {
            this.v = v;
        }

        @Override
        int length() {
            return v.length;
        }

        @Override
        int elementBytes() {
            return Double.BYTES;
        }

        private static DoubleBuffer view(byte[] b, int off, int count) {
            return ByteBuffer.wrap(b, off, count * Double.BYTES).slice().order(ByteOrder.LITTLE_ENDIAN)
                    .asDoubleBuffer();
        }

        @Override
        void encode(int from, int count, byte[] dst, int off) {
            view(dst, off, count).put(v, from, count);
        }

        @Override
        void add(int from, int count, byte[] src) {
            DoubleBuffer in = view(src, 0, count);
            for (int i = 0; i < count; i++) {
                v[from + i] = in.get(i) + v[from + i];
            }
        }

        @Override
        void set(int from, int count, byte[] src) {
            view(src, 0, count).get(v, from, count);
        }

        @Override
        void prepare() {
            // a sum's contributions are the values themselves
        }

        @Override
        void accumulate(byte[] src, double[] sum) {
            DoubleBuffer in = view(src, 0, v.length);
            for (int i = 0; i < sum.length; i++) {
                sum[i] += in.get(i);
            }
        }

        @Override
        void finishFromSum(double[] sum) {
            System.arraycopy(sum, 0, v, 0, v.length);
        }
    }
}
