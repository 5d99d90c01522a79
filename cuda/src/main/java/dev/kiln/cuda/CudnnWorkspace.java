package dev.kiln.cuda;

import jcuda.driver.CUdeviceptr;

import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Set;

/**
 * The one cuDNN workspace block, grown on demand, and the blocks it replaced that captured graphs still use. A
 * captured convolution bakes the workspace address into the graph, so a block stays allocated while any graph
 * that captured it lives: growing the workspace (an eager call at another batch size) retires the old block instead
 * of freeing it, and a retired block goes back to the allocator when the last graph that used it is destroyed.
 * Graphs are identified by their {@link DeviceReservation}. Not thread-safe: the backend serialises.
 */
final class CudnnWorkspace {

    private static final class Block {
        final CUdeviceptr ptr;
        final long bytes;
        final Set<DeviceReservation> graphs = Collections.newSetFromMap(new IdentityHashMap<>());

        Block(CUdeviceptr ptr, long bytes) {
            this.ptr = ptr;
            this.bytes = bytes;
        }
    }

    private final CachingAllocator allocator;
    private Block current;
    private final List<Block> retired = new ArrayList<>();

    CudnnWorkspace(CachingAllocator allocator) {
        this.allocator = allocator;
    }

    /**
     * Scratch of at least {@code bytes} for the next cuDNN call (null for 0). {@code capture} is the reservation of the
     * graph being captured, or null when the call runs eagerly.
     */
    CUdeviceptr get(long bytes, DeviceReservation capture) {
        if (bytes == 0) {
            return null;
        }
        if (current == null || bytes > current.bytes) {
            Block grown = new Block(allocator.allocate(bytes), bytes);
            if (current != null) {
                retire(current);
            }
            current = grown;
        }
        if (capture != null) {
            current.graphs.add(capture);
        }
        return current.ptr;
    }

    private void retire(Block b) {
        if (b.graphs.isEmpty()) {
            allocator.release(b.ptr, b.bytes);
        } else {
            retired.add(b);
        }
    }

    /** The graph of {@code reservation} was destroyed (or its capture failed): blocks only it kept are released. */
    void graphReleased(DeviceReservation reservation) {
        if (current != null) {
            current.graphs.remove(reservation);
        }
        for (Iterator<Block> it = retired.iterator(); it.hasNext(); ) {
            Block b = it.next();
            b.graphs.remove(reservation);
            if (b.graphs.isEmpty()) {
                allocator.release(b.ptr, b.bytes);
                it.remove();
            }
        }
    }

    /** Bytes of replaced blocks kept for live graphs. */
    long retiredBytes() {
        long sum = 0;
        for (Block b : retired) {
            sum += b.bytes;
        }
        return sum;
    }

    long currentBytes() {
        return current == null ? 0 : current.bytes;
    }

    /** Every block back to the allocator (the backend is closing; its graphs are destroyed). */
    void releaseAll() {
        for (Block b : retired) {
            allocator.release(b.ptr, b.bytes);
        }
        retired.clear();
        if (current != null) {
            allocator.release(current.ptr, current.bytes);
            current = null;
        }
    }
}
