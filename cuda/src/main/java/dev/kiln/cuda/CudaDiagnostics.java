package dev.kiln.cuda;

import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdevice_attribute;
import jcuda.driver.JCudaDriver;
import jcuda.jcublas.JCublas2;
import jcuda.jcublas.cublasHandle;
import jcuda.jcudnn.JCudnn;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;

/**
 * What {@code kiln doctor} prints about the GPU: driver version, each device's name, memory and compute capability,
 * which libcudnn/libcublas were loaded and from where (read back from /proc/self/maps), their versions, and a
 * one-line verdict. Never throws: failures become lines.
 */
public final class CudaDiagnostics {

    private CudaDiagnostics() {
    }

    /** The report, one line per item; the first line is the verdict. */
    public static List<String> report() {
        List<String> lines = new ArrayList<>();
        Optional<String> reason;
        try {
            reason = CudaProbe.unavailableReason();
        } catch (RuntimeException | LinkageError e) {
            reason = Optional.of("probe failed: " + e);
        }
        if (reason.isPresent()) {
            lines.add("cuda: no GPU - " + reason.get());
            return lines;
        }
        List<String> details = new ArrayList<>();
        try {
            int[] v = new int[1];
            JCudaDriver.cuDriverGetVersion(v);
            details.add("driver: CUDA " + v[0] / 1000 + "." + (v[0] % 1000) / 10 + " (" + v[0] + ")");
            int[] count = new int[1];
            JCudaDriver.cuDeviceGetCount(count);
            for (int i = 0; i < count[0]; i++) {
                CUdevice d = new CUdevice();
                JCudaDriver.cuDeviceGet(d, i);
                byte[] name = new byte[256];
                JCudaDriver.cuDeviceGetName(name, name.length, d);
                long[] mem = new long[1];
                JCudaDriver.cuDeviceTotalMem(mem, d);
                details.add(String.format(Locale.ROOT, "device %d: %s, %.1f GiB, compute capability %d.%d, %d SMs", i,
                        cstring(name), mem[0] / (1024.0 * 1024 * 1024),
                        attr(d, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR),
                        attr(d, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR),
                        attr(d, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)));
            }
            long cudnn = JCudnn.cudnnGetVersion();
            details.add("cuDNN version " + cudnn);
            details.add("cuBLAS version " + cublasVersion());
            CudaLibraries.loaded().ifPresent(l -> details.add("libcublas.so.12 is "
                    + (l.cublasShim() ? "Kiln's shim forwarding to libcublas.so.13" : "the real CUDA 12 cuBLAS")));
            for (String lib : CudaLibraries.mappedCudaLibraries()) {
                details.add("loaded " + lib);
            }
            lines.add("cuda: OK - " + details.get(1 < details.size() ? 1 : 0));
        } catch (RuntimeException | LinkageError e) {
            lines.add("cuda: FAILED - " + e);
        }
        for (String d : details) {
            lines.add("  " + d);
        }
        return lines;
    }

    private static String cublasVersion() {
        CUdevice d = new CUdevice();
        JCudaDriver.cuDeviceGet(d, 0);
        CUcontext ctx = new CUcontext();
        JCudaDriver.cuDevicePrimaryCtxRetain(ctx, d);
        try {
            JCudaDriver.cuCtxSetCurrent(ctx);
            cublasHandle h = new cublasHandle();
            JCublas2.cublasCreate(h);
            try {
                int[] v = new int[1];
                JCublas2.cublasGetVersion(h, v);
                return String.valueOf(v[0]);
            } finally {
                JCublas2.cublasDestroy(h);
            }
        } finally {
            JCudaDriver.cuDevicePrimaryCtxRelease(d);
        }
    }

    private static int attr(CUdevice d, int a) {
        int[] v = new int[1];
        JCudaDriver.cuDeviceGetAttribute(v, a, d);
        return v[0];
    }

    private static String cstring(byte[] b) {
        int n = 0;
        while (n < b.length && b[n] != 0) {
            n++;
        }
        return new String(b, 0, n, StandardCharsets.UTF_8);
    }
}
