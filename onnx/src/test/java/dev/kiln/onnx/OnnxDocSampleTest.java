package dev.kiln.onnx;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.onnxruntime.OrtSession;
import dev.kiln.core.Device;
import dev.kiln.core.Generator;
import dev.kiln.data.Normalization;
import dev.kiln.inference.Predictor;
import dev.kiln.models.LeNet5;

import java.io.StringWriter;
import java.lang.reflect.Method;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.tools.JavaCompiler;
import javax.tools.ToolProvider;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** docs/onnx.md's serving sample compiles and scores as Predictor does; its op table lists every op the exporter maps. */
class OnnxDocSampleTest {

    private static final Path DOC = Path.of("..", "docs", "onnx.md");

    @Test
    void theServingSampleCompilesAndGivesPredictorsClasses(@TempDir Path tmp) throws Exception {
        String doc = Files.readString(DOC);
        Matcher m = Pattern.compile("```java\n(import ai\\.onnxruntime.*?public final class DigitScorer.*?)```",
                Pattern.DOTALL).matcher(doc);
        assertTrue(m.find(), DOC + " has no DigitScorer sample");
        Path src = tmp.resolve("src/DigitScorer.java");
        Files.createDirectories(src.getParent());
        Files.writeString(src, m.group(1));
        Path classes = tmp.resolve("classes");
        Files.createDirectories(classes);
        JavaCompiler javac = ToolProvider.getSystemJavaCompiler();
        assertNotNull(javac, "tests run on a JDK");
        String ort = Path.of(OrtSession.class.getProtectionDomain().getCodeSource().getLocation().toURI()).toString();
        StringWriter errors = new StringWriter();
        boolean ok = javac.getTask(errors, null, null, List.of("-classpath", ort, "-d", classes.toString()), null,
                javac.getStandardFileManager(null, null, null).getJavaFileObjects(src)).call();
        assertTrue(ok, errors.toString());

        Path onnx = tmp.resolve("lenet.onnx");
        byte[][] images = new byte[16][784];
        Random r = new Random(2);
        for (byte[] image : images) {
            r.nextBytes(image);
        }
        try (LeNet5 model = new LeNet5(Device.cpu(), new Generator(8))) {
            ExportCases.randomizeStatistics(model, new Random(8));
            model.eval();
            OnnxExporter.of(model, 1, 28, 28).normalization(Normalization.MNIST).foldBatchNorm(true).write(onnx);
            try (Predictor p = Predictor.of(model, Normalization.MNIST, Predictor.Options.defaults());
                 URLClassLoader loader = new URLClassLoader(new URL[]{classes.toUri().toURL()}, getClass().getClassLoader())) {
                Class<?> scorer = loader.loadClass("DigitScorer");
                try (AutoCloseable s = (AutoCloseable) scorer.getConstructor(String.class).newInstance(onnx.toString())) {
                    Method classify = scorer.getMethod("classify", byte[][].class);
                    assertArrayEquals(p.classes(images), (int[]) classify.invoke(s, (Object) images));
                }
            }
        }
    }

    @Test
    void theOpTableListsEveryOpTheExporterMaps() throws Exception {
        String doc = Files.readString(DOC);
        String table = doc.substring(doc.indexOf("| Kiln op | ONNX |"), doc.indexOf("Layers:"));
        for (String op : OnnxOps.builtIn()) {
            assertTrue(table.contains("`" + op + "`"), DOC + "'s op table lacks " + op);
        }
        assertTrue(doc.contains("Opset 17, IR version " + OnnxExporter.IR_VERSION));
    }
}
