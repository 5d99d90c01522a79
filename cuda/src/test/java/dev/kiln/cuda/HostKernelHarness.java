package dev.kiln.cuda;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The kernels' own sources (elementwise.cu, nn.cu) compiled for the host with g++ around
 * src/test/resources/host-kernels/harness.cpp, running one thread, answering one request per line (the protocol is
 * at the top of harness.cpp). Tests that use it skip, saying so, where g++ is missing.
 */
final class HostKernelHarness implements AutoCloseable {

    private final Process process;
    private final Writer in;
    private final BufferedReader out;

    private HostKernelHarness(Process process) {
        this.process = process;
        this.in = new OutputStreamWriter(process.getOutputStream(), StandardCharsets.US_ASCII);
        this.out = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.US_ASCII));
    }

    /** Compiles the harness in {@code dir} (no FMA contraction, as the PTX is built) and starts it. */
    static HostKernelHarness start(Path dir) throws IOException, InterruptedException {
        ToolSupport.requireSources();
        ToolSupport.requireTool("g++");
        Path cpp = dir.resolve("harness.cpp");
        try (InputStream s = HostKernelHarness.class.getResourceAsStream("/host-kernels/harness.cpp")) {
            Files.write(cpp, s.readAllBytes());
        }
        ToolSupport.check(dir, "g++", "-O1", "-ffp-contract=off", "-std=c++17", "-I",
                ToolSupport.ROOT.resolve("cuda/src/main/cuda").toString(), "-o", "harness", cpp.toString());
        return new HostKernelHarness(new ProcessBuilder(dir.resolve("harness").toString()).redirectErrorStream(true).start());
    }

    /** The answer to {@code request}, as whitespace-separated tokens. */
    String[] tokens(String request) throws IOException {
        in.write(request + "\n");
        in.flush();
        String line = out.readLine();
        assertTrue(line != null, "the harness stopped after: " + request);
        return line.trim().split("\\s+");
    }

    /** The answer to {@code request}, every token a float pattern. */
    float[] ask(String request) throws IOException {
        return floats(tokens(request), 0, -1);
    }

    /** Tokens {@code [from, to)} ({@code to} < 0: to the end) as floats. */
    static float[] floats(String[] tokens, int from, int to) {
        int end = to < 0 ? tokens.length : to;
        float[] r = new float[end - from];
        for (int i = from; i < end; i++) {
            r[i - from] = Float.intBitsToFloat(Integer.parseUnsignedInt(tokens[i], 16));
        }
        return r;
    }

    static String hex(float... v) {
        StringBuilder sb = new StringBuilder();
        for (float f : v) {
            sb.append(' ').append(Integer.toHexString(Float.floatToRawIntBits(f)));
        }
        return sb.toString();
    }

    static String hexDouble(double d) {
        return " " + Long.toHexString(Double.doubleToRawLongBits(d));
    }

    @Override
    public void close() throws IOException {
        in.close();
        process.destroy();
    }
}
