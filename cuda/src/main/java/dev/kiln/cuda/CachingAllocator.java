package dev.kiln.cuda;

import jcuda.CudaException;
import jcuda.driver.CUdeviceptr;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.Set;
import java.util.Map;

/**
 * Device memory with size-classed free lists, reused across steps (a training step allocates the same sizes every
 * time). Blocks are returned by {@link CudaBuffer#close()}; since all work runs on one stream, a block released while
 * kernels that use it are still queued can be handed out again at once (stream order protects it). On
 * {@code CUDA_ERROR_OUT_OF_MEMORY} the cache is freed and the allocation retried once; a second failure throws
 * {@link CudaOutOfMemoryException} with the requested, free and total bytes. Not thread-safe: the backend serialises.
 */
final class CachingAllocator implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(CachingAllocator.class);
    private static final long SMALL = 1L << 20;
    private static final long SMALL_GRAIN = 512;
    private static final long LARGE_GRAIN = 2L << 20;

    private final CudaContext ctx;
    private final Map<Long, ArrayDeque<CUdeviceptr>> free = new HashMap<>();
    /** Blocks allocated during a graph capture, by identity of the pointer object handed out, and their capture. */
    private final Map<CUdeviceptr, DeviceReservation> capturedBlocks = new IdentityHashMap<>();
    private DeviceReservation recording;
    /** Every block obtained from cuMemAlloc and not yet freed, wherever it is now (in use, cached, held). */
    private final Set<CUdeviceptr> owned = Collections.newSetFromMap(new IdentityHashMap<>());
    private long cachedBytes;
    private long inUseBytes;
    private long peakInUseBytes;
    private long deviceAllocations;
    private long reuses;

    CachingAllocator(CudaContext ctx) {
        this.ctx = ctx;
    }

    /** The block size used for a request: 512-byte multiples up to 1 MiB, 2 MiB multiples above. */
    static long sizeClass(long bytes) {
        long b = Math.max(bytes, 1);
        long grain = b <= SMALL ? SMALL_GRAIN : LARGE_GRAIN;
        return (b + grain - 1) / grain * grain;
    }

    /** From now until {@link #endReservation}, freed blocks and new blocks belong to {@code r} (a graph capture). */
    void beginReservation(DeviceReservation r) {
        recording = r;
    }

    void endReservation(DeviceReservation r) {
        r.stopRecording();
        if (recording == r) {
            recording = null;
        }
    }

    /** A destroyed graph's blocks go back to the free lists (stream order protects replays still queued). */
    void releaseReservation(DeviceReservation r) {
        endReservation(r);
        r.releaseTo((p, cls) -> {
            inUseBytes += cls; // release() below accounts it back as cached
            release(p, cls);
        });
        capturedBlocks.values().removeIf(owner -> owner == r);
    }

    CUdeviceptr allocate(long bytes) {
        CUdeviceptr p = allocateBlock(bytes);
        if (recording != null) {
            capturedBlocks.put(p, recording);
        }
        return p;
    }

    private CUdeviceptr allocateBlock(long bytes) {
        long cls = sizeClass(bytes);
        if (recording != null) {
            CUdeviceptr again = recording.reuse(cls);
            if (again != null) {
                account(cls);
                reuses++;
                return again;
            }
        }
        ArrayDeque<CUdeviceptr> list = free.get(cls);
        if (list != null && !list.isEmpty()) {
            cachedBytes -= cls;
            account(cls);
            reuses++;
            return list.pop();
        }
        CUdeviceptr p = new CUdeviceptr();
        try {
            ctx.api.cuMemAlloc(p, cls);
        } catch (CudaException e) {
            if (!isOutOfMemory(e)) {
                throw e;
            }
            if (recording != null) {
                // freeing the cache synchronises the stream, which a capture forbids
                long[] info = ctx.memoryInfo();
                throw new CudaOutOfMemoryException(bytes, info[0], info[1], inUseBytes);
            }
            LOG.info("cuda: out of memory allocating {} bytes; freeing {} cached bytes and retrying", cls, cachedBytes);
            emptyCache();
            try {
                ctx.api.cuMemAlloc(p, cls);
            } catch (CudaException e2) {
                if (!isOutOfMemory(e2)) {
                    throw e2;
                }
                long[] info = ctx.memoryInfo();
                throw new CudaOutOfMemoryException(bytes, info[0], info[1], inUseBytes);
            }
        }
        deviceAllocations++;
        owned.add(p);
        account(cls);
        return p;
    }

    private void account(long cls) {
        inUseBytes += cls;
        peakInUseBytes = Math.max(peakInUseBytes, inUseBytes);
    }

    void release(CUdeviceptr p, long bytes) {
        long cls = sizeClass(bytes);
        DeviceReservation owner = capturedBlocks.get(p);
        if (owner != null && owner.isReleased()) {
            capturedBlocks.remove(p);
            owner = null;
        }
        if ((owner != null && owner.hold(p, cls)) || (recording != null && recording.hold(p, cls))) {
            inUseBytes -= cls;
            return;
        }
        inUseBytes -= cls;
        cachedBytes += cls;
        free.computeIfAbsent(cls, k -> new ArrayDeque<>()).push(p);
    }

    /** Returns every cached block to the driver (after the stream drains: queued kernels may still read them). */
    void emptyCache() {
        ctx.synchronize();
        for (ArrayDeque<CUdeviceptr> list : free.values()) {
            for (CUdeviceptr p : list) {
                ctx.api.cuMemFree(p);
                owned.remove(p);
            }
        }
        free.clear();
        cachedBytes = 0;
    }

    static boolean isOutOfMemory(CudaException e) {
        return String.valueOf(e.getMessage()).contains("CUDA_ERROR_OUT_OF_MEMORY");
    }

    String stats() {
        return "in use " + inUseBytes + " B (peak " + peakInUseBytes + "), cached " + cachedBytes + " B, "
                + deviceAllocations + " cuMemAlloc, " + reuses + " reuses";
    }

    long inUseBytes() {
        return inUseBytes;
    }

    long peakInUseBytes() {
        return peakInUseBytes;
    }

    void resetPeak() {
        peakInUseBytes = inUseBytes;
    }

    long cachedBytes() {
        return cachedBytes;
    }

    @Override
    public void close() {
        if (!owned.isEmpty()) {
            LOG.debug("cuda allocator closed with {} blocks ({} bytes) still in use by open buffers: freed now",
                    owned.size(), inUseBytes);
        }
        // No synchronisation here (the backend waited, or could not after a sticky error): every block is freed on
        // its own, so one failing cuMemFree does not keep the rest.
        ReleaseSteps r = new ReleaseSteps();
        for (CUdeviceptr p : owned) {
            r.run(() -> ctx.api.cuMemFree(p));
        }
        owned.clear();
        free.clear();
        cachedBytes = 0;
        capturedBlocks.clear();
        inUseBytes = 0;
        r.finish();
    }

    /** Blocks currently obtained from the driver (in use, cached or held for graphs). */
    int deviceBlocks() {
        return owned.size();
    }
}
