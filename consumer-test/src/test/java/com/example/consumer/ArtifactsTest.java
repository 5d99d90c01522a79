package com.example.consumer;

import dev.kiln.core.Device;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.tools.JavaCompiler;
import javax.tools.ToolProvider;
import java.io.File;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The jars as a modular application sees them, and the BOM this project imports. */
class ArtifactsTest {

    private static Path jarOf(Class<?> c) throws URISyntaxException {
        return Path.of(c.getProtectionDomain().getCodeSource().getLocation().toURI());
    }

    private static Path kilnJar(Class<?> c) throws URISyntaxException {
        Path p = jarOf(c);
        Assumptions.assumeTrue(p.toString().endsWith(".jar"),
                "Kiln comes from " + p + ", not a jar: run the reactor's package/verify phase");
        return p;
    }

    @Test
    @DisplayName("the Kiln jars are named modules; an application with 'requires kiln.core; requires kiln.cpu' runs on the module path and scores")
    void modulePath(@TempDir Path dir) throws Exception {
        Path core = kilnJar(Device.class);
        Path cpu = kilnJar(dev.kiln.cpu.CpuBackend.class);
        for (Path[] jar : new Path[][]{{core, Path.of("kiln.core")}, {cpu, Path.of("kiln.cpu")}}) {
            java.lang.module.ModuleReference module = java.lang.module.ModuleFinder.of(jar[0]).findAll().iterator().next();
            assertEquals(jar[1].toString(), module.descriptor().name(), jar[0].toString());
            assertTrue(!module.descriptor().isAutomatic(), "a module descriptor: " + jar[0]);
        }
        Path src = dir.resolve("src/app");
        Files.createDirectories(src.resolve("app"));
        Files.writeString(src.resolve("module-info.java"), "module app { requires kiln.core; requires kiln.cpu; }\n");
        Files.writeString(src.resolve("app/Main.java"), String.join("\n",
                "package app;",
                "import dev.kiln.core.*;",
                "import dev.kiln.inference.Predictor;",
                "import dev.kiln.models.LeNet5;",
                "import dev.kiln.train.ModelFiles;",
                "public class Main {",
                "  public static void main(String[] a) throws Exception {",
                "    try (LeNet5 m = new LeNet5(Device.cpu(), new Generator(1));",
                "         Predictor p = Predictor.load(ModelFiles.toBytes(m, dev.kiln.data.Normalization.MNIST))) {",
                "      System.out.println(\"module \" + Predictor.class.getModule().getName() + \" classes \" + p.numClasses()",
                "          + \" first \" + p.classes(new byte[1][784])[0]);",
                "    }",
                "  }",
                "}", ""));
        List<String> modulePath = new ArrayList<>(List.of(core.toString(), cpu.toString(),
                jarOf(com.google.gson.Gson.class).toString(), jarOf(org.slf4j.Logger.class).toString()));
        JavaCompiler javac = ToolProvider.getSystemJavaCompiler();
        Assumptions.assumeTrue(javac != null, "a JDK (javac) is needed");
        Path out = dir.resolve("out");
        int rc = javac.run(null, null, null, "-d", out.toString(), "--module-path", String.join(File.pathSeparator, modulePath),
                src.resolve("module-info.java").toString(), src.resolve("app/Main.java").toString());
        assertEquals(0, rc, "javac");
        modulePath.add(out.toString());
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        Process p = new ProcessBuilder(java.toString(), "--module-path", String.join(File.pathSeparator, modulePath),
                "-m", "app/app.Main").redirectErrorStream(true).start();
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "the modular application finished");
        String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, p.exitValue(), output);
        assertTrue(output.contains("module kiln.core classes 10 first "), output);
    }

    @Test
    @DisplayName("kiln-bom manages the Kiln library artifacts at this version and nothing else")
    void bom() throws Exception {
        Path bom = Path.of(System.getProperty("user.dir")).resolveSibling("bom").resolve("pom.xml");
        Assumptions.assumeTrue(Files.exists(bom), "run from the repository");
        String xml = Files.readString(bom);
        List<String> artifacts = new ArrayList<>();
        java.util.regex.Matcher m = java.util.regex.Pattern.compile(
                "<dependency>\\s*<groupId>([^<]+)</groupId>\\s*<artifactId>([^<]+)</artifactId>\\s*<version>([^<]+)</version>").matcher(xml);
        while (m.find()) {
            assertEquals("dev.kiln", m.group(1), "only Kiln artifacts");
            assertEquals(dev.kiln.core.Kiln.version(), m.group(3), m.group(2));
            artifacts.add(m.group(2));
        }
        assertEquals(List.of("kiln-core", "kiln-cpu-fallback", "kiln-cuda", "kiln-datasets", "kiln-onnx", "kiln-spark"),
                artifacts);
        assertTrue(!xml.contains("<parent>"), "the BOM inherits nothing");
    }
}
