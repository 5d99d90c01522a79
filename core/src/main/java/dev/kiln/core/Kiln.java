package dev.kiln.core;

import java.io.IOException;
import java.io.InputStream;
import java.util.Properties;

/** Library-level facts: the version (from the build). */
public final class Kiln {

    private static final String VERSION = readVersion();

    private Kiln() {
    }

    public static String version() {
        return VERSION;
    }

    private static String readVersion() {
        try (InputStream in = Kiln.class.getResourceAsStream("/dev/kiln/version.properties")) {
            if (in == null) {
                return "unknown";
            }
            Properties p = new Properties();
            p.load(in);
            return p.getProperty("version", "unknown");
        } catch (IOException e) {
            return "unknown";
        }
    }
}
