package dev.kiln.cuda;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.TimeUnit;

/**
 * Where the CUDA libraries are looked for, in order: {@code KILN_CUDA_LIBS} (colon-separated), {@code LD_LIBRARY_PATH},
 * {@code /usr/local/cuda/lib64}, {@code /usr/local/cuda/lib}, {@code /usr/local/nvidia/lib64} and {@code lib}, the
 * system library directories, the pip layout
 * ({@code site-packages/nvidia/*}{@code /lib} of the {@code python3} on the PATH, and of common prefixes), and finally
 * the {@code ldconfig -p} cache. Immutable once built; {@link #fromEnvironment()} reads the process environment.
 */
public final class LibrarySearchPath {

    private static final Logger LOG = LoggerFactory.getLogger(LibrarySearchPath.class);
    private static final List<String> SYSTEM_DIRS = List.of("/usr/local/cuda/lib64", "/usr/local/cuda/lib",
            // where NVIDIA's container runtime mounts the driver's libraries
            "/usr/local/nvidia/lib64", "/usr/local/nvidia/lib",
            "/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/lib/x86_64-linux-gnu", "/usr/lib/wsl/lib", "/usr/lib");

    private final List<Path> dirs;
    private final boolean usePython;
    private final boolean systemLookups;
    private final List<String> python;
    private volatile List<Path> pipDirs;
    private volatile Map<String, Path> ldconfig;

    LibrarySearchPath(List<Path> dirs, boolean usePython) {
        this(dirs, usePython, true);
    }

    /** @param systemLookups whether to consult the pip layout and {@code ldconfig -p} beyond {@code dirs} */
    LibrarySearchPath(List<Path> dirs, boolean usePython, boolean systemLookups) {
        this(dirs, usePython, systemLookups, List.of("python3"));
    }

    /** @param python the interpreter command whose site-packages are searched (the {@code python3} on the PATH) */
    LibrarySearchPath(List<Path> dirs, boolean usePython, boolean systemLookups, List<String> python) {
        this.dirs = List.copyOf(dirs);
        this.usePython = usePython;
        this.systemLookups = systemLookups;
        this.python = List.copyOf(python);
    }

    /**
     * Prints the interpreter's site-packages directories (a virtual environment's own included) and every directory
     * of the {@code nvidia} namespace package, one per line; works whether or not {@code nvidia} is importable.
     */
    static final String SITE_PACKAGES_SCRIPT = String.join("\n",
            "import os, site, sysconfig",
            "paths = [sysconfig.get_paths()[k] for k in ('purelib', 'platlib')]",
            "try:\n    paths += site.getsitepackages()\nexcept Exception:\n    pass",
            "try:\n    import nvidia\n    paths += [os.path.dirname(p) for p in nvidia.__path__]\nexcept Exception:\n    pass",
            "print('\\n'.join(dict.fromkeys(paths)))");

    /** Only {@code dirs}: no pip layout, no ldconfig (for tests and for pinning libraries exactly). */
    public static LibrarySearchPath only(List<Path> dirs) {
        return new LibrarySearchPath(dirs, false, false);
    }

    /** The search path from {@code KILN_CUDA_LIBS}, {@code LD_LIBRARY_PATH} and the standard locations. */
    public static LibrarySearchPath fromEnvironment() {
        Set<Path> d = new LinkedHashSet<>();
        addAll(d, System.getProperty("kiln.cuda.libs"));
        addAll(d, System.getenv("KILN_CUDA_LIBS"));
        addAll(d, System.getenv("LD_LIBRARY_PATH"));
        for (String s : SYSTEM_DIRS) {
            d.add(Path.of(s));
        }
        return new LibrarySearchPath(new ArrayList<>(d), !"false".equals(System.getProperty("kiln.cuda.pythonProbe")));
    }

    private static void addAll(Set<Path> out, String colonList) {
        if (colonList == null) {
            return;
        }
        for (String s : colonList.split(":")) {
            if (!s.isBlank()) {
                out.add(Path.of(s.trim()));
            }
        }
    }

    /** The explicit directories (environment and system), without the pip layout. */
    public List<Path> directories() {
        return dirs;
    }

    /** The first file named {@code soname} in the explicit directories (no subprocess: cheap). */
    public Optional<Path> findInDirectories(String soname) {
        for (Path dir : dirs) {
            Path p = dir.resolve(soname);
            if (Files.isRegularFile(p) || Files.isSymbolicLink(p) && Files.exists(p)) {
                return Optional.of(p);
            }
        }
        return Optional.empty();
    }

    /** Explicit directories, then the pip layout, then {@code ldconfig -p}. */
    public Optional<Path> find(String soname) {
        Optional<Path> p = findInDirectories(soname);
        if (p.isPresent() || !systemLookups) {
            return p;
        }
        for (Path dir : pipDirectories()) {
            Path c = dir.resolve(soname);
            if (Files.exists(c)) {
                return Optional.of(c);
            }
        }
        return Optional.ofNullable(ldconfigCache().get(soname));
    }

    /** The {@code nvidia/*}{@code /lib} directories of pip-installed CUDA wheels (cached). */
    public List<Path> pipDirectories() {
        List<Path> p = pipDirs;
        if (p == null) {
            Set<Path> roots = new LinkedHashSet<>();
            if (usePython) {
                List<String> cmd = new ArrayList<>(python);
                cmd.add("-c");
                cmd.add(SITE_PACKAGES_SCRIPT);
                run(cmd, 10)
                        .ifPresent(out -> out.lines().map(String::trim).filter(s -> !s.isEmpty())
                                .forEach(s -> roots.add(Path.of(s))));
            }
            String home = System.getProperty("user.home", "/root");
            for (String prefix : List.of(home + "/.local/lib", "/usr/local/lib", "/usr/lib", "/opt/conda/lib")) {
                globSitePackages(Path.of(prefix), roots);
            }
            List<Path> found = new ArrayList<>();
            for (Path root : roots) {
                Path nv = root.resolve("nvidia");
                if (Files.isDirectory(nv)) {
                    // nvidia/cublas/lib (CUDA 12 wheels and PyTorch's CUDA 13 ones), nvidia/cu13/lib (consolidated)
                    try (DirectoryStream<Path> ds = Files.newDirectoryStream(nv)) {
                        for (Path sub : ds) {
                            for (String lib : List.of("lib", "lib64")) {
                                if (Files.isDirectory(sub.resolve(lib))) {
                                    found.add(sub.resolve(lib));
                                }
                            }
                        }
                    } catch (IOException e) {
                        LOG.debug("cannot list {}: {}", nv, e.toString());
                    }
                }
            }
            p = List.copyOf(found);
            pipDirs = p;
        }
        return p;
    }

    private static void globSitePackages(Path prefix, Set<Path> roots) {
        if (!Files.isDirectory(prefix)) {
            return;
        }
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(prefix, "python3*")) {
            for (Path py : ds) {
                for (String sp : List.of("site-packages", "dist-packages")) {
                    if (Files.isDirectory(py.resolve(sp).resolve("nvidia"))) {
                        roots.add(py.resolve(sp));
                    }
                }
            }
        } catch (IOException e) {
            LOG.debug("cannot list {}: {}", prefix, e.toString());
        }
    }

    private Map<String, Path> ldconfigCache() {
        Map<String, Path> m = ldconfig;
        if (m == null) {
            java.util.HashMap<String, Path> found = new java.util.HashMap<>();
            for (String exe : List.of("/sbin/ldconfig", "/usr/sbin/ldconfig", "ldconfig")) {
                Optional<String> out = run(List.of(exe, "-p"), 5);
                if (out.isPresent()) {
                    // "	libcuda.so.1 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libcuda.so.1"
                    out.get().lines().forEach(line -> {
                        int arrow = line.indexOf("=>");
                        if (arrow > 0 && line.contains("x86-64")) {
                            String name = line.trim().split("\\s+")[0];
                            found.putIfAbsent(name, Path.of(line.substring(arrow + 2).trim()));
                        }
                    });
                    break;
                }
            }
            m = Map.copyOf(found);
            ldconfig = m;
        }
        return m;
    }

    /**
     * The standard output of {@code command} if it exits 0 within {@code timeoutSeconds}; otherwise empty, and the
     * process and its children are killed. The output goes to a file, not a pipe: a process that hangs (a Python
     * import waiting on a network file system, say), or a child that keeps the pipe open, cannot block the read.
     */
    static Optional<String> run(List<String> command, int timeoutSeconds) {
        Path out = null;
        try {
            out = Files.createTempFile("kiln-probe-", ".out");
            Process p = new ProcessBuilder(command).redirectOutput(out.toFile())
                    .redirectError(ProcessBuilder.Redirect.DISCARD).redirectInput(ProcessBuilder.Redirect.from(
                            new java.io.File("/dev/null"))).start();
            if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
                p.descendants().forEach(ProcessHandle::destroyForcibly);
                p.destroyForcibly();
                LOG.debug("{} did not finish within {} s: killed", command.get(0), timeoutSeconds);
                return Optional.empty();
            }
            return p.exitValue() == 0 ? Optional.of(Files.readString(out, StandardCharsets.UTF_8)) : Optional.empty();
        } catch (IOException e) {
            return Optional.empty();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return Optional.empty();
        } finally {
            if (out != null) {
                try {
                    Files.deleteIfExists(out);
                } catch (IOException e) {
                    LOG.debug("cannot delete {}: {}", out, e.toString());
                }
            }
        }
    }

    @Override
    public String toString() {
        return dirs + (pipDirs != null ? " + pip " + pipDirs : "");
    }
}
