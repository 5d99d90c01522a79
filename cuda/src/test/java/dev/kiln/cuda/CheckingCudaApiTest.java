package dev.kiln.cuda;

import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;
import jcuda.jcudnn.cudnnTensorDescriptor;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The checking stand-in itself: each kind of wrong call it exists to catch is caught, and says what and where. */
class CheckingCudaApiTest {

    private static CudaContext context(CheckingCudaApi api) {
        return new CudaContext(api, 0, false);
    }

    @Test
    @DisplayName("a kernel launch that would run past a buffer names the kernel, the parameter and the overrun")
    void launchOverrun() {
        CheckingCudaApi api = new CheckingCudaApi();
        CudaContext ctx = context(api);
        CudaKernels kernels = new CudaKernels(ctx);
        CUdeviceptr x = new CUdeviceptr();
        CUdeviceptr y = new CUdeviceptr();
        CUdeviceptr flag = new CUdeviceptr();
        api.cuMemAlloc(x, 16 * 4);
        api.cuMemAlloc(y, 15 * 4);
        api.cuMemAlloc(flag, 4);
        CudaCallViolation v = assertThrows(CudaCallViolation.class,
                () -> kernels.launch("elementwise", "kiln_unary", 16, 0, x, y, 16L, flag));
        assertTrue(v.getMessage().contains("kiln_unary") && v.getMessage().contains("y needs 64 bytes")
                && v.getMessage().contains("4 bytes past its end"), v.getMessage());
        CudaCallViolation code = assertThrows(CudaCallViolation.class,
                () -> kernels.launch("elementwise", "kiln_unary", 16, 99, x, x, 16L, flag));
        assertTrue(code.getMessage().contains("operation code 99"), code.getMessage());
    }

    @Test
    @DisplayName("a launch on freed memory says where the block was allocated and freed")
    void useAfterFree() {
        CheckingCudaApi api = new CheckingCudaApi();
        CudaContext ctx = context(api);
        CudaKernels kernels = new CudaKernels(ctx);
        CUdeviceptr x = new CUdeviceptr();
        api.cuMemAlloc(x, 64);
        api.cuMemFree(x);
        CudaCallViolation v = assertThrows(CudaCallViolation.class,
                () -> kernels.launch("elementwise", "kiln_axpy", 16, 1f, x, x, 16L));
        assertTrue(v.getMessage().contains("not inside a live device allocation") && v.getMessage().contains("freed at"),
                v.getMessage());
    }

    @Test
    @DisplayName("a cuDNN call whose descriptors disagree (activation x and y shapes) is refused")
    void descriptorMismatch() {
        CheckingCudaApi api = new CheckingCudaApi();
        CudaContext ctx = context(api);
        CudnnOps ops = new CudnnOps(api, ctx.cudnn, false, 1 << 20, n -> null);
        cudnnTensorDescriptor a = Descriptors.tensor(api, 2, 3, 4, 5);
        cudnnTensorDescriptor b = Descriptors.tensor(api, 2, 3, 4, 6);
        CUdeviceptr p = new CUdeviceptr();
        api.cuMemAlloc(p, 2 * 3 * 4 * 6 * 4);
        CudaCallViolation v = assertThrows(CudaCallViolation.class, () -> api.cudnnSoftmaxForward(ctx.cudnn, 0, 1,
                Pointer.to(new float[]{1f}), a, p, Pointer.to(new float[]{0f}), b, p));
        assertTrue(v.getMessage().contains("yDesc is [2, 3, 4, 6] but xDesc is [2, 3, 4, 5]"), v.getMessage());
        ops.close();
    }

    @Test
    @DisplayName("leaks after close are listed with the code that created them")
    void leaksNamed() {
        CheckingCudaApi api = new CheckingCudaApi();
        CudaContext ctx = context(api);
        CachingAllocator allocator = new CachingAllocator(ctx);
        allocator.allocate(100);
        ctx.close();
        CudaCallViolation v = assertThrows(CudaCallViolation.class, api::assertAllReleased);
        assertTrue(v.getMessage().contains("device block of 512 bytes") && v.getMessage().contains("CachingAllocator"),
                v.getMessage());
    }
}
