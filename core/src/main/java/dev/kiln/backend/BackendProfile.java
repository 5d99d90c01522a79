package dev.kiln.backend;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Proxy;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Host-side cost of backend calls: how often each op is called and how long the calling thread spends inside it
 * (argument checks, JNI, the launch itself; on an asynchronous backend not the kernel, unless its queue is full or the
 * call waits). Wrap a backend with {@link #wrap} and build a {@code Device} over the wrapper; every op of a model on
 * that device is counted. Work inside a captured graph is one replay, not its ops.
 */
public final class BackendProfile {

    /** Totals of one backend method. */
    public record OpStats(String op, long calls, long nanos) {
        public double microsPerCall() {
            return calls == 0 ? 0 : nanos / 1e3 / calls;
        }
    }

    private final Map<String, long[]> totals = new HashMap<>();

    /** A backend that forwards every call to {@code delegate} and adds its count and host time to {@code profile}. */
    public static Backend wrap(Backend delegate, BackendProfile profile) {
        return (Backend) Proxy.newProxyInstance(Backend.class.getClassLoader(), new Class<?>[] {Backend.class},
                (proxy, method, args) -> profile.invoke(delegate, method, args));
    }

    private Object invoke(Backend delegate, Method method, Object[] args) throws Throwable {
        if (method.getDeclaringClass() == Object.class) {
            return switch (method.getName()) {
                case "toString" -> "profiled " + delegate;
                case "hashCode" -> System.identityHashCode(this);
                default -> method.invoke(delegate, args);
            };
        }
        long t0 = System.nanoTime();
        try {
            return method.invoke(delegate, args);
        } catch (InvocationTargetException e) {
            throw e.getCause();
        } finally {
            long dt = System.nanoTime() - t0;
            synchronized (totals) {
                long[] t = totals.computeIfAbsent(method.getName(), k -> new long[2]);
                t[0]++;
                t[1] += dt;
            }
        }
    }

    /** Every op called since the last {@link #reset}, the most host time first. */
    public List<OpStats> snapshot() {
        List<OpStats> out = new ArrayList<>();
        synchronized (totals) {
            for (Map.Entry<String, long[]> e : totals.entrySet()) {
                out.add(new OpStats(e.getKey(), e.getValue()[0], e.getValue()[1]));
            }
        }
        out.sort(Comparator.comparingLong(OpStats::nanos).reversed());
        return out;
    }

    public void reset() {
        synchronized (totals) {
            totals.clear();
        }
    }
}
