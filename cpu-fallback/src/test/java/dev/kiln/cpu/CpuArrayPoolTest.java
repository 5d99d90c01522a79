package dev.kiln.cpu;

import dev.kiln.backend.Activation;
import dev.kiln.backend.Buffer;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The backend's array pool and the vectorised sigmoid. */
class CpuArrayPoolTest {

    @Test
    void reusedArraysAreZeroedAndStaleBuffersStayClosed() {
        try (CpuBackend be = new CpuBackend(1)) {
            Buffer a = be.upload(new float[]{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}, 0, 20);
            float[] array = ((CpuBuffer) a).array();
            a.close();
            a.close(); // a second close must not give the array back twice
            Buffer b = be.allocate(20);
            Buffer c = be.allocate(20);
            assertSame(array, ((CpuBuffer) b).array(), "the closed buffer's array is reused");
            assertNotSame(((CpuBuffer) b).array(), ((CpuBuffer) c).array(), "one array is handed out once");
            float[] out = new float[20];
            be.download(b, 0, out, 0, 20);
            for (float v : out) {
                assertEquals(0f, v, "allocate promises zeros");
            }
            be.fill(b, 0, 20, 7f);
            assertTrue(a.isClosed());
            assertThrows(IllegalArgumentException.class, () -> be.download(a, 0, out, 0, 20),
                    "a stale buffer never sees the new owner's data");
        }
    }

    @Test
    void lengthsInUseDisplaceStaleOnesWhenThePoolIsFull() {
        ArrayPool pool = new ArrayPool(4L * 1000 * 10, 20);
        for (int i = 0; i < 10; i++) {
            pool.give(new float[1000]); // an earlier pass's length fills the pool
        }
        assertEquals(4L * 1000 * 10, pool.pooledBytes());
        pool.give(new float[700]);
        assertNull(pool.takeDirty(700), "a length in recent use is not displaced");
        for (int i = 0; i < 30; i++) {
            pool.give(new float[16]); // other work goes on; the first length goes stale
            pool.takeDirty(16);
        }
        // a step of another length: its arrays come back and must be there for the next step
        float[][] step = new float[6][];
        for (int round = 0; round < 3; round++) {
            java.util.Set<float[]> previous = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
            previous.addAll(java.util.Arrays.asList(step));
            for (int i = 0; i < step.length; i++) {
                float[] a = pool.takeDirty(700);
                if (round > 0) {
                    assertTrue(a != null && previous.contains(a),
                            "round " + round + ": array " + i + " of the length in use is reused");
                }
                step[i] = a != null ? a : new float[700];
            }
            for (float[] a : step) {
                pool.give(a);
            }
        }
        assertTrue(pool.pooledBytes() <= 4L * 1000 * 10, "the bound holds: " + pool.pooledBytes());
        assertTrue(pool.pooledBytes() >= 4L * 700 * 6, "the length in use is pooled: " + pool.pooledBytes());
        assertNotNull(pool.takeDirty(1000), "the stale length keeps what still fits");
    }

    @Test
    void uploadReusesAndOverwrites() {
        try (CpuBackend be = new CpuBackend(1)) {
            float[] src = new float[32];
            for (int i = 0; i < 32; i++) {
                src[i] = i;
            }
            Buffer a = be.upload(src, 0, 32);
            a.close();
            Buffer b = be.upload(src, 3, 29);
            Buffer c = be.upload(src, 0, 32);
            float[] out = new float[32];
            be.download(c, 0, out, 0, 32);
            for (int i = 0; i < 32; i++) {
                assertEquals(i, out[i]);
            }
            b.close();
            c.close();
        }
    }

    @Test
    void disabledPoolStillWorks() {
        String old = System.getProperty("kiln.cpu.poolBytes");
        System.setProperty("kiln.cpu.poolBytes", "0");
        try (CpuBackend be = new CpuBackend(1)) {
            Buffer a = be.allocate(64);
            float[] array = ((CpuBuffer) a).array();
            a.close();
            Buffer b = be.allocate(64);
            assertNotSame(array, ((CpuBuffer) b).array());
        } finally {
            if (old == null) {
                System.clearProperty("kiln.cpu.poolBytes");
            } else {
                System.setProperty("kiln.cpu.poolBytes", old);
            }
        }
    }

    @Test
    void sigmoidWithinFourUlpOfFloat64EverywhereAndExactTails() {
        try (CpuBackend be = new CpuBackend(2)) {
            int n = 200_000;
            float[] x = new float[n];
            Random r = new Random(3);
            for (int i = 0; i < n; i++) {
                x[i] = (r.nextFloat() - 0.5f) * (i % 7 == 0 ? 240f : 24f);
            }
            float[] special = {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, 0f, -0f, -1.5f, 7.9f, 8f, -90f};
            System.arraycopy(special, 0, x, 0, special.length);
            Buffer y = be.allocate(n);
            be.activationForward(Activation.SIGMOID, be.upload(x, 0, n), y, n);
            float[] out = new float[n];
            be.download(y, 0, out, 0, n);
            assertTrue(Float.isNaN(out[0]));
            for (int i = 1; i < n; i++) {
                double ref = 1.0 / (1.0 + Math.exp(-(double) x[i]));
                double err = Math.abs(out[i] - ref);
                assertTrue(err <= 4.5 * Math.ulp((float) ref) || err <= 1e-44,
                        "sigmoid(" + x[i] + ") = " + out[i] + ", float64 " + ref);
            }
        }
    }
}
