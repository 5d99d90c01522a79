package dev.kiln.cuda;

import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The address table of kiln_sgd_many is built from JCuda pointers without a GPU call; this pins the arithmetic. */
class DeviceAddressTest {

    /** A pointer with a chosen address, as cuMemAlloc would leave one (the constructor is protected in JCuda). */
    private static final class FakeDevicePointer extends CUdeviceptr {
        FakeDevicePointer(long address) {
            super(new CUdeviceptr());
            setAddress(address);
        }

        private void setAddress(long address) {
            try {
                java.lang.reflect.Field f = jcuda.NativePointerObject.class.getDeclaredField("nativePointer");
                f.setAccessible(true);
                f.setLong(this, address);
            } catch (ReflectiveOperationException e) {
                throw new AssertionError(e);
            }
        }
    }

    @Test
    void addressAndByteOffsetsAddUp() {
        CUdeviceptr base = new FakeDevicePointer(0x7f00_0000_1000L);
        assertEquals(0x7f00_0000_1000L, DeviceAddress.of(base));
        assertEquals(0x7f00_0000_1000L + 64, DeviceAddress.of(base.withByteOffset(64)));
        Pointer twice = base.withByteOffset(64).withByteOffset(8);
        assertEquals(0x7f00_0000_1000L + 72, DeviceAddress.of(twice));
        assertEquals(0L, DeviceAddress.of(null));
    }
}
