package dev.kiln.cuda;

import jcuda.NativePointerObject;

import java.lang.reflect.Field;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * The live handles of one kind (streams, events, descriptors...) of the checking stand-in, each with the place that
 * created it, so a leak names where the resource came from. Handles get fake, distinct native addresses.
 */
final class NativeHandles {

    private static final Field NATIVE_POINTER;

    static {
        try {
            NATIVE_POINTER = NativePointerObject.class.getDeclaredField("nativePointer");
            NATIVE_POINTER.setAccessible(true);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private static long nextHandle = 0x5000_0000L;

    private final String kind;
    private final Map<NativePointerObject, String> live = new IdentityHashMap<>();
    private final Set<NativePointerObject> destroyed = Collections.newSetFromMap(new IdentityHashMap<>());
    private long created;

    NativeHandles(String kind) {
        this.kind = kind;
    }

    /** Gives {@code o} the native address {@code address} (what the driver does when it fills an out-parameter). */
    static void setAddress(NativePointerObject o, long address) {
        try {
            NATIVE_POINTER.setLong(o, address);
        } catch (IllegalAccessException e) {
            throw new IllegalStateException(e);
        }
    }

    static long address(NativePointerObject o) {
        try {
            return NATIVE_POINTER.getLong(o);
        } catch (IllegalAccessException e) {
            throw new IllegalStateException(e);
        }
    }

    static synchronized long freshAddress() {
        nextHandle += 0x40;
        return nextHandle;
    }

    void create(String call, NativePointerObject o) {
        if (o == null) {
            throw new CudaCallViolation(call + ": null " + kind + " out-parameter");
        }
        if (live.containsKey(o)) {
            throw new CudaCallViolation(call + ": the " + kind + " object is already a live handle (created at "
                    + live.get(o) + "); creating it again leaks the first");
        }
        setAddress(o, freshAddress());
        destroyed.remove(o);
        live.put(o, CallSite.here());
        created++;
    }

    void require(String call, String what, NativePointerObject o) {
        if (o == null) {
            throw new CudaCallViolation(call + ": " + what + " (" + kind + ") is null");
        }
        if (!live.containsKey(o)) {
            throw new CudaCallViolation(call + ": " + what + " is a " + (destroyed.contains(o) ? "destroyed " : "never created ")
                    + kind);
        }
    }

    void destroy(String call, NativePointerObject o) {
        require(call, kind, o);
        live.remove(o);
        destroyed.add(o);
    }

    boolean isLive(NativePointerObject o) {
        return o != null && live.containsKey(o);
    }

    long created() {
        return created;
    }

    int liveCount() {
        return live.size();
    }

    /** "3 streams still live: created at ..., ..." or empty. */
    Map<String, String> leaks() {
        Map<String, String> out = new LinkedHashMap<>();
        int i = 0;
        for (String site : live.values()) {
            out.put(kind + " #" + (i++), site);
        }
        return out;
    }
}
