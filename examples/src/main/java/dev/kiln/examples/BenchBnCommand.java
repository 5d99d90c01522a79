package dev.kiln.examples;

import dev.kiln.backend.Backend;
import dev.kiln.backend.BatchNormGeometry;
import dev.kiln.backend.Buffer;
import dev.kiln.core.Device;
import dev.kiln.core.Kiln;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.Callable;

/**
 * Batch norm alone at one large shape (default BN2d N=64, C=64, 112x112): training forward with the running-statistics
 * update, backward, and both, against a device-to-device copy of the same tensor. Rates count the bytes that must move
 * at least once (forward: read x, write y; backward: read x and dy, write dx; copy: read and write), so "% of copy"
 * says how close batch norm comes to the memory system's practical limit. bench/pytorch_bn.py times the same in PyTorch.
 */
@Command(name = "bn", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Batch norm (training forward + backward) vs device copy bandwidth at one large shape.")
final class BenchBnCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Option(names = "--device", defaultValue = "auto", description = "auto, cpu or cuda (default: ${DEFAULT-VALUE}).")
    String device;

    @Option(names = "--shape", defaultValue = "64,64,112,112", split = ",",
            description = "N,C,H,W (default: ${DEFAULT-VALUE}).")
    List<Integer> shape;

    @Option(names = "--rounds", defaultValue = "7", description = "Timed rounds; the median is reported (default: ${DEFAULT-VALUE}).")
    int rounds;

    @Option(names = "--warmup-cap", paramLabel = "SECONDS", defaultValue = "5", description = "How long each op's warm-up"
            + " (at least 0.5 s and 20 calls) may go on while the JIT compilers are busy; 0 stops at the minimum"
            + " (default: ${DEFAULT-VALUE}).")
    double warmupCap;

    @Option(names = "--json", paramLabel = "FILE", description = "Also write the results as JSON.")
    java.nio.file.Path json;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        if (shape.size() != 4 || shape.stream().anyMatch(d -> d < 1) || rounds < 1 || !(warmupCap >= 0)) {
            throw new picocli.CommandLine.ParameterException(spec.commandLine(),
                    "need --shape N,C,H,W with four positive sizes, --rounds >= 1 and --warmup-cap >= 0, got " + shape
                            + ", " + rounds + " and " + warmupCap);
        }
        int n = shape.get(0), c = shape.get(1), spatial = Math.multiplyExact(shape.get(2), shape.get(3));
        BatchNormGeometry g = new BatchNormGeometry(n, c, spatial);
        if (g.length() > Integer.MAX_VALUE - 8) {
            throw new picocli.CommandLine.ParameterException(spec.commandLine(), "shape " + shape + " is too large");
        }
        Device dev = Device.of(device);
        Backend b = dev.backend();
        out.println("device: " + dev.name() + " (" + b.description() + "), BN2d " + shape + " float32, median of "
                + rounds + " rounds");
        out.printf("%-34s %11s %10s %10s %9s%n", "op", "median", "bytes", "GB/s", "% copy");
        List<Buffer> owned = new ArrayList<>();
        List<Map<String, Object>> rows = new ArrayList<>();
        try {
            Random random = new Random(1);
            Buffer x = upload(b, owned, random, g.length(), 1f);
            Buffer dy = upload(b, owned, random, g.length(), 0.01f);
            Buffer y = keep(owned, b.allocate(g.length()));
            Buffer dx = keep(owned, b.allocate(g.length()));
            Buffer gamma = upload(b, owned, random, c, 0.1f);
            Buffer beta = upload(b, owned, random, c, 0.1f);
            Buffer mean = keep(owned, b.allocate(c));
            Buffer invStd = keep(owned, b.allocate(c));
            Buffer runningMean = keep(owned, b.allocate(c));
            Buffer runningVar = keep(owned, b.allocate(c));
            Buffer dGamma = keep(owned, b.allocate(c));
            Buffer dBeta = keep(owned, b.allocate(c));
            b.fill(runningVar, 0, c, 1f);
            double bytes = (double) g.length() * Float.BYTES;
            float eps = 1e-5f;
            Runnable forward = () -> {
                b.batchNormForwardTraining(g, x, gamma, beta, eps, y, mean, invStd);
                b.batchNormUpdateRunningStats(g, mean, invStd, eps, 0.1, runningMean, runningVar, null, null);
            };
            Runnable backward = () -> b.batchNormBackward(g, x, dy, gamma, mean, invStd, dx, dGamma, dBeta);
            forward.run();
            double copy = OpTimer.medianSeconds(b, rounds, () -> b.copy(x, 0, y, 0, g.length()), warmupCap);
            double copyRate = 2 * bytes / copy;
            rows.add(row(out, "device copy", copy, 2 * bytes, copyRate));
            rows.add(row(out, "bn forward (train, running stats)", OpTimer.medianSeconds(b, rounds, forward, warmupCap), 2 * bytes, copyRate));
            rows.add(row(out, "bn backward", OpTimer.medianSeconds(b, rounds, backward, warmupCap), 3 * bytes, copyRate));
            rows.add(row(out, "bn forward + backward", OpTimer.medianSeconds(b, rounds, () -> {
                forward.run();
                backward.run();
            }, warmupCap), 5 * bytes, copyRate));
        } finally {
            for (Buffer buf : owned) {
                buf.close();
            }
        }
        if (json != null) {
            Map<String, Object> doc = new LinkedHashMap<>();
            doc.put("kiln_version", Kiln.version());
            doc.put("device", dev.name());
            doc.put("backend", b.description());
            doc.put("shape", shape);
            doc.put("rounds", rounds);
            doc.put("rows", rows);
            JsonFiles.write(json, doc);
        }
        return 0;
    }

    private static Map<String, Object> row(PrintWriter out, String op, double seconds, double bytes, double copyRate) {
        double rate = bytes / seconds;
        out.printf("%-34s %8.3f ms %8.1fMB %10.1f %8.1f%%%n", op, seconds * 1e3, bytes / 1e6, rate / 1e9, 100 * rate / copyRate);
        out.flush();
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("op", op);
        r.put("ms", seconds * 1e3);
        r.put("bytes", bytes);
        r.put("gb_per_s", rate / 1e9);
        r.put("fraction_of_copy", rate / copyRate);
        return r;
    }

    private static Buffer keep(List<Buffer> owned, Buffer b) {
        owned.add(b);
        return b;
    }

    private static Buffer upload(Backend b, List<Buffer> owned, Random random, long n, float scale) {
        float[] a = new float[Math.toIntExact(n)];
        for (int i = 0; i < a.length; i++) {
            a[i] = (float) random.nextGaussian() * scale;
        }
        return keep(owned, b.upload(a, 0, a.length));
    }
}
