package dev.kiln.cuda;

import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The libcublas.so.12 compatibility shim, as far as it can be tested without a GPU: its symbol list matches what
 * JCublas2's native imports, it exports each at version libcublas.so.12 with SONAME libcublas.so.12, and a program
 * linked against it reaches the functions of a (fake) libcublas.so.13.
 */
class Cublas12ShimTest {

    private static final Path SHIM_DIR = ToolSupport.ROOT.resolve("cuda/src/main/native/cublas12_shim");

    private static Set<String> symbols() throws Exception {
        ToolSupport.requireSources();
        return Files.readAllLines(SHIM_DIR.resolve("symbols.txt")).stream()
                .filter(l -> !l.isBlank() && !l.startsWith("#")).collect(Collectors.toCollection(TreeSet::new));
    }

    private static Path shippedShim(Path tmp) throws Exception {
        try (InputStream in = Cublas12ShimTest.class.getResourceAsStream(CudaLibraries.SHIM_RESOURCE)) {
            assertNotNull(in, "the shim is not on the class path at " + CudaLibraries.SHIM_RESOURCE);
            Path p = tmp.resolve("libcublas.so.12");
            Files.copy(in, p);
            return p;
        }
    }

    @Test
    @DisplayName("symbols.txt lists exactly the libcublas.so.12 symbols libJCublas2 (from the natives jar) imports")
    void symbolListMatchesJCublas2(@TempDir Path tmp) throws Exception {
        ToolSupport.requireTool("nm");
        Path lib = tmp.resolve("libJCublas2.so");
        try (InputStream in = Cublas12ShimTest.class.getResourceAsStream("/lib/libJCublas2-12.6.0-linux-x86_64.so")) {
            assertNotNull(in, "libJCublas2-12.6.0-linux-x86_64.so not found in the jcublas-natives jar");
            Files.copy(in, lib);
        }
        Set<String> imported = ToolSupport.check(tmp, "nm", "-D", "--undefined-only", lib.toString()).lines()
                .map(String::trim).map(l -> l.substring(l.lastIndexOf(' ') + 1))
                .filter(s -> s.endsWith("@libcublas.so.12")).map(s -> s.substring(0, s.indexOf('@')))
                .collect(Collectors.toCollection(TreeSet::new));
        assertEquals(494, imported.size(), "JCublas2 12.6.0 imports 494 cuBLAS symbols");
        assertEquals(imported, symbols(), "regenerate with tools/gen-cublas12-shim-symbols.sh");
    }

    @Test
    @DisplayName("the shipped shim: SONAME libcublas.so.12, every symbol defined at version libcublas.so.12")
    void exportsEverySymbolVersioned(@TempDir Path tmp) throws Exception {
        ToolSupport.requireTool("readelf");
        ToolSupport.requireTool("nm");
        Path shim = shippedShim(tmp);
        String dyn = ToolSupport.check(tmp, "readelf", "-d", shim.toString());
        assertTrue(dyn.contains("Library soname: [libcublas.so.12]"), dyn);
        assertTrue(ToolSupport.check(tmp, "readelf", "-V", shim.toString()).contains("Name: libcublas.so.12"));
        Set<String> exported = ToolSupport.check(tmp, "nm", "-D", "--defined-only", shim.toString()).lines()
                .map(String::trim).map(l -> l.substring(l.lastIndexOf(' ') + 1))
                .filter(s -> s.endsWith("@@libcublas.so.12")).map(s -> s.substring(0, s.indexOf('@')))
                .collect(Collectors.toCollection(TreeSet::new));
        Set<String> missing = new TreeSet<>(symbols());
        missing.removeAll(exported);
        assertTrue(missing.isEmpty(), "not exported at libcublas.so.12: " + missing);
    }

    @Test
    @DisplayName("a program linked against the shim's versioned symbols reaches a fake libcublas.so.13")
    void forwardsToFakeCublas13(@TempDir Path tmp) throws Exception {
        ToolSupport.requireTool("gcc");
        Path shim = shippedShim(tmp);
        // The fake CUDA 13 cuBLAS: two functions with recognisable results, SONAME libcublas.so.13.
        Files.writeString(tmp.resolve("fake13.c"), """
                int cublasGetVersion_v2(void *handle, int *version) { (void) handle; *version = 130001; return 0; }
                int cublasSgemm_v2(void *h, int ta, int tb, int m, int n, int k, const float *alpha, const float *a,
                                   int lda, const float *b, int ldb, const float *beta, float *c, int ldc) {
                    (void) h; (void) ta; (void) tb; (void) lda; (void) ldb; (void) ldc;
                    c[0] = *alpha * a[0] * b[0] + *beta * c[0] + (float) (m + n + k);
                    return 7;
                }
                """);
        ToolSupport.check(tmp, "gcc", "-shared", "-fPIC", "-o", "libcublas.so.13", "-Wl,-soname,libcublas.so.13", "fake13.c");
        // The harness is linked against the shim, so its references carry version libcublas.so.12 like JCublas2's.
        Files.writeString(tmp.resolve("harness.c"), """
                #include <stdio.h>
                int cublasGetVersion_v2(void *handle, int *version);
                int cublasSgemm_v2(void *h, int ta, int tb, int m, int n, int k, const float *alpha, const float *a,
                                   int lda, const float *b, int ldb, const float *beta, float *c, int ldc);
                int cublasCreate_v2(void **handle);
                int main(void) {
                    int v = 0;
                    int s1 = cublasGetVersion_v2(0, &v);
                    float alpha = 2, a = 3, b = 4, beta = 1, c = 5;
                    int s2 = cublasSgemm_v2(0, 0, 0, 1, 2, 3, &alpha, &a, 1, &b, 1, &beta, &c, 1);
                    void *h = 0;
                    int s3 = cublasCreate_v2(&h); /* absent from the fake: the shim answers NOT_SUPPORTED (15) */
                    printf("version=%d s1=%d c=%g s2=%d s3=%d\\n", v, s1, c, s2, s3);
                    return 0;
                }
                """);
        ToolSupport.check(tmp, "gcc", "-o", "harness", "harness.c", shim.toString(), "-Wl,-rpath," + tmp);
        String undefined = ToolSupport.check(tmp, "nm", "-D", "--undefined-only", tmp.resolve("harness").toString());
        assertTrue(undefined.contains("cublasSgemm_v2@libcublas.so.12"), "harness must bind versioned symbols:\n" + undefined);
        ToolSupport.Result r = ToolSupport.run(tmp, List.of("env", "LD_LIBRARY_PATH=" + tmp, tmp.resolve("harness").toString()));
        assertEquals(0, r.exit(), r.out());
        assertEquals("version=130001 s1=0 c=35 s2=7 s3=15", r.out().trim());
    }
}
