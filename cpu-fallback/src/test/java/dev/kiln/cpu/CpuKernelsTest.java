package dev.kiln.cpu;

import dev.kiln.backend.Buffer;
import dev.kiln.backend.ConvGeometry;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What only the CPU backend promises: results independent of its thread count, and its provider's options. The ops
 * themselves are checked for every backend by the conformance suite (core's test-jar, dev.kiln.conformance).
 */
class CpuKernelsTest {

    private final CpuBackend be = new CpuBackend(2);
    private final Random rnd = new Random(7);

    @AfterEach
    void close() {
        be.close();
    }

    @Test
    void convBackwardWeightDoesNotDependOnThreadCount() {
        ConvGeometry g = new ConvGeometry(37, 3, 12, 12, 4, 3, 3, 1, 1, 1, 1, 1, 1);
        float[] x = SgemmTest.random(rnd, (int) g.inputLength());
        float[] dy = SgemmTest.random(rnd, (int) g.outputLength());
        try (CpuBackend one = new CpuBackend(1)) {
            Buffer dw1 = one.allocate(g.weightLength());
            one.conv2dBackwardWeight(g, one.upload(x, 0, x.length), one.upload(dy, 0, dy.length), dw1);
            Buffer dw2 = be.allocate(g.weightLength());
            be.conv2dBackwardWeight(g, be.upload(x, 0, x.length), be.upload(dy, 0, dy.length), dw2);
            float[] a = new float[(int) g.weightLength()];
            float[] b = new float[(int) g.weightLength()];
            one.download(dw1, 0, a, 0, a.length);
            be.download(dw2, 0, b, 0, b.length);
            assertArrayEquals(a, b);
        }
    }

    @Test
    void providerResolvesThreads() {
        CpuBackendProvider p = new CpuBackendProvider();
        assertEquals("cpu", p.name());
        assertEquals(0, p.priority());
        assertTrue(p.unavailableReason().isEmpty());
        try (CpuBackend b = (CpuBackend) p.create(Map.of("threads", "3"))) {
            assertEquals(3, b.threads());
            assertTrue(b.description().startsWith("cpu (3 threads, "), b.description());
        }
        assertThrows(IllegalArgumentException.class, () -> p.create(Map.of("threads", "zero")));
        assertTrue(java.util.ServiceLoader.load(dev.kiln.backend.BackendProvider.class).stream()
                .anyMatch(pr -> pr.type() == CpuBackendProvider.class));
    }
}
