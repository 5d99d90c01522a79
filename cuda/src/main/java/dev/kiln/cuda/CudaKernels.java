package dev.kiln.cuda;

import jcuda.Pointer;
import jcuda.driver.CUfunction;
import jcuda.driver.CUmodule;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

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

    /**
     * Loads every module and looks up every kernel in it now: with the driver's lazy loading, the first lookup or
     * launch of a kernel loads its code, which must not happen inside a stream capture. A failure unloads what was
     * loaded.
     */
    CudaKernels(CudaContext ctx) {
        this.ctx = ctx;
        try {
            for (String m : MODULES) {
                CUmodule module = new CUmodule();
                byte[] ptx = ptx(m);
                List<String> names = signatures.addModule(ptx);
                try {
                    ctx.api.cuModuleLoadData(module, ptx);
                } catch (RuntimeException e) {
                    throw new IllegalStateException("cuda: the driver rejected dev/kiln/cuda/" + m + ".ptx (PTX ISA 8.0,"
                            + " sm_75): " + e.getMessage() + " - the driver must support CUDA 12.0 or newer", e);
                }
                modules.put(m, module);
                for (String name : names) {
                    CUfunction f = new CUfunction();
                    ctx.api.cuModuleGetFunction(f, module, name);
                    functions.put(name, f);
                }
            }
        } catch (RuntimeException e) {
            try {
                close();
            } catch (RuntimeException suppressed) {
                e.addSuppressed(suppressed);
            }
            throw e;
        }
    }

    /** Every kernel of the shipped modules, by name. */
    Set<String> kernelNames() {
        return Collections.unmodifiableSet(functions.keySet());
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
        CUfunction f = functions.get(name);
        if (f == null || !modules.containsKey(module)) {
            throw new IllegalStateException("cuda: no kernel " + name + " in dev/kiln/cuda/" + module + ".ptx");
        }
        return f;
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

    /** Unloads every module, each on its own: one that fails to unload (after a sticky error) does not keep the others. */
    @Override
    public void close() {
        RuntimeException first = null;
        for (CUmodule m : modules.values()) {
            try {
                ctx.api.cuModuleUnload(m);
            } catch (RuntimeException e) {
                if (first == null) {
                    first = e;
                } else {
                    first.addSuppressed(e);
                }
            }
        }
        modules.clear();
        functions.clear();
        if (first != null) {
            throw first;
        }
    }
}
