package dev.kiln.cuda;

import jcuda.Pointer;
import jcuda.driver.CUfunction;
import jcuda.driver.CUmodule;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Kiln's own kernels: the PTX files shipped in {@code dev/kiln/cuda/*.ptx} (built by tools/build-ptx.sh from
 * {@code src/main/cuda}), JIT-compiled by the driver when the backend starts, and launched on the backend's stream.
 */
final class CudaKernels implements AutoCloseable {

    static final List<String> MODULES = List.of("elementwise", "nn");
    static final int BLOCK = 256;
    static final int MAX_GRID = 65535;

    private final CudaContext ctx;
    private final Map<String, CUmodule> modules = new HashMap<>();
    private final Map<String, CUfunction> functions = new HashMap<>();
    private final KernelSignatures signatures = new KernelSignatures();

    CudaKernels(CudaContext ctx) {
        this.ctx = ctx;
        for (String m : MODULES) {
            CUmodule module = new CUmodule();
            byte[] ptx = ptx(m);
            signatures.addModule(ptx);
            try {
                ctx.api.cuModuleLoadData(module, ptx);
            } catch (RuntimeException e) {
                throw new IllegalStateException("cuda: the driver rejected dev/kiln/cuda/" + m + ".ptx (PTX ISA 8.0, sm_75): "
                        + e.getMessage() + " - the driver must support CUDA 12.0 or newer", e);
            }
            modules.put(m, module);
        }
    }

    /** The shipped PTX of {@code module}, NUL-terminated for cuModuleLoadData. */
    static byte[] ptx(String module) {
        String res = "/dev/kiln/cuda/" + module + ".ptx";
        try (InputStream in = CudaKernels.class.getResourceAsStream(res)) {
            if (in == null) {
                throw new IllegalStateException("cuda: kernel resource " + res + " is missing from the class path");
            }
            byte[] b = in.readAllBytes();
            byte[] z = new byte[b.length + 1];
            System.arraycopy(b, 0, z, 0, b.length);
            return z;
        } catch (IOException e) {
            throw new UncheckedIOException("cuda: cannot read " + res, e);
        }
    }

    CUfunction function(String module, String name) {
        return functions.computeIfAbsent(name, k -> {
            CUfunction f = new CUfunction();
            ctx.api.cuModuleGetFunction(f, modules.get(module), name);
            return f;
        });
    }

    /** Grid-stride launch over {@code n} items with 256 threads per block. */
    void launch(String module, String name, long n, Object... args) {
        if (n <= 0) {
            return;
        }
        int grid = (int) Math.min(MAX_GRID, (n + BLOCK - 1) / BLOCK);
        launchGrid(module, name, grid, args);
    }

    /** Launch with an explicit grid of 256-thread blocks. */
    void launchGrid(String module, String name, int grid, Object... args) {
        if (grid <= 0) {
            return;
        }
        signatures.check(name, args);
        ctx.api.launchKernel(function(module, name), name, grid, BLOCK, ctx.stream, args);
    }

    /**
     * Kernel parameters: a Pointer (device address) is passed as a pointer, null as a null pointer, Integer as int, Long as long long,
     * Float as float, Double as double, int[] and long[] as a by-value struct of ints or longs.
     */
    static Pointer params(Object... args) {
        Pointer[] p = new Pointer[args.length];
        for (int i = 0; i < args.length; i++) {
            Object a = args[i];
            if (a == null) {
                p[i] = Pointer.to(new long[]{0L});
            } else if (a instanceof Pointer ptr) {
                p[i] = Pointer.to(ptr);
            } else if (a instanceof Integer v) {
                p[i] = Pointer.to(new int[]{v});
            } else if (a instanceof Long v) {
                p[i] = Pointer.to(new long[]{v});
            } else if (a instanceof Float v) {
                p[i] = Pointer.to(new float[]{v});
            } else if (a instanceof Double v) {
                p[i] = Pointer.to(new double[]{v});
            } else if (a instanceof int[] v) {
                p[i] = Pointer.to(v);
            } else if (a instanceof long[] v) {
                p[i] = Pointer.to(v);
            } else {
                throw new IllegalArgumentException("cuda: unsupported kernel argument " + a);
            }
        }
        return Pointer.to(p);
    }

    @Override
    public void close() {
        for (CUmodule m : modules.values()) {
            ctx.api.cuModuleUnload(m);
        }
        modules.clear();
        functions.clear();
    }
}
