package dev.kiln.cuda;

import java.util.Map;

/** Settings of one {@link CudaBackend}, from the {@code Devices} options and system properties. */
public record CudaOptions(int deviceIndex, boolean tf32, long workspaceLimitBytes) {

    public CudaOptions {
        if (deviceIndex < 0) {
            throw new IllegalArgumentException("cuda: device index must be >= 0, got " + deviceIndex);
        }
        if (workspaceLimitBytes < 0) {
            throw new IllegalArgumentException("cuda: workspace limit must be >= 0, got " + workspaceLimitBytes);
        }
    }

    public static CudaOptions defaults() {
        return from(Map.of());
    }

    /** {@code index}, {@code tf32}, {@code workspaceMiB}; {@code -Dkiln.cuda.tf32=true} when the option is absent. */
    public static CudaOptions from(Map<String, String> options) {
        int index = parseInt(options.getOrDefault("index", "0"), "index");
        String tf32 = options.getOrDefault("tf32", System.getProperty("kiln.cuda.tf32", "false"));
        long ws = parseInt(options.getOrDefault("workspaceMiB", System.getProperty("kiln.cuda.workspaceMiB", "512")), "workspaceMiB");
        return new CudaOptions(index, Boolean.parseBoolean(tf32.trim()), ws << 20);
    }

    private static int parseInt(String s, String what) {
        try {
            return Integer.parseInt(s.trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("cuda: option " + what + " must be an integer, got '" + s + "'", e);
        }
    }

    public CudaOptions withTf32(boolean on) {
        return new CudaOptions(deviceIndex, on, workspaceLimitBytes);
    }
}
