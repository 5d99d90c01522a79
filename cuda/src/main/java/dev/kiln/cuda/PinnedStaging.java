package dev.kiln.cuda;

import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUevent;
import jcuda.driver.JCudaDriver;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * A page-locked host buffer for uploads and downloads (pageable copies would stage through the driver's own bounce
 * buffer and block). Uploads are asynchronous: the host copies the batch in, the DMA is queued on the stream, and an
 * event marks when the staging memory may be overwritten again. Grows to the largest transfer seen.
 */
final class PinnedStaging implements AutoCloseable {

    private final CudaContext ctx;
    private final CUevent done = new CUevent();
    private Pointer host;
    private ByteBuffer bytes;
    private long capacity;
    private boolean pending;

    PinnedStaging(CudaContext ctx) {
        this.ctx = ctx;
        JCudaDriver.cuEventCreate(done, 0);
    }

    /** Waits for the previous transfer, grows if needed, and returns the buffer (position 0, native order). */
    private ByteBuffer acquire(long nbytes) {
        if (pending) {
            JCudaDriver.cuEventSynchronize(done);
            pending = false;
        }
        if (nbytes > capacity) {
            freeHost();
            long cap = Math.max(nbytes, Math.max(1L << 20, capacity * 2));
            host = new Pointer();
            JCudaDriver.cuMemAllocHost(host, cap);
            capacity = cap;
            bytes = host.getByteBuffer(0, cap).order(ByteOrder.nativeOrder());
        }
        bytes.clear();
        return bytes;
    }

    void upload(float[] src, int offset, int length, CUdeviceptr dst) {
        long n = (long) length * Float.BYTES;
        if (n == 0) {
            return;
        }
        ByteBuffer b = acquire(n);
        b.asFloatBuffer().put(src, offset, length);
        JCudaDriver.cuMemcpyHtoDAsync(dst, host, n, ctx.stream);
        JCudaDriver.cuEventRecord(done, ctx.stream);
        pending = true;
    }

    void uploadInts(int[] src, CUdeviceptr dst) {
        long n = (long) src.length * Integer.BYTES;
        if (n == 0) {
            return;
        }
        ByteBuffer b = acquire(n);
        b.asIntBuffer().put(src);
        JCudaDriver.cuMemcpyHtoDAsync(dst, host, n, ctx.stream);
        JCudaDriver.cuEventRecord(done, ctx.stream);
        pending = true;
    }

    /** Queues the copy after all earlier work, waits for it, and copies into {@code dst}. */
    void download(CUdeviceptr src, float[] dst, int offset, int length) {
        long n = (long) length * Float.BYTES;
        if (n == 0) {
            ctx.synchronize();
            return;
        }
        ByteBuffer b = acquire(n);
        JCudaDriver.cuMemcpyDtoHAsync(host, src, n, ctx.stream);
        ctx.synchronize();
        b.asFloatBuffer().get(dst, offset, length);
    }

    int downloadInt(CUdeviceptr src) {
        ByteBuffer b = acquire(Integer.BYTES);
        JCudaDriver.cuMemcpyDtoHAsync(host, src, Integer.BYTES, ctx.stream);
        ctx.synchronize();
        return b.getInt(0);
    }

    private void freeHost() {
        if (host != null) {
            JCudaDriver.cuMemFreeHost(host);
            host = null;
            bytes = null;
            capacity = 0;
        }
    }

    @Override
    public void close() {
        ctx.synchronize();
        pending = false;
        freeHost();
        JCudaDriver.cuEventDestroy(done);
    }
}
