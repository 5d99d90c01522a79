/** Kiln's pure-Java CPU backend. */
module kiln.cpu {
    requires kiln.core;
    requires org.slf4j;

    exports dev.kiln.cpu;

    provides dev.kiln.backend.BackendProvider with dev.kiln.cpu.CpuBackendProvider;
}
