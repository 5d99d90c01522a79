package dev.kiln.examples;

import dev.kiln.core.Device;
import dev.kiln.core.Devices;
import dev.kiln.core.Kiln;
import dev.kiln.cuda.CudaDiagnostics;
import picocli.CommandLine.Command;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

import java.io.PrintWriter;
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
        out.println("GPU:");
        for (String line : CudaDiagnostics.report()) {
            out.println("  " + line);
        }
        Devices devices = Devices.defaults();
        out.println("backends:");
        for (Map.Entry<String, Optional<String>> e : devices.availability().entrySet()) {
            if (e.getValue().isPresent()) {
                out.println("  " + e.getKey() + ": unavailable - " + e.getValue().get());
                continue;
            }
            try {
                Device d = devices.get(e.getKey());
                out.println("  " + e.getKey() + ": OK - " + d.backend().description());
            } catch (RuntimeException | LinkageError ex) {
                out.println("  " + e.getKey() + ": FAILED to start - " + ex.getMessage());
            }
        }
        out.flush();
        String auto = Device.auto().name();
        out.println("auto: " + auto);
        out.flush();
        return 0;
    }
}
