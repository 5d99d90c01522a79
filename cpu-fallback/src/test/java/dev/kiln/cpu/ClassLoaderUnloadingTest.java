package dev.kiln.cpu;

import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.lang.ref.WeakReference;
import java.net.URL;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Kiln redeployed five times in child class loaders, as an application server or a Spark executor does, on the
 * threads of a pool that lives on: once each deployment has closed what it opened, every loader can be collected
 * (no thread of Kiln's, no thread-local value of a pooled thread, keeps one).
 */
class ClassLoaderUnloadingTest {

    @Test
    @DisplayName("five redeployments in child class loaders on a long-lived pool: all five loaders are collected")
    void fiveLoadersCollected() throws Exception {
        URL[] urls = {IsolatedKilnTest.whereIs(dev.kiln.core.Device.class), IsolatedKilnTest.whereIs(CpuBackend.class),
                IsolatedKilnTest.whereIs(com.google.gson.Gson.class), IsolatedKilnTest.whereIs(org.slf4j.Logger.class),
                IsolatedKilnTest.whereIs(RedeployWorkload.class)};
        ExecutorService pool = Executors.newFixedThreadPool(2);
        try {
            List<WeakReference<ClassLoader>> loaders = new ArrayList<>();
            for (int i = 0; i < 5; i++) {
                loaders.add(deploy(pool, urls));
            }
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            int alive = 5;
            while (alive > 0 && System.nanoTime() < deadline) {
                System.gc();
                Thread.sleep(100);
                alive = (int) loaders.stream().filter(r -> r.get() != null).count();
            }
            assertEquals(0, alive, alive + " of 5 class loaders still reachable after 60 s of System.gc()");
        } finally {
            pool.shutdownNow();
        }
    }

    private static WeakReference<ClassLoader> deploy(ExecutorService pool, URL[] urls) throws Exception {
        try (IsolatedKilnTest.ChildLoader loader = new IsolatedKilnTest.ChildLoader(urls)) {
            Class<?> workload = Class.forName(RedeployWorkload.class.getName(), true, loader);
            assertNotSame(RedeployWorkload.class, workload);
            @SuppressWarnings("unchecked")
            Callable<String> call = (Callable<String>) workload.getConstructor().newInstance();
            // twice, so both pool threads have run Kiln code and hold what it leaves on a thread
            assertEquals("scored 3 images", pool.submit(call).get(2, TimeUnit.MINUTES));
            assertEquals("scored 3 images", pool.submit(call).get(2, TimeUnit.MINUTES));
            assertTrue(workload.getClassLoader() == loader);
            return new WeakReference<>(loader);
        }
    }
}
