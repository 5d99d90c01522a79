package dev.kiln.examples;

import dev.kiln.core.Device;
import dev.kiln.core.Devices;
import dev.kiln.core.Kiln;
import picocli.CommandLine.Command;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

import java.io.PrintWriter;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Callable;

/** What this machine can run: each backend found and a one-line verdict. */
@Command(name = "doctor", mixinStandardHelpOptions = true,
        description = "Report the backends Kiln finds here (CPU, GPU) and whether each works.")
final class DoctorCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        out.println("kiln " + Kiln.version() + " on Java " + System.getProperty("java.version") + " ("
                + System.getProperty("os.name") + " " + System.getProperty("os.arch") + ", "
                + Runtime.getRuntime().availableProcessors() + " cores)");
        printCudaDiagnostics(out);
        Devices devices = Devices.defaults();
        Map<String, Optional<String>> availability = devices.availability();
        if (!availability.containsKey("cuda")) {
            out.println("cuda: no GPU backend on the class path (the kiln-cuda module is not installed) - no GPU");
        }
        for (Map.Entry<String, Optional<String>> e : availability.entrySet()) {
            if (e.getValue().isPresent()) {
                out.println(e.getKey() + ": unavailable - " + e.getValue().get());
                continue;
            }
            try {
                Device d = devices.get(e.getKey());
                out.println(e.getKey() + ": OK - " + d.backend().description());
            } catch (RuntimeException ex) {
                out.println(e.getKey() + ": FAILED to start - " + ex.getMessage());
            }
        }
        out.println("auto: " + Device.auto().name());
        out.flush();
        return 0;
    }

    /** The GPU report of kiln-cuda's CudaDiagnostics when that module is on the class path (looked up reflectively). */
    private static void printCudaDiagnostics(PrintWriter out) {
        try {
            Class<?> c = Class.forName("dev.kiln.cuda.CudaDiagnostics");
            Object lines = c.getMethod("report").invoke(null);
            for (Object line : (List<?>) lines) {
                out.println(line);
            }
        } catch (ClassNotFoundException e) {
            out.println("cuda: no GPU - the kiln-cuda module is not on the class path");
        } catch (ReflectiveOperationException | RuntimeException | LinkageError e) {
            out.println("cuda: diagnostics failed - " + e);
        }
    }
}
