package dev.kiln.cpu;

/**
 * Per-thread scratch memory of one backend instance (held in a {@code ThreadLocal} of that instance): grown on
 * demand and reused across calls, never shared between threads. Each field has one user so nested kernels
 * (conv calling Sgemm) never overwrite each other's scratch.
 */
final class Scratch {

    /**
     * One backend's scratch per thread. The thread-local value is only a weak reference (a JDK class); the scratch
     * itself is held strongly by this object, per live thread, until {@link #release()}. So closing the backend
     * frees every thread's scratch at once, pooled threads that outlive the backend (an application server's, a
     * Spark executor's) keep nothing of it, and nothing in those threads pins the class loader Kiln came from.
     */
    static final class PerThread implements java.util.function.Supplier<Scratch> {
        private final ThreadLocal<java.lang.ref.WeakReference<Scratch>> local = new ThreadLocal<>();
        private final java.util.Map<Thread, Scratch> held = new java.util.WeakHashMap<>();

        @Override
        public Scratch get() {
            java.lang.ref.WeakReference<Scratch> ref = local.get();
            Scratch s = ref == null ? null : ref.get();
            if (s == null) {
                s = new Scratch();
                synchronized (held) {
                    held.put(Thread.currentThread(), s);
                }
                local.set(new java.lang.ref.WeakReference<>(s));
            }
            return s;
        }

        /** Drops every thread's scratch; a later {@link #get()} on a thread starts a new one. */
        void release() {
            synchronized (held) {
                held.clear();
            }
            local.remove();
        }

        /** Threads currently holding scratch (for tests). */
        int threadsHolding() {
            synchronized (held) {
                return held.size();
            }
        }
    }

    /** Sgemm accumulator rows. */
    final float[] acc0 = new float[Sgemm.NC_MAX];
    final float[] acc1 = new float[Sgemm.NC_MAX];
    final float[] acc2 = new float[Sgemm.NC_MAX];
    final float[] acc3 = new float[Sgemm.NC_MAX];

    private float[][] panel = new float[0][];
    private float[] col = new float[0];
    private float[] partial = new float[0];
    private double[] dacc = new double[0];
    private float[] floats = new float[0];
    private int[] ints = new int[0];

    /** Sgemm's packed B panel: {@code depth} rows of {@link Sgemm#NC_MAX} floats, each its own array. */
    float[][] panel(int depth) {
        if (panel.length < depth) {
            float[][] p = java.util.Arrays.copyOf(panel, depth);
            for (int i = panel.length; i < depth; i++) {
                p[i] = new float[Sgemm.NC_MAX];
            }
            panel = p;
        }
        return panel;
    }

    /** im2col / col2im buffer of convolutions. */
    float[] col(int size) {
        if (col.length < size) {
            col = new float[grow(size)];
        }
        return col;
    }

    /** Per-chunk partial results of a reduction started on this thread (written by the chunks' threads). */
    float[] partial(int size) {
        if (partial.length < size) {
            partial = new float[grow(size)];
        }
        return partial;
    }

    /** Double accumulators of reductions. */
    double[] dacc(int size) {
        if (dacc.length < size) {
            dacc = new double[grow(size)];
        }
        return dacc;
    }

    /** Generic float scratch for leaf kernels (argmax). */
    float[] floats(int size) {
        if (floats.length < size) {
            floats = new float[grow(size)];
        }
        return floats;
    }

    /** Generic int scratch for leaf kernels (argmax, broadcasting counters). */
    int[] ints(int size) {
        if (ints.length < size) {
            ints = new int[grow(size)];
        }
        return ints;
    }

    private float[][] lanes = new float[0][];
    private float[][] tileRows = new float[0][];

    /** Lane accumulators of {@link Sgemm#dotLanes}: {@code count} arrays of {@link Sgemm#LANES} floats. */
    float[][] lanes(int count) {
        if (lanes.length < count) {
            float[][] p = java.util.Arrays.copyOf(lanes, count);
            for (int i = lanes.length; i < count; i++) {
                p[i] = new float[Sgemm.LANES];
            }
            lanes = p;
        }
        return lanes;
    }

    /** Packed row tiles of {@link Sgemm#dotLanes}: {@code count} arrays of {@link Sgemm#LANES} floats. */
    float[][] tileRows(int count) {
        if (tileRows.length < count) {
            float[][] p = java.util.Arrays.copyOf(tileRows, count);
            for (int i = tileRows.length; i < count; i++) {
                p[i] = new float[Sgemm.LANES];
            }
            tileRows = p;
        }
        return tileRows;
    }

    private float[] vectorTile = new float[0];
    private float[] vectorStrip = new float[0];
    private float[] vectorPanel = new float[0];

    private float[] vectorLanes = new float[0];
    private float[] paddedRows = new float[0];

    /** Lane accumulators of {@link VectorSgemm#dotAccumulate}. */
    float[] vectorLanes(int size) {
        if (vectorLanes.length < size) {
            vectorLanes = new float[grow(size)];
        }
        return vectorLanes;
    }

    /** A convolution's output gradient rows, copied with their length padded to whole vectors. */
    float[] paddedRows(int size) {
        if (paddedRows.length < size) {
            paddedRows = new float[grow(size)];
        }
        return paddedRows;
    }

    /** {@link VectorSgemm}'s block of C between the micro-kernel and the store. */
    float[] vectorTile(int size) {
        if (vectorTile.length < size) {
            vectorTile = new float[size];
        }
        return vectorTile;
    }

    /** {@link VectorSgemm}'s zero-padded copy of B's column tail. */
    float[] vectorStrip(int size) {
        if (vectorStrip.length < size) {
            vectorStrip = new float[grow(size)];
        }
        return vectorStrip;
    }

    /** {@link VectorSgemm}'s packed panel of a transposed B. */
    float[] vectorPanel(int size) {
        if (vectorPanel.length < size) {
            vectorPanel = new float[grow(size)];
        }
        return vectorPanel;
    }

    private float[] wideRows = new float[0];

    /** A convolution's output or output gradient on wide positions ({@link Conv2dKernels#wide}). */
    float[] wideRows(int size) {
        if (wideRows.length < size) {
            wideRows = new float[grow(size)];
        }
        return wideRows;
    }

    private float[] transposedB = new float[0];

    /**
     * B transposed once by the thread that splits a GEMM over rows of C, read by every chunk (each chunk would
     * otherwise pack the same transposed panel again).
     */
    float[] transposedB(int size) {
        if (transposedB.length < size) {
            transposedB = new float[grow(size)];
        }
        return transposedB;
    }

    private float[] packedWeights = new float[0];
    private float[] arrangedWeights = new float[0];

    /** {@link ImplicitConv}'s weights packed for its micro-kernels (written by the calling thread, read by all). */
    float[] packedWeights(int size) {
        if (packedWeights.length < size) {
            packedWeights = new float[grow(size)];
        }
        return packedWeights;
    }

    /** {@link ImplicitConv}'s weights rearranged (rotated kernel, stride-phase sub-kernels) before packing. */
    float[] arrangedWeights(int size) {
        if (arrangedWeights.length < size) {
            arrangedWeights = new float[grow(size)];
        }
        return arrangedWeights;
    }

    private final java.util.Map<PlanKey, Object> plans = new java.util.HashMap<>();

    /**
     * A kernel's precomputed plan for a shape (offset tables of {@link ImplicitConv} and {@link StackedConv}), built
     * once per thread and shape; at most 64 are kept (a network has a few dozen distinct convolutions).
     */
    @SuppressWarnings("unchecked")
    <T> T plan(PlanKey key, java.util.function.Function<PlanKey, T> build) {
        Object p = plans.get(key);
        if (p == null) {
            if (plans.size() >= 64) {
                plans.clear();
            }
            p = build.apply(key);
            plans.put(key, p);
        }
        return (T) p;
    }

    /**
     * What identifies a plan: the kernel's name, the convolution's geometry and one more number. Written-out
     * {@code equals} and {@code hashCode}: a record's, linked through {@code invokedynamic} on first use, kept the
     * class loader of a redeployed Kiln reachable after it was closed ({@code ClassLoaderUnloadingTest}, whose workload
     * runs padded convolutions).
     */
    static final class PlanKey {
        private final String kernel;
        private final int[] values;
        private final int hash;

        PlanKey(String kernel, dev.kiln.backend.ConvGeometry g, int extra) {
            this.kernel = kernel;
            values = new int[]{g.n(), g.inChannels(), g.inH(), g.inW(), g.outChannels(), g.kernelH(), g.kernelW(),
                    g.strideH(), g.strideW(), g.padH(), g.padW(), g.dilationH(), g.dilationW(), g.groups(), extra};
            hash = 31 * kernel.hashCode() + java.util.Arrays.hashCode(values);
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof PlanKey k && hash == k.hash && kernel.equals(k.kernel)
                    && java.util.Arrays.equals(values, k.values);
        }

        @Override
        public int hashCode() {
            return hash;
        }
    }

    private static int grow(int size) {
        long s = Math.max(size, 64);
        return (int) Math.min(Integer.MAX_VALUE - 8L, s + (s >> 3));
    }
}
