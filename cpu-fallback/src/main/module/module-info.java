/** Kiln's pure-Java CPU backend. */
module kiln.cpu {
    requires kiln.core;
    requires org.slf4j;
    // the SIMD kernels: read only when the JVM resolves the module (--add-modules jdk.incubator.vector); SimdSupport
    // keeps their classes unloaded otherwise
    requires static jdk.incubator.vector;

    exports dev.kiln.cpu;

    provides dev.kiln.backend.BackendProvider with dev.kiln.cpu.CpuBackendProvider;
}
