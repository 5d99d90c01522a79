package dev.kiln.cuda;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Launch arguments are checked against the shipped PTX; these are the checks that need no GPU. */
class KernelSignaturesTest {

    private static final KernelSignatures SIGNATURES = new KernelSignatures();

    @BeforeAll
    static void load() {
        for (String m : CudaKernels.MODULES) {
            SIGNATURES.addModule(CudaKernels.ptx(m));
        }
    }

    @Test
    void readsScalarAndStructParameters() {
        assertEquals(List.of("u32", "u64", "u64", "u64", "u64", "b8[100]", "u64"), SIGNATURES.parameters("kiln_binary"));
        assertEquals(List.of("b8[1032]", "u64", "f32", "u64", "u64", "u32", "f32", "f32", "u32", "f32", "u32"),
                SIGNATURES.parameters("kiln_sgd_many"));
        assertNotNull(SIGNATURES.parameters("kiln_bn_inference_activation"));
        assertNotNull(SIGNATURES.parameters("kiln_bias_activation"));
    }

    @Test
    void sgdManyTableAsCudaBackendBuildsIt() {
        // CudaBackend.sgdStepMany: long[4 * SGD_MAX_TENSORS + 1], five pointers as Long, rate and hyper-parameters
        long[] table = new long[4 * CudaBackend.SGD_MAX_TENSORS + 1];
        assertDoesNotThrow(() -> SIGNATURES.check("kiln_sgd_many", new Object[] {table, 0L, 0.1f, 0L, 0L, 1, 0.9f, 1f, 0,
                0f, 0}));
        long[] wrong = new long[4 * CudaBackend.SGD_MAX_TENSORS];
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> SIGNATURES.check("kiln_sgd_many", new Object[] {wrong, 0L, 0.1f, 0L, 0L, 1, 0.9f, 1f, 0, 0f, 0}));
        assertTrue(e.getMessage().contains("parameter 0 is .b8[1032]") && e.getMessage().contains("1024 bytes"), e.getMessage());
    }

    @Test
    void broadcastStructMatchesTheKernels() {
        int[] g = CudaBackend.broadcastStruct(new int[] {2, 3}, new int[] {2, 1}, new int[] {1, 3});
        assertDoesNotThrow(() -> SIGNATURES.check("kiln_binary", new Object[] {0, null, null, null, 6L, g, null}));
    }

    @Test
    void typeAndCountMismatchesAreNamed() {
        // bias activation: (act, n, channels, inner, x, bias, y, error) - an int where a float goes, a missing argument
        IllegalArgumentException type = assertThrows(IllegalArgumentException.class,
                () -> SIGNATURES.check("kiln_bias_activation", new Object[] {0, 6L, 3, 1.5f, null, null, null, null}));
        assertTrue(type.getMessage().contains("parameter 3 is .u32") && type.getMessage().contains("Float 1.5"),
                type.getMessage());
        IllegalArgumentException count = assertThrows(IllegalArgumentException.class,
                () -> SIGNATURES.check("kiln_bias_activation", new Object[] {0, 6L, 3, 2, null, null, null}));
        assertTrue(count.getMessage().contains("takes 8 parameters"), count.getMessage());
        assertThrows(IllegalArgumentException.class, () -> SIGNATURES.check("kiln_no_such_kernel", new Object[0]));
    }
}
