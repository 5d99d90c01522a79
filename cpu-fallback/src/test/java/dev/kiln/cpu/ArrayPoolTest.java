package dev.kiln.cpu;

import dev.kiln.backend.Buffer;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ArrayPoolTest {

    @Test
    @DisplayName("a closed buffer's array is reused, zeroed, and the stale buffer stays closed")
    void reuse() {
        try (CpuBackend be = new CpuBackend(1, 1 << 20)) {
            CpuBuffer a = (CpuBuffer) be.upload(new float[]{1, 2, 3}, 0, 3);
            float[] array = a.array();
            a.close();
            CpuBuffer b = (CpuBuffer) be.allocate(3);
            assertSame(array, b.array(), "the freed array is reused");
            assertArrayEquals(new float[3], b.array(), "allocate() promises zeros");
            assertTrue(a.isClosed());
            assertThrows(IllegalArgumentException.class, a::array);
            a.close();
            Buffer c = be.allocate(3);
            assertTrue(c != b && ((CpuBuffer) c).array() != array, "closing twice must not return the array twice");
        }
    }

    @Test
    @DisplayName("the pool never holds more than its byte bound")
    void bounded() {
        ArrayPool pool = new ArrayPool(200);
        pool.give(new float[20]);
        pool.give(new float[20]);
        assertEquals(160, pool.pooledBytes());
        pool.give(new float[11]);
        assertEquals(160, pool.pooledBytes(), "a 44-byte array would exceed the 200-byte bound");
        assertEquals(20, pool.take(20).length);
        assertEquals(80, pool.pooledBytes());
    }
}
