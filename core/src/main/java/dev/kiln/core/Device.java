package dev.kiln.core;

import dev.kiln.backend.Backend;

import java.util.Objects;

/**
 * Where tensors live and ops run: a name ("cpu", "cuda", "cuda:1") bound to one {@link Backend} instance. The choice
 * of backend happens here and nowhere else: {@link #cpu()}, {@link #cuda()}, {@link #auto()} and {@link #of(String)}
 * go through the default {@link Devices} registry (backends found by {@code ServiceLoader}); {@link #of(String, Backend)}
 * wraps a backend you built yourself.
 */
public final class Device {

    private final String name;
    private final Backend backend;
    private final TensorMemory memory = new TensorMemory();

    private Device(String name, Backend backend) {
        this.name = Objects.requireNonNull(name);
        this.backend = Objects.requireNonNull(backend);
    }

    /** A device over a backend you created and own (you close it). */
    public static Device of(String name, Backend backend) {
        return new Device(name, backend);
    }

    /** The pure-Java CPU backend from the default registry. */
    public static Device cpu() {
        return Devices.defaults().get("cpu");
    }

    /** The first GPU from the default registry; throws with the reason when there is none. */
    public static Device cuda() {
        return Devices.defaults().get("cuda");
    }

    /**
     * The best available device: the system property {@code kiln.device} or the environment variable
     * {@code KILN_DEVICE} if set (e.g. "cpu"), else the highest-priority backend that works here.
     */
    public static Device auto() {
        return Devices.defaults().get("auto");
    }

    /** "cpu", "cuda", "cuda:N" or "auto", from the default registry. */
    public static Device of(String spec) {
        return Devices.defaults().get(spec);
    }

    public String name() {
        return name;
    }

    /**
     * Waits until every op queued on this device has finished ({@code torch.cuda.synchronize()}); on the CPU, whose
     * ops run synchronously, it returns at once. Errors a device found in queued work surface here.
     */
    public void synchronize() {
        backend().synchronize();
    }

    /**
     * The backend every op on this device dispatches to: the device's own, or, on a thread that is capturing a graph
     * on this device ({@link CapturedGraph#capture}), the capture's recorder.
     */
    public Backend backend() {
        return CaptureContext.routeFor(this, backend);
    }

    /** The device's own backend, whatever this thread is doing. */
    Backend ownBackend() {
        return backend;
    }

    /** Bytes of tensor storage alive on this device now and at the high-water mark. */
    public TensorMemory tensorMemory() {
        return memory;
    }

    /** "cpu" or "cuda" without the index. */
    public String type() {
        int colon = name.indexOf(':');
        return colon < 0 ? name : name.substring(0, colon);
    }

    @Override
    public String toString() {
        return name;
    }
}
