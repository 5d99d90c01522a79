package dev.kiln.cuda;

import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * No {@code __restrict__} on the inputs of a kernel that may run in place: with a const restrict-qualified input the
 * compiler may load through the non-coherent cache ({@code ld.global.nc}), undefined when the kernel writes the same
 * memory. Checked in the sources and, where it matters on a GPU, in the shipped PTX.
 */
class KernelRestrictTest {

    /** Kernels whose output may be an input (the Backend SPI says so) or that update memory they read. */
    private static final Map<String, String> IN_PLACE = new TreeMap<>(Map.ofEntries(
            Map.entry("kiln_unary", "unary: y may be x"),
            Map.entry("kiln_scalar", "scalar: y may be x"),
            Map.entry("kiln_binary", "binary: out may alias a or b"),
            Map.entry("kiln_binary_flat", "binary: out may alias a or b"),
            Map.entry("kiln_axpy", "axpy: y += alpha * x"),
            Map.entry("kiln_activation_forward", "activationForward: y may be x"),
            Map.entry("kiln_activation_backward", "activationBackward: dx may be dy"),
            Map.entry("kiln_bias_activation", "biasActivation: y may be x"),
            Map.entry("kiln_bn_inference_activation", "batchNormForwardInference: y may be x"),
            Map.entry("kiln_bn_running_stats", "updates the running statistics in place"),
            Map.entry("kiln_sgd_many", "updates parameters and momentum in place"),
            Map.entry("kiln_adam", "updates parameters and moments in place")));

    private static final Pattern KERNEL = Pattern.compile("extern \"C\" __global__ void (\\w+)\\(([^)]*)\\)");

    @Test
    @DisplayName("the sources declare no __restrict__ parameter on a kernel that may run in place")
    void sources() throws IOException {
        ToolSupport.requireSources();
        List<String> found = new ArrayList<>();
        List<String> bad = new ArrayList<>();
        for (String m : CudaKernels.MODULES) {
            String src = Files.readString(ToolSupport.ROOT.resolve("cuda/src/main/cuda/" + m + ".cu"));
            Matcher k = KERNEL.matcher(src);
            while (k.find()) {
                if (IN_PLACE.containsKey(k.group(1))) {
                    found.add(k.group(1));
                    if (k.group(2).contains("__restrict__")) {
                        bad.add(k.group(1) + " (" + IN_PLACE.get(k.group(1)) + ")");
                    }
                }
            }
            Matcher sgd = Pattern.compile("void kiln_sgd_element\\(([^)]*)\\)").matcher(src);
            if (sgd.find() && sgd.group(1).contains("__restrict__")) {
                bad.add("kiln_sgd_element (inlined into kiln_sgd_many)");
            }
        }
        assertEquals(List.copyOf(IN_PLACE.keySet()), found.stream().sorted().toList(), "every listed kernel exists");
        assertEquals(List.of(), bad);
    }

    @Test
    @DisplayName("the shipped PTX of a kernel that may run in place reads no input through the non-coherent cache")
    void ptx() {
        List<String> bad = new ArrayList<>();
        int checked = 0;
        for (String m : CudaKernels.MODULES) {
            String ptx = new String(CudaKernels.ptx(m), StandardCharsets.US_ASCII);
            for (String kernel : IN_PLACE.keySet()) {
                int at = ptx.indexOf(".entry " + kernel + "(");
                if (at < 0) {
                    continue;
                }
                checked++;
                int end = ptx.indexOf(".entry ", at + 1);
                String body = ptx.substring(at, end < 0 ? ptx.length() : end);
                if (body.contains("ld.global.nc")) {
                    bad.add(m + ".ptx " + kernel);
                }
            }
        }
        assertEquals(IN_PLACE.size(), checked, "every listed kernel is in the shipped PTX");
        assertTrue(bad.isEmpty(), "ld.global.nc in " + bad + ": rebuild the PTX (tools/build-ptx.sh)");
    }
}
