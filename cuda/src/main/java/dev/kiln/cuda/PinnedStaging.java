package dev.kiln.cuda;

import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUevent;

import java.nio.ByteBuffer;

/**
 * Page-locked host buffers for uploads and downloads (pageable copies would stage through the driver's own bounce
 * buffer and block). Uploads are asynchronous: the host copies the data in, the DMA is queued on the stream, and an
 * event marks when that staging memory may be overwritten. A ring of {@value #SLOTS} slots is used in turn, so an
 * upload waits only for the one {@value #SLOTS} uploads back: a training step with two uploads (batch indices for
 * images and labels) lets the host queue about two steps ahead of the GPU instead of waiting for the previous step at
 * its second upload. Each slot grows to the largest transfer it has seen, up to a slot limit (1 GiB by default: a
 * {@code ByteBuffer} addresses at most 2 GiB); larger transfers go through the ring in pieces of at most that size.
 */
final class PinnedStaging implements AutoCloseable {

    static final int SLOTS = 4;
    static final long DEFAULT_SLOT_LIMIT = 1L << 30;
    private static final long MIN_SLOT = 1L << 20;

    private final CudaContext ctx;
    private final long slotLimit;
    private final Slot[] slots = new Slot[SLOTS];
    private int next;

    private static final class Slot {
        final CUevent done = new CUevent();
        Pointer host;
        ByteBuffer bytes;
        long capacity;
        boolean pending;
        boolean eventCreated;
    }

    PinnedStaging(CudaContext ctx) {
        this(ctx, DEFAULT_SLOT_LIMIT);
    }

    /** @param slotLimit the largest slot, in bytes (a multiple of 8, at most {@link Integer#MAX_VALUE}) */
    PinnedStaging(CudaContext ctx, long slotLimit) {
        if (slotLimit < 8 || slotLimit % 8 != 0 || slotLimit > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("cuda staging: slot limit must be a multiple of 8 in [8, 2^31), got " + slotLimit);
        }
        this.ctx = ctx;
        this.slotLimit = slotLimit;
        try {
            for (int i = 0; i < SLOTS; i++) {
                slots[i] = new Slot();
                ctx.api.cuEventCreate(slots[i].done, 0);
                slots[i].eventCreated = true;
            }
        } catch (RuntimeException e) {
            ReleaseSteps r = new ReleaseSteps();
            for (Slot s : slots) {
                if (s != null && s.eventCreated) {
                    r.run(() -> ctx.api.cuEventDestroy(s.done));
                }
            }
            throw r.attachTo(e);
        }
    }

    /** The size a slot of {@code capacity} bytes grows to for a transfer of {@code nbytes} (at most the slot limit). */
    static long grownCapacity(long capacity, long nbytes, long slotLimit) {
        return Math.min(slotLimit, Math.max(nbytes, Math.max(Math.min(MIN_SLOT, slotLimit), Math.min(capacity, slotLimit / 2) * 2)));
    }

    /** The next slot in the ring, after its previous transfer finished, with room for {@code nbytes} (<= slot limit). */
    private Slot acquire(long nbytes) {
        Slot s = slots[next];
        next = (next + 1) % SLOTS;
        if (s.pending) {
            ctx.api.cuEventSynchronize(s.done);
            s.pending = false;
        }
        if (nbytes > s.capacity) {
            freeHost(s);
            long cap = grownCapacity(s.capacity, nbytes, slotLimit);
            s.host = new Pointer();
            ctx.api.cuMemAllocHost(s.host, cap);
            s.capacity = cap;
            s.bytes = ctx.api.hostBuffer(s.host, cap);
        }
        s.bytes.clear();
        return s;
    }

    private void queueUpload(Slot s, CUdeviceptr dst, long nbytes) {
        ctx.api.cuMemcpyHtoDAsync(dst, s.host, nbytes, ctx.stream);
        ctx.api.cuEventRecord(s.done, ctx.stream);
        s.pending = true;
    }

    private int floatsPerPiece() {
        return (int) (slotLimit / Float.BYTES);
    }

    void upload(float[] src, int offset, int length, CUdeviceptr dst) {
        for (int done = 0; done < length; ) {
            int piece = Math.min(length - done, floatsPerPiece());
            long n = (long) piece * Float.BYTES;
            Slot s = acquire(n);
            s.bytes.asFloatBuffer().put(src, offset + done, piece);
            queueUpload(s, at(dst, (long) done * Float.BYTES), n);
            done += piece;
        }
    }

    void uploadInts(int[] src, CUdeviceptr dst) {
        for (int done = 0; done < src.length; ) {
            int piece = Math.min(src.length - done, floatsPerPiece());
            long n = (long) piece * Integer.BYTES;
            Slot s = acquire(n);
            s.bytes.asIntBuffer().put(src, done, piece);
            queueUpload(s, at(dst, (long) done * Integer.BYTES), n);
            done += piece;
        }
    }

    /**
     * Queues the copy after all earlier work, waits for it, and copies into {@code dst}. With {@code flag} non-null
     * the 4 bytes at {@code flag} travel in the same wait (a second copy right after the data, no second host wait)
     * and are returned; otherwise 0.
     */
    int download(CUdeviceptr src, float[] dst, int offset, int length, CUdeviceptr flag) {
        int result = 0;
        int done = 0;
        do {
            int piece = Math.min(length - done, floatsPerPiece());
            long n = (long) piece * Float.BYTES;
            boolean last = done + piece >= length;
            long flagAt = (n + 7) / 8 * 8;
            boolean withFlag = last && flag != null;
            Slot s = acquire(withFlag ? flagAt + Integer.BYTES : Math.max(n, 1));
            if (n > 0) {
                ctx.api.cuMemcpyDtoHAsync(s.host, at(src, (long) done * Float.BYTES), n, ctx.stream);
            }
            if (withFlag) {
                ctx.api.cuMemcpyDtoHAsync(s.host.withByteOffset(flagAt), flag, Integer.BYTES, ctx.stream);
            }
            ctx.synchronize();
            if (piece > 0) {
                s.bytes.asFloatBuffer().get(dst, offset + done, piece);
            }
            if (withFlag) {
                result = s.bytes.getInt((int) flagAt);
            }
            done += piece;
        } while (done < length);
        return result;
    }

    int downloadInt(CUdeviceptr src) {
        Slot s = acquire(Integer.BYTES);
        ctx.api.cuMemcpyDtoHAsync(s.host, src, Integer.BYTES, ctx.stream);
        ctx.synchronize();
        return s.bytes.getInt(0);
    }

    private static CUdeviceptr at(CUdeviceptr p, long byteOffset) {
        return byteOffset == 0 ? p : p.withByteOffset(byteOffset);
    }

    private void freeHost(Slot s) {
        if (s.host != null) {
            Pointer host = s.host;
            s.host = null; // forgotten even if the free fails: a second free of it would be worse than a leak
            s.bytes = null;
            s.capacity = 0;
            ctx.api.cuMemFreeHost(host);
        }
    }

    /** Frees every slot and event, each on its own, even when the stream cannot be synchronised (a sticky error). */
    @Override
    public void close() {
        ReleaseSteps r = new ReleaseSteps();
        r.run(ctx::synchronize);
        for (Slot s : slots) {
            if (s == null) {
                continue; // a constructor that failed part-way
            }
            s.pending = false;
            r.run(() -> freeHost(s));
            if (s.eventCreated) {
                r.run(() -> ctx.api.cuEventDestroy(s.done));
                s.eventCreated = false;
            }
        }
        r.finish();
    }
}
