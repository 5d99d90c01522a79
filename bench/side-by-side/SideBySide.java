import java.lang.reflect.Method;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Two builds of the CPU backend in one JVM, each in its own class loader, called in turn: both see the same phases
 * of a noisy machine, which alternating processes do not. {@code SideBySide <rounds> <threads> <classpath A>
 * <classpath B> <workload class>}; the workload class has {@code long[] once(int threads)}, {@code String[] names()}
 * and {@code int hash()}. Prints the minimum and the median of each time, and whether both builds computed the same
 * bits. Where a build's scratch arrays land moves some kernels by up to 15% (docs/performance.md), so the workload
 * allocates new ones each round, and a build run against itself shows the spread that remains.
 */
public final class SideBySide {

    public static void main(String[] args) throws Exception {
        int rounds = Integer.parseInt(args[0]);
        int threads = Integer.parseInt(args[1]);
        Method[] once = new Method[2];
        Method[] hash = new Method[2];
        String[] names = null;
        for (int v = 0; v < 2; v++) {
            List<URL> urls = new ArrayList<>();
            for (String p : args[2 + v].split(":")) {
                urls.add(Path.of(p).toUri().toURL());
            }
            ClassLoader loader = new URLClassLoader(urls.toArray(new URL[0]), ClassLoader.getPlatformClassLoader());
            Class<?> workload = Class.forName(args[4], true, loader);
            once[v] = workload.getMethod("once", int.class);
            hash[v] = workload.getMethod("hash");
            names = (String[]) workload.getMethod("names").invoke(null);
        }
        long[][][] t = new long[2][names.length][rounds];
        for (int r = -5; r < rounds; r++) {
            for (int v = 0; v < 2; v++) {
                long[] times = (long[]) once[v].invoke(null, threads);
                if (r >= 0) {
                    for (int i = 0; i < names.length; i++) {
                        t[v][i][r] = times[i];
                    }
                }
            }
        }
        System.out.printf("%d rounds, %d thread(s), %s%n", rounds, threads,
                threads == 1 ? "thread CPU time" : "wall time");
        System.out.printf("| %-27s | %9s | %9s | %9s | %9s | %7s |%n", "pass", "A min ms", "B min ms", "A median",
                "B median", "B/A min");
        System.out.println("|---|---:|---:|---:|---:|---:|");
        for (int i = 0; i < names.length; i++) {
            long[] a = t[0][i].clone();
            long[] b = t[1][i].clone();
            Arrays.sort(a);
            Arrays.sort(b);
            if (a[rounds - 1] == 0) {
                continue;
            }
            System.out.printf("| %-27s | %9.3f | %9.3f | %9.3f | %9.3f | %7.2f |%n", names[i], a[0] / 1e6, b[0] / 1e6,
                    a[rounds / 2] / 1e6, b[rounds / 2] / 1e6, (double) b[0] / a[0]);
        }
        System.out.println("same bits: " + hash[0].invoke(null).equals(hash[1].invoke(null)));
        System.exit(0);
    }
}
