package dev.kiln.conformance;

import static dev.kiln.conformance.Inputs.narrow;
import static dev.kiln.conformance.Inputs.widen;
import static dev.kiln.conformance.Tolerance.ATOL;
import static dev.kiln.conformance.Tolerance.RTOL;
import static dev.kiln.conformance.Tolerance.SUM_COEFF;
import static dev.kiln.conformance.Tolerance.assertClose;
import static dev.kiln.conformance.Tolerance.assertExact;
import static dev.kiln.conformance.Tolerance.shape;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.backend.Activation;
import dev.kiln.backend.AdamHyper;
import dev.kiln.backend.Backend;
import dev.kiln.backend.BatchNormGeometry;
import dev.kiln.backend.BinaryOp;
import dev.kiln.backend.Buffer;
import dev.kiln.backend.ConvGeometry;
import dev.kiln.backend.PoolGeometry;
import dev.kiln.backend.ScalarOp;
import dev.kiln.backend.SgdHyper;
import dev.kiln.backend.UnaryOp;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.Consumer;
import java.util.stream.Stream;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeEach;
import dev.kiln.suites.TestBackends;
import org.junit.jupiter.params.Parameter;
import org.junit.jupiter.params.ParameterizedClass;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Named;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/** Conformance of memory: allocate, upload, download, write, copy, fill, gatherRows, synchronize; see {@link ConformanceSuite}. */
public class MemoryConformanceSuite extends ConformanceSuite {

    // ==================================================================================================== memory


    @Test
    @DisplayName("allocate: zeroed, right length, owned by this backend; close is idempotent")
    void allocate() {
        for (int n : new int[] {1, 7, 1000}) {
            Buffer buf = b.allocate(n);
            assertEquals(n, buf.length(), "allocate(" + n + ").length()");
            assertSame(b, buf.backend(), "allocate(" + n + ").backend()");
            assertFalse(buf.isClosed(), "allocate(" + n + ").isClosed() before close");
            float[] got = new float[n];
            b.download(buf, 0, got, 0, n);
            assertExact("allocate", new int[] {n}, got, new float[n]);
            buf.close();
            assertTrue(buf.isClosed(), "isClosed() after close");
            buf.close(); // closing twice is harmless
        }
    }

    @Test
    @DisplayName("upload and download with offsets")
    void uploadDownload() {
        float[] src = new Inputs(1).uniform(20, -5, 5);
        try (Scope s = scope()) {
            Buffer buf = b.upload(src, 3, 11);
            assertEquals(11, buf.length(), "upload(src, 3, 11).length()");
            assertExact("upload(src, offset 3, length 11)", new int[] {11}, s.down(buf), Arrays.copyOfRange(src, 3, 14));
            buf.close();
            Buffer whole = s.up(src);
            float[] dst = Inputs.filled(12, 42f);
            b.download(whole, 5, dst, 2, 7);
            float[] want = Inputs.filled(12, 42f);
            System.arraycopy(src, 5, want, 2, 7);
            assertExact("download(src offset 5, dst offset 2, length 7) (rest of dst untouched)", new int[] {12}, dst, want);
            b.download(whole, 19, dst, 11, 1);
            want[11] = src[19];
            assertExact("download(last element)", new int[] {12}, dst, want);
        }
    }

    @Test
    @DisplayName("write with offsets leaves the rest unchanged")
    void write() {
        Inputs in = new Inputs(2);
        float[] init = in.uniform(15, -1, 1);
        float[] host = in.uniform(10, -1, 1);
        try (Scope s = scope()) {
            Buffer buf = s.up(init);
            b.write(host, 4, buf, 6, 5);
            float[] want = init.clone();
            System.arraycopy(host, 4, want, 6, 5);
            assertExact("write(src offset 4, dst offset 6, length 5)", new int[] {15}, s.down(buf), want);
        }
    }

    @Test
    @DisplayName("copy with offsets, between buffers and within one buffer")
    void copy() {
        Inputs in = new Inputs(3);
        float[] a = in.uniform(13, -1, 1);
        float[] c = in.uniform(9, -1, 1);
        try (Scope s = scope()) {
            Buffer src = s.in(a);
            Buffer dst = s.up(c);
            b.copy(src, 2, dst, 3, 5);
            float[] want = c.clone();
            System.arraycopy(a, 2, want, 3, 5);
            assertExact("copy(src offset 2, dst offset 3, length 5)", new int[] {9}, s.down(dst), want);
            s.assertInputsUnchanged("copy");
            Buffer self = s.up(a);
            b.copy(self, 0, self, 8, 4); // disjoint ranges of one buffer
            float[] want2 = a.clone();
            System.arraycopy(a, 0, want2, 8, 4);
            assertExact("copy within one buffer [0,4) -> [8,12)", new int[] {13}, s.down(self), want2);
        }
    }

    @Test
    @DisplayName("fill with offsets leaves the rest unchanged")
    void fill() {
        float[] init = new Inputs(4).uniform(10, -1, 1);
        try (Scope s = scope()) {
            Buffer buf = s.up(init);
            b.fill(buf, 3, 4, -2.5f);
            float[] want = init.clone();
            Arrays.fill(want, 3, 7, -2.5f);
            assertExact("fill(offset 3, length 4, -2.5)", new int[] {10}, s.down(buf), want);
            b.fill(buf, 0, 10, 0f);
            assertExact("fill(whole buffer, 0)", new int[] {10}, s.down(buf), new float[10]);
        }
    }

    @ParameterizedTest(name = "rowLength {0}")
    @DisplayName("gatherRows: repeated and unordered rows")
    @org.junit.jupiter.params.provider.ValueSource(ints = {1, 5, 784})
    void gatherRows(int rowLength) {
        Inputs in = new Inputs(5 + rowLength);
        int srcRows = 9;
        float[] src = in.uniform(srcRows * rowLength, -1, 1);
        int[] rows = {8, 0, 3, 3, 7, 1, 8};
        try (Scope s = scope()) {
            Buffer sb = s.in(src);
            Buffer db = s.out((long) rows.length * rowLength);
            b.gatherRows(sb, rowLength, rows, db);
            float[] want = new float[rows.length * rowLength];
            for (int i = 0; i < rows.length; i++) {
                System.arraycopy(src, rows[i] * rowLength, want, i * rowLength, rowLength);
            }
            assertExact("gatherRows rows " + Arrays.toString(rows), new int[] {rows.length, rowLength}, s.down(db), want);
            s.assertInputsUnchanged("gatherRows");
        }
    }

    @Test
    @DisplayName("synchronize returns and name/description are set")
    void synchronizeAndNames() {
        b.synchronize();
        assertFalse(b.name() == null || b.name().isBlank(), "name()");
        assertFalse(b.description() == null || b.description().isBlank(), "description()");
    }
}
