package com.example.consumer;

import dev.kiln.inference.Predictor;
import dev.kiln.models.LeNet5;
import dev.kiln.train.ModelFiles;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.lang.reflect.InvocationTargetException;
import java.net.URL;
import java.net.URLClassLoader;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;

/** Kiln loaded in a child URLClassLoader, as Spark executors and Flink task managers load a job's jars. */
class ChildClassLoaderTest {

    private static URL jarOf(Class<?> c) {
        return c.getProtectionDomain().getCodeSource().getLocation();
    }

    @Test
    @DisplayName("a Predictor inside a child class loader (context class loader blind to Kiln) scores like the one here")
    void predictorInChildLoader() throws Exception {
        byte[] model;
        try (LeNet5 m = Fixtures.trained(21, 1)) {
            model = ModelFiles.toBytes(m, Fixtures.NORMALIZATION);
        }
        byte[][] images = Fixtures.images(22, new int[32]);
        int[] here;
        try (Predictor p = Predictor.load(model)) {
            here = p.classes(images);
        }
        URL[] jars = {jarOf(Predictor.class), jarOf(dev.kiln.cpu.CpuBackend.class), jarOf(com.google.gson.Gson.class),
                jarOf(org.slf4j.Logger.class)};
        Thread thread = Thread.currentThread();
        ClassLoader context = thread.getContextClassLoader();
        try (URLClassLoader job = new URLClassLoader("job", jars, ClassLoader.getPlatformClassLoader())) {
            thread.setContextClassLoader(ClassLoader.getPlatformClassLoader());
            Class<?> predictor = Class.forName("dev.kiln.inference.Predictor", true, job);
            assertNotSame(Predictor.class, predictor);
            for (int call = 0; call < 2; call++) {
                Object p = predictor.getMethod("load", byte[].class).invoke(null, (Object) model);
                try {
                    int[] there = (int[]) predictor.getMethod("classes", byte[][].class).invoke(p, (Object) images);
                    assertArrayEquals(here, there, "call " + call);
                } finally {
                    ((AutoCloseable) p).close();
                }
            }
            Class.forName("dev.kiln.core.Devices", true, job).getMethod("releaseDefaults").invoke(null);
        } catch (InvocationTargetException e) {
            throw (Exception) e.getCause();
        } finally {
            thread.setContextClassLoader(context);
        }
    }
}
