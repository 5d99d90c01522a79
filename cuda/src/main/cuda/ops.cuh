// Operation codes of Kiln's element-wise kernels and the device error flag they report to.
// The codes are declared in Java (code() of dev.kiln.backend.UnaryOp, ScalarOp, BinaryOp); OpCodesTest fails the
// build when a constant here and its Java declaration differ, or when a switch misses one.
#pragma once

#define KILN_UNARY_NEG 0
#define KILN_UNARY_EXP 1
#define KILN_UNARY_LOG 2
#define KILN_UNARY_SQRT 3
#define KILN_UNARY_ABS 4
#define KILN_UNARY_SQUARE 5
#define KILN_UNARY_RECIPROCAL 6

#define KILN_SCALAR_ADD 0
#define KILN_SCALAR_MUL 1
#define KILN_SCALAR_POW 2
#define KILN_SCALAR_RSUB 3
#define KILN_SCALAR_MAX 5
#define KILN_SCALAR_MIN 6

#define KILN_BINARY_ADD 0
#define KILN_BINARY_SUB 1
#define KILN_BINARY_MUL 2
#define KILN_BINARY_DIV 3
#define KILN_BINARY_MAX 4
#define KILN_BINARY_MIN 5

// Which switch rejected a code (the host names it in its exception).
#define KILN_KIND_UNARY 1
#define KILN_KIND_SCALAR 2
#define KILN_KIND_BINARY 3
#define KILN_KIND_ACTIVATION 4

/**
 * The device error flag (one int, 0 when nothing went wrong), read by CudaBackend at its next synchronisation point:
 * > 0 is a softmax cross-entropy target of row (flag - 1) outside its range; < 0 is an operation code no switch knows,
 * flag = -(kind * 65536 + code + 1). A kernel that meets an unknown code writes NaN and raises the flag instead of
 * computing some other function.
 */
__device__ __forceinline__ float kiln_unknown_op(int* error, int kind, int code) {
    atomicCAS(error, 0, -(kind * 65536 + code + 1));
    return __int_as_float(0x7fc00000);
}
