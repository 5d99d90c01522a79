package dev.kiln.cuda;

import jcuda.Pointer;

/**
 * The numeric device address behind a JCuda pointer, for kernels that take a table of addresses by value
 * ({@code kiln_sgd_many}). JCuda keeps the address and the byte offset of {@code withByteOffset} in protected
 * fields; a subclass reads them through the copy constructor without a driver call.
 */
final class DeviceAddress extends Pointer {

    private DeviceAddress(Pointer p) {
        super(p);
    }

    /** {@code p}'s address plus its byte offset; 0 for null. */
    static long of(Pointer p) {
        if (p == null) {
            return 0L;
        }
        DeviceAddress a = new DeviceAddress(p);
        return a.getNativePointer() + a.getByteOffset();
    }
}
