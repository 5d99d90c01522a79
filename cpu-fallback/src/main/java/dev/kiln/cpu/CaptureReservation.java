package dev.kiln.cpu;

import java.util.ArrayList;
import java.util.List;

/**
 * The arrays a recorded graph may touch at replay and that therefore must not go back to the pool: those freed while
 * the capture ran, and those of buffers allocated during it, whenever they are freed. All go back when the recorded
 * work is closed.
 */
final class CaptureReservation {

    private final List<float[]> held = new ArrayList<>();
    private boolean recording = true;
    private boolean released;

    synchronized boolean isRecording() {
        return recording;
    }

    synchronized void stopRecording() {
        recording = false;
    }

    /** Keeps {@code array} until {@link #releaseTo}; false when the reservation is already released. */
    synchronized boolean hold(float[] array) {
        if (released) {
            return false;
        }
        held.add(array);
        return true;
    }

    synchronized void releaseTo(ArrayPool pool) {
        recording = false;
        released = true;
        for (float[] a : held) {
            pool.give(a);
        }
        held.clear();
    }
}
