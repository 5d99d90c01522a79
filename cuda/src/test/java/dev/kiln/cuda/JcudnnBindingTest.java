package dev.kiln.cuda;

import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.InputStream;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Kiln pairs the JCudnn 11.7.0 Java classes (the 12.6.0 ones were never published) with the 12.6.0 natives built
 * against cuDNN 9. JNI binds each native method by name when it is first called, so the pair works exactly when every
 * cuDNN function Kiln calls has its {@code Java_jcuda_jcudnn_JCudnn_<name>Native} symbol in the 12.6.0 library, and
 * the Java classes that library reaches into exist. Checked here without a GPU.
 */
class JcudnnBindingTest {

    private static final String NATIVE_LIB = "/lib/libJCudnn-12.6.0-linux-x86_64.so";

    private static String nativeLibraryText() throws IOException {
        try (InputStream in = JcudnnBindingTest.class.getResourceAsStream(NATIVE_LIB)) {
            assertNotNull(in, NATIVE_LIB + " is not on the test class path (org.jcuda:jcudnn-natives:12.6.0 linux-x86_64)");
            return new String(in.readAllBytes(), StandardCharsets.ISO_8859_1);
        }
    }

    /** Every {@code JCudnn.cudnnXxx(} call in Kiln's main sources. */
    private static Set<String> cudnnCallsInKiln() throws IOException {
        ToolSupport.requireSources();
        Pattern call = Pattern.compile("JCudnn\\.(cudnn\\w+)\\(");
        Set<String> names = new TreeSet<>();
        try (Stream<Path> files = Files.walk(ToolSupport.ROOT.resolve("cuda/src/main/java"))) {
            for (Path f : (Iterable<Path>) files.filter(p -> p.toString().endsWith(".java"))::iterator) {
                Matcher m = call.matcher(Files.readString(f));
                while (m.find()) {
                    names.add(m.group(1));
                }
            }
        }
        return names;
    }

    private static String jniName(String method) {
        return "Java_jcuda_jcudnn_JCudnn_" + method.replace("_", "_1");
    }

    @Test
    @DisplayName("every cuDNN function Kiln calls is bound by the 12.6.0 natives through the 11.7.0 classes")
    void everyCallHasANativeSymbol() throws Exception {
        String lib = nativeLibraryText();
        Set<String> calls = cudnnCallsInKiln();
        assertTrue(calls.size() >= 30, "expected Kiln to call at least 30 cuDNN functions, found " + calls);
        Class<?> jcudnn = Class.forName("jcuda.jcudnn.JCudnn", false, getClass().getClassLoader());
        List<String> missing = new ArrayList<>();
        for (String name : calls) {
            String nativeName = name + "Native";
            boolean declared = false;
            for (Method m : jcudnn.getDeclaredMethods()) {
                declared |= m.getName().equals(nativeName) && Modifier.isNative(m.getModifiers());
            }
            if (!declared) {
                missing.add(name + " (no native method " + nativeName + " in the 11.7.0 JCudnn class)");
            } else if (!lib.contains(jniName(nativeName))) {
                missing.add(name + " (no symbol " + jniName(nativeName) + " in " + NATIVE_LIB + ")");
            }
        }
        assertEquals(List.of(), missing);
    }

    @Test
    @DisplayName("the classes and fields the 12.6.0 natives look up exist in the 11.7.0 classes")
    void nativeLookupsResolve() throws Exception {
        String lib = nativeLibraryText();
        Matcher m = Pattern.compile("jcuda/jcudnn/[A-Za-z0-9_]+").matcher(lib);
        Set<String> classes = new TreeSet<>();
        while (m.find()) {
            classes.add(m.group().replace('/', '.'));
        }
        assertTrue(classes.contains("jcuda.jcudnn.cudnnConvolutionFwdAlgoPerf"), "expected the natives to name "
                + "cudnnConvolutionFwdAlgoPerf, found " + classes);
        for (String c : classes) {
            Class<?> k = Class.forName(c, false, getClass().getClassLoader());
            if (c.endsWith("AlgoPerf")) {
                for (String field : List.of("algo", "status", "time", "memory", "determinism", "mathType")) {
                    assertNotNull(k.getField(field), c + "." + field);
                    assertTrue(lib.contains(field), "natives do not mention field " + field);
                }
            }
        }
    }
}
