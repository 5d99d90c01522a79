package dev.kiln.cuda;

import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUevent;
import jcuda.driver.JCudaDriver;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Page-locked host buffers for uploads and downloads (pageable copies would stage through the driver's own bounce
 * buffer and block). Uploads are asynchronous: the host copies the data in, the DMA is queued on the stream, and an
 * event marks when that staging memory may be overwritten. A ring of {@value #SLOTS} slots is used in turn, so an
 * upload waits only for the one {@value #SLOTS} uploads back: a training step with two uploads (batch indices for
 * images and labels) lets the host queue about two steps ahead of the GPU instead of waiting for the previous step at
 * its second upload. Each slot grows to the largest transfer it has seen.
 */
final class PinnedStaging implements AutoCloseable {

    static final int SLOTS = 4;

    private final CudaContext ctx;
    private final Slot[] slots = new Slot[SLOTS];
    private int next;

    private static final class Slot {
        final CUevent done = new CUevent();
        Pointer host;
        ByteBuffer bytes;
        long capacity;
        boolean pending;
    }

    PinnedStaging(CudaContext ctx) {
        this.ctx = ctx;
        for (int i = 0; i < SLOTS; i++) {
            slots[i] = new Slot();
            JCudaDriver.cuEventCreate(slots[i].done, 0);
        }
    }

    /** The next slot in the ring, after its previous transfer finished, with room for {@code nbytes}. */
    private Slot acquire(long nbytes) {
        Slot s = slots[next];
        next = (next + 1) % SLOTS;
        if (s.pending) {
            JCudaDriver.cuEventSynchronize(s.done);
            s.pending = false;
        }
        if (nbytes > s.capacity) {
            freeHost(s);
            long cap = Math.max(nbytes, Math.max(1L << 20, s.capacity * 2));
            s.host = new Pointer();
            JCudaDriver.cuMemAllocHost(s.host, cap);
            s.capacity = cap;
            s.bytes = s.host.getByteBuffer(0, cap).order(ByteOrder.nativeOrder());
        }
        s.bytes.clear();
        return s;
    }

    private void queueUpload(Slot s, CUdeviceptr dst, long nbytes) {
        JCudaDriver.cuMemcpyHtoDAsync(dst, s.host, nbytes, ctx.stream);
        JCudaDriver.cuEventRecord(s.done, ctx.stream);
        s.pending = true;
    }

    void upload(float[] src, int offset, int length, CUdeviceptr dst) {
        long n = (long) length * Float.BYTES;
        if (n == 0) {
            return;
        }
        Slot s = acquire(n);
        s.bytes.asFloatBuffer().put(src, offset, length);
        queueUpload(s, dst, n);
    }

    void uploadInts(int[] src, CUdeviceptr dst) {
        long n = (long) src.length * Integer.BYTES;
        if (n == 0) {
            return;
        }
        Slot s = acquire(n);
        s.bytes.asIntBuffer().put(src);
        queueUpload(s, dst, n);
    }

    /** Queues the copy after all earlier work, waits for it, and copies into {@code dst}. */
    void download(CUdeviceptr src, float[] dst, int offset, int length) {
        long n = (long) length * Float.BYTES;
        if (n == 0) {
            ctx.synchronize();
            return;
        }
        Slot s = acquire(n);
        JCudaDriver.cuMemcpyDtoHAsync(s.host, src, n, ctx.stream);
        ctx.synchronize();
        s.bytes.asFloatBuffer().get(dst, offset, length);
    }

    int downloadInt(CUdeviceptr src) {
        Slot s = acquire(Integer.BYTES);
        JCudaDriver.cuMemcpyDtoHAsync(s.host, src, Integer.BYTES, ctx.stream);
        ctx.synchronize();
        return s.bytes.getInt(0);
    }

    private static void freeHost(Slot s) {
        if (s.host != null) {
            JCudaDriver.cuMemFreeHost(s.host);
            s.host = null;
            s.bytes = null;
            s.capacity = 0;
        }
    }

    @Override
    public void close() {
        ctx.synchronize();
        for (Slot s : slots) {
            s.pending = false;
            freeHost(s);
            JCudaDriver.cuEventDestroy(s.done);
        }
    }
}
