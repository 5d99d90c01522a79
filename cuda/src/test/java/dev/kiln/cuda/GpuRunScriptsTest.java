package dev.kiln.cuda;

import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The scripts of a GPU run: they parse, and result files are named after the GPU nvidia-smi reports. */
class GpuRunScriptsTest {

    @Test
    @DisplayName("bench/gpu-slug names results after the reported GPU: H100 and H200 alike")
    void gpuSlug() throws Exception {
        ToolSupport.requireSources();
        ToolSupport.requireTool("bash");
        Map<String, String> cases = Map.of("NVIDIA H100 80GB HBM3", "h100", "NVIDIA H200", "h200",
                "NVIDIA H100 NVL", "h100", "NVIDIA A100-SXM4-80GB", "a100", "NVIDIA GeForce RTX 4090", "geforce-rtx-4090",
                "", "no-gpu");
        for (Map.Entry<String, String> c : cases.entrySet()) {
            String got = ToolSupport.check(ToolSupport.ROOT, "bash", "bench/gpu-slug", c.getKey()).trim();
            assertEquals(c.getValue(), got, "name '" + c.getKey() + "'");
        }
    }

    @Test
    @DisplayName("bench/gpu-run, gpu-bundle, gpu-compare and gpu-slug are valid bash")
    void scriptsParse() throws Exception {
        ToolSupport.requireSources();
        ToolSupport.requireTool("bash");
        for (String s : List.of("gpu-run", "gpu-bundle", "gpu-compare", "gpu-slug")) {
            ToolSupport.check(ToolSupport.ROOT, "bash", "-n", Path.of("bench", s).toString());
        }
    }
}
