package dev.kiln.cuda;

import jcuda.driver.CUdeviceptr;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Device blocks a CUDA graph may touch at replay, kept from the allocator's free lists until the graph is destroyed:
 * blocks freed while the capture ran and blocks allocated during it, whenever they are freed. While the capture runs,
 * blocks freed during it are handed out again to later allocations of the same capture (one stream, recorded in
 * order, so reuse within the graph is as safe as in eager execution).
 */
final class DeviceReservation {

    private final Map<Long, ArrayDeque<CUdeviceptr>> reusable = new HashMap<>();
    private final List<long[]> heldSizes = new ArrayList<>();
    private final List<CUdeviceptr> held = new ArrayList<>();
    private boolean recording = true;
    private boolean released;

    boolean isRecording() {
        return recording;
    }

    void stopRecording() {
        recording = false;
        reusable.clear();
    }

    boolean isReleased() {
        return released;
    }

    /** A block of size class {@code cls} freed earlier in this capture, or null. */
    CUdeviceptr reuse(long cls) {
        if (!recording) {
            return null;
        }
        ArrayDeque<CUdeviceptr> q = reusable.get(cls);
        if (q == null || q.isEmpty()) {
            return null;
        }
        CUdeviceptr p = q.pop();
        for (int i = held.size() - 1; i >= 0; i--) {
            if (held.get(i) == p) {
                held.remove(i);
                heldSizes.remove(i);
                break;
            }
        }
        return p;
    }

    /** Keeps a freed block; false when this reservation was already released (the block is the allocator's again). */
    boolean hold(CUdeviceptr p, long cls) {
        if (released) {
            return false;
        }
        if (recording) {
            reusable.computeIfAbsent(cls, k -> new ArrayDeque<>()).push(p);
        }
        held.add(p);
        heldSizes.add(new long[]{cls});
        return true;
    }

    /** Hands every held block back (size class and pointer) and forgets them. */
    void releaseTo(java.util.function.BiConsumer<CUdeviceptr, Long> allocatorFree) {
        recording = false;
        released = true;
        reusable.clear();
        for (int i = 0; i < held.size(); i++) {
            allocatorFree.accept(held.get(i), heldSizes.get(i)[0]);
        }
        held.clear();
        heldSizes.clear();
    }
}
