package com.example.consumer;

import com.example.digits.Digits;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.w3c.dom.Document;
import org.w3c.dom.Element;
import org.w3c.dom.NodeList;

import javax.xml.parsers.DocumentBuilderFactory;
import java.io.ByteArrayInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.zip.GZIPOutputStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The README's "Use Kiln in your project" section is this project: its Java listing is {@code Digits.java} verbatim
 * (compiled here as main code and run below), and its {@code pom.xml} declares what this project's pom declares.
 */
class ReadmeLibrarySectionTest {

    private static final Path ROOT = Path.of(System.getProperty("user.dir")).getParent();

    private static String readme() throws IOException {
        Path readme = ROOT.resolve("README.md");
        Assumptions.assumeTrue(Files.exists(readme), "run from the repository (no README.md at " + readme + ")");
        return Files.readString(readme);
    }

    /** The fenced block right after the line {@code <!-- marker -->}. */
    private static String block(String readme, String marker) {
        Matcher m = Pattern.compile("<!-- " + Pattern.quote(marker) + " -->\\n```[a-z]*\\n(.*?)```\\n", Pattern.DOTALL)
                .matcher(readme);
        assertTrue(m.find(), "README.md has a fenced block after <!-- " + marker + " -->");
        return m.group(1);
    }

    @Test
    @DisplayName("the README's Java listing is Digits.java, character for character")
    void javaListingIsTheCompiledSource() throws IOException {
        String path = "consumer-test/src/main/java/com/example/digits/Digits.java";
        assertEquals(Files.readString(ROOT.resolve(path)), block(readme(), path));
    }

    @Test
    @DisplayName("the README's pom.xml: Java 17, kiln-bom at this version, and the dependencies this project builds with")
    void pomSnippet() throws Exception {
        String xml = block(readme(), "pom.xml");
        Document pom = DocumentBuilderFactory.newInstance().newDocumentBuilder()
                .parse(new ByteArrayInputStream(xml.getBytes(StandardCharsets.UTF_8)));
        Element root = pom.getDocumentElement();
        assertEquals("17", text(root, "maven.compiler.release"));
        // Maven 3.8's default compiler plugin (3.1) ignores maven.compiler.release and compiles for Java 5
        Element compiler = (Element) root.getElementsByTagName("plugin").item(0);
        assertEquals("maven-compiler-plugin", text(compiler, "artifactId"));
        assertEquals("3.13.0", text(compiler, "version"));
        Element managed = (Element) root.getElementsByTagName("dependencyManagement").item(0);
        assertEquals("kiln-bom", text(managed, "artifactId"));
        assertEquals(dev.kiln.core.Kiln.version(), text(managed, "version"));
        assertEquals("import", text(managed, "scope"));

        Document ours = DocumentBuilderFactory.newInstance().newDocumentBuilder()
                .parse(ROOT.resolve("consumer-test/pom.xml").toFile());
        assertEquals(dependencies(ours, false), dependencies(pom, true),
                "the README's dependencies (artifact:scope) are the ones this project compiles and runs with");
    }

    private static String text(Element parent, String tag) {
        NodeList nodes = parent.getElementsByTagName(tag);
        assertTrue(nodes.getLength() > 0, "<" + tag + ">");
        return nodes.item(0).getTextContent().trim();
    }

    /** artifactId:scope of the direct dependencies, test scope left out unless {@code withTests}. */
    private static List<String> dependencies(Document pom, boolean withTests) {
        List<String> out = new ArrayList<>();
        NodeList all = pom.getDocumentElement().getElementsByTagName("dependency");
        for (int i = 0; i < all.getLength(); i++) {
            Element d = (Element) all.item(i);
            if (((Element) d.getParentNode().getParentNode()).getTagName().equals("dependencyManagement")) {
                continue;
            }
            NodeList scope = d.getElementsByTagName("scope");
            String s = scope.getLength() == 0 ? "compile" : scope.item(0).getTextContent().trim();
            if (!s.equals("test") || withTests) {
                out.add(d.getElementsByTagName("artifactId").item(0).getTextContent().trim() + ":" + s);
            }
        }
        return out;
    }

    @Test
    @DisplayName("Digits trains on IDX files written by the application and classifies the test file")
    void digitsOnApplicationIdxFiles(@TempDir Path dir) throws IOException {
        int[] trainLabels = new int[1200];
        byte[][] train = Fixtures.images(5, trainLabels);
        int[] testLabels = new int[300];
        byte[][] test = Fixtures.images(6, testLabels);
        writeIdx(dir, "train", train, trainLabels);
        writeIdx(dir, "t10k", test, testLabels);
        double accuracy = Digits.trainAndClassify(dir, dir.resolve("model.safetensors"), Integer.MAX_VALUE, 2);
        // ten bar positions on noise: learnt in two epochs, whatever the data order
        assertTrue(accuracy > 0.9, "accuracy " + accuracy);
        assertTrue(Files.size(dir.resolve("model.safetensors")) > 100_000);
    }

    @Test
    @DisplayName("Digits on real MNIST (KILN_MNIST_DIR): 10,000 training images, one epoch, above 90% on the 10,000 test images")
    void digitsOnMnist(@TempDir Path out) throws IOException {
        String dir = System.getenv("KILN_MNIST_DIR");
        Assumptions.assumeTrue(dir != null && !dir.isBlank(), "KILN_MNIST_DIR is not set: no real MNIST to classify");
        double accuracy = Digits.trainAndClassify(Path.of(dir), out.resolve("digits.safetensors"), 10_000, 1);
        assertTrue(accuracy > 0.9, "accuracy " + accuracy);
    }

    /** {@code <prefix>-images-idx3-ubyte.gz} and {@code <prefix>-labels-idx1-ubyte.gz}, as MNIST's site has them. */
    private static void writeIdx(Path dir, String prefix, byte[][] images, int[] labels) throws IOException {
        try (DataOutputStream out = new DataOutputStream(gzip(dir.resolve(prefix + "-images-idx3-ubyte.gz")))) {
            out.writeInt(0x00000803);
            out.writeInt(images.length);
            out.writeInt(28);
            out.writeInt(28);
            for (byte[] image : images) {
                out.write(image);
            }
        }
        try (DataOutputStream out = new DataOutputStream(gzip(dir.resolve(prefix + "-labels-idx1-ubyte.gz")))) {
            out.writeInt(0x00000801);
            out.writeInt(labels.length);
            for (int label : labels) {
                out.writeByte(label);
            }
        }
    }

    private static OutputStream gzip(Path file) throws IOException {
        return new GZIPOutputStream(Files.newOutputStream(file));
    }
}
