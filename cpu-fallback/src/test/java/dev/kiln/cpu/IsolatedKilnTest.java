package dev.kiln.cpu;

import dev.kiln.core.Device;
import dev.kiln.core.Devices;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.lang.reflect.InvocationTargetException;
import java.net.URL;
import java.net.URLClassLoader;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Kiln in a child class loader, as Spark and Flink load user jars; and the default registry's life cycle. */
class IsolatedKilnTest {

    /** A class loader the test can add jars to later, over the platform loader (no Kiln above it). */
    static final class ChildLoader extends URLClassLoader {
        ChildLoader(URL... urls) {
            super("kiln-child", urls, ClassLoader.getPlatformClassLoader());
        }

        void add(URL url) {
            addURL(url);
        }
    }

    static URL whereIs(Class<?> c) {
        return c.getProtectionDomain().getCodeSource().getLocation();
    }

    /** Calls {@code Device.cpu().name()} inside {@code loader}, with a context class loader that cannot see Kiln. */
    private static String cpuNameIn(ClassLoader loader) throws Exception {
        Thread t = Thread.currentThread();
        ClassLoader before = t.getContextClassLoader();
        t.setContextClassLoader(ClassLoader.getPlatformClassLoader());
        try {
            Class<?> device = Class.forName("dev.kiln.core.Device", true, loader);
            Object cpu = device.getMethod("cpu").invoke(null);
            return (String) device.getMethod("name").invoke(cpu);
        } catch (InvocationTargetException e) {
            throw (Exception) e.getCause();
        } finally {
            t.setContextClassLoader(before);
        }
    }

    @Test
    @DisplayName("Kiln in a child class loader finds its CPU backend although the context class loader cannot see it; a failed discovery is not cached")
    void childClassLoader() throws Exception {
        URL core = whereIs(Device.class);
        URL cpu = whereIs(CpuBackend.class);
        URL gson = whereIs(com.google.gson.Gson.class);
        URL slf4j = whereIs(org.slf4j.Logger.class);
        try (ChildLoader withBackend = new ChildLoader(core, cpu, gson, slf4j)) {
            assertEquals("cpu", cpuNameIn(withBackend));
            assertEquals("cpu", cpuNameIn(withBackend), "and again");
            Class<?> isolated = Class.forName("dev.kiln.core.Devices", true, withBackend);
            assertNotSame(Devices.class, isolated, "a separate copy of Kiln");
            isolated.getMethod("releaseDefaults").invoke(null);
            assertEquals("cpu", cpuNameIn(withBackend), "a released default is created anew");
            isolated.getMethod("releaseDefaults").invoke(null);
        }
        try (ChildLoader coreOnly = new ChildLoader(core, gson, slf4j)) {
            Exception e = org.junit.jupiter.api.Assertions.assertThrows(Exception.class, () -> cpuNameIn(coreOnly));
            assertTrue(e.getMessage().contains("unknown device 'cpu'") && e.getMessage().contains("[]"), e.getMessage());
            coreOnly.add(cpu);
            assertEquals("cpu", cpuNameIn(coreOnly), "the empty discovery was not kept");
            Class.forName("dev.kiln.core.Devices", true, coreOnly).getMethod("releaseDefaults").invoke(null);
        }
    }

    @Test
    @DisplayName("an application's own registry becomes the default; the CPU pool bound is an option (0: no pool) and closing releases it")
    void configurableDefaults() {
        try (Devices mine = new Devices(getClass().getClassLoader(), Map.of("threads", "1", "poolBytes", "0"))) {
            Devices previous = Devices.setDefaults(mine);
            try {
                assertSame(mine.get("cpu"), Device.cpu());
                CpuBackend be = (CpuBackend) Device.cpu().backend();
                assertEquals(1, be.threads());
                try (dev.kiln.core.Tensor t = dev.kiln.core.Tensor.zeros(Device.cpu(), 1000)) {
                    t.add(1f).close();
                }
                assertEquals(0, be.pooledBytes(), "poolBytes=0 pools nothing");
            } finally {
                Devices.setDefaults(previous);
            }
        }
        try (Devices pooled = new Devices(getClass().getClassLoader(), Map.of("threads", "1", "poolBytes", "1000000"))) {
            CpuBackend be = (CpuBackend) pooled.get("cpu").backend();
            try (dev.kiln.core.Tensor t = dev.kiln.core.Tensor.zeros(pooled.get("cpu"), 1000)) {
                t.add(1f).close();
            }
            assertTrue(be.pooledBytes() > 0 && be.pooledBytes() <= 1_000_000, "pooled " + be.pooledBytes());
            pooled.close();
            assertEquals(0, be.pooledBytes(), "closing the registry releases its pools");
        }
    }

}
