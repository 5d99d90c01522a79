package dev.kiln.core;

import dev.kiln.backend.Backend;
import dev.kiln.backend.GraphCaptureException;

import java.util.ArrayList;
import java.util.List;

/**
 * The graph capture running on this thread ({@link CapturedGraph#capture}), for the code that runs inside it: layers
 * and optimizers whose host-side state changes every step register what a replay must do on the host
 * ({@link #afterReplay}: BatchNorm's batch counter) or must put on the device first ({@link #beforeReplay}: the
 * optimizer's learning rate), and refuse what a replay cannot repeat ({@link #refuse}).
 */
public final class CaptureContext {

    private static final ThreadLocal<CaptureContext> ACTIVE = new ThreadLocal<>();

    private final Device device;
    private final Backend recorder;
    final List<Runnable> before = new ArrayList<>();
    final List<Runnable> after = new ArrayList<>();

    CaptureContext(Device device, Backend recorder) {
        this.device = device;
        this.recorder = recorder;
    }

    /** The capture running on this thread, or null. */
    public static CaptureContext current() {
        return ACTIVE.get();
    }

    /** Whether this thread is capturing a graph. */
    public static boolean active() {
        return ACTIVE.get() != null;
    }

    /** Throws {@link GraphCaptureException} with {@code reason} when this thread is capturing; otherwise nothing. */
    public static void refuse(String reason) {
        if (active()) {
            throw new GraphCaptureException("cannot capture this step: " + reason);
        }
    }

    static void enter(CaptureContext c) {
        if (ACTIVE.get() != null) {
            throw new GraphCaptureException("a graph capture is already running on this thread");
        }
        ACTIVE.set(c);
    }

    static void exit() {
        ACTIVE.remove();
    }

    /** The backend calls for {@code d} go to while this thread captures on it. */
    static Backend routeFor(Device d, Backend own) {
        CaptureContext c = ACTIVE.get();
        return c != null && c.device == d ? c.recorder : own;
    }

    public Device device() {
        return device;
    }

    /** Runs on the host before every replay (e.g. writes a changed learning rate to the device). */
    public void beforeReplay(Runnable r) {
        before.add(r);
    }

    /** Runs on the host after every replay is queued (e.g. counts a batch). */
    public void afterReplay(Runnable r) {
        after.add(r);
    }
}
