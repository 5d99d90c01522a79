package dev.kiln.cuda;

import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** The shipped PTX: loadable by CUDA 12.0+ drivers, and exactly what tools/build-ptx.sh makes from the sources. */
class PtxResourcesTest {

    /** Every kernel CudaBackend launches. */
    private static final List<String> KERNELS = List.of("kiln_unary", "kiln_scalar", "kiln_binary", "kiln_binary_flat",
            "kiln_axpy", "kiln_broadcast_to", "kiln_sum_to", "kiln_argmax", "kiln_gather_rows",
            "kiln_softmax_xent_rows", "kiln_mean", "kiln_softmax_xent_backward", "kiln_bn_running_stats",
            "kiln_max_pool_backward", "kiln_sgd_many", "kiln_adam", "kiln_activation_forward",
            "kiln_activation_backward", "kiln_bias_activation", "kiln_bn_inference_activation", "kiln_copy_slice",
            "kiln_adaptive_avg_forward", "kiln_adaptive_avg_backward", "kiln_adaptive_max_forward",
            "kiln_adaptive_max_backward", "kiln_upsample_nearest_forward", "kiln_upsample_nearest_backward");

    private static String shipped(String module) {
        return new String(CudaKernels.ptx(module), 0, CudaKernels.ptx(module).length - 1, StandardCharsets.UTF_8);
    }

    @Test
    @DisplayName("every shipped module declares PTX ISA 8.0 and sm_75, and every launched kernel is an entry")
    void headerAndEntries() {
        StringBuilder all = new StringBuilder();
        for (String m : CudaKernels.MODULES) {
            String ptx = shipped(m);
            assertTrue(ptx.contains("\n.version 8.0\n"), m + ".ptx must declare .version 8.0 (CUDA 12.0 drivers)");
            assertTrue(ptx.contains("\n.target sm_75\n"), m + ".ptx must target sm_75");
            all.append(ptx);
        }
        for (String k : KERNELS) {
            assertTrue(all.toString().contains(".entry " + k + "("), "no .entry " + k + " in the shipped PTX");
        }
    }

    @Test
    @DisplayName("every kernel name in the backend's Java sources is in the list above, hence an entry of the shipped PTX")
    void launchedKernelsAreListed() throws Exception {
        ToolSupport.requireSources();
        java.util.Set<String> launched = new java.util.TreeSet<>();
        try (java.util.stream.Stream<Path> files = Files.list(ToolSupport.ROOT.resolve("cuda/src/main/java/dev/kiln/cuda"))) {
            for (Path f : files.toList()) {
                java.util.regex.Matcher m = java.util.regex.Pattern.compile("\"(kiln_[a-z_]+)\"").matcher(Files.readString(f));
                while (m.find()) {
                    launched.add(m.group(1));
                }
            }
        }
        assertTrue(launched.size() >= KERNELS.size() / 2, "found only " + launched);
        assertTrue(KERNELS.containsAll(launched), "launched but not listed: " + launched);
    }

    @Test
    @DisplayName("ptxas --gpu-name sm_75 accepts the shipped PTX (nothing newer than ISA 8.0 / sm_75 is used)")
    void ptxasAccepts(@TempDir Path tmp) throws Exception {
        ToolSupport.requireTool("ptxas");
        for (String m : CudaKernels.MODULES) {
            Path ptx = tmp.resolve(m + ".ptx");
            Files.writeString(ptx, shipped(m));
            ToolSupport.check(tmp, "ptxas", "--gpu-name", "sm_75", "-o", tmp.resolve(m + ".cubin").toString(), ptx.toString());
            assertTrue(Files.size(tmp.resolve(m + ".cubin")) > 0);
        }
    }

    @Test
    @DisplayName("the shipped PTX equals what tools/build-ptx.sh produces from src/main/cuda (nvcc 13.0)")
    void upToDate(@TempDir Path tmp) throws Exception {
        ToolSupport.requireTool("nvcc");
        ToolSupport.requireSources();
        ToolSupport.Result v = ToolSupport.run(tmp, List.of("nvcc", "--version"));
        assumeTrue(v.out().contains("release 13.0"), "nvcc is not 13.0: " + v.out().trim());
        ToolSupport.check(ToolSupport.ROOT, "bash", "tools/build-ptx.sh", tmp.toString());
        for (String m : CudaKernels.MODULES) {
            assertEquals(Files.readString(tmp.resolve(m + ".ptx")), shipped(m),
                    m + ".ptx is stale: run tools/build-ptx.sh and commit the result");
        }
    }
}
