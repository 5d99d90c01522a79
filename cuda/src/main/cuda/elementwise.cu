// Element-wise, broadcasting, reduction and gather kernels of Kiln's CUDA backend.
// Built into PTX by tools/build-ptx.sh (sm_75, PTX ISA rewritten to 8.0); launched from CudaKernels.java.
// Grid-stride loops throughout: any grid size is correct, the Java side picks one.
// Operation codes are declared in Java (code() of UnaryOp, ScalarOp, BinaryOp) and mirrored in ops.cuh.

#include "ops.cuh"

#define MAX_RANK 8

struct Broadcast {             // all int: passed from Java as an int[] (4-byte aligned, no padding)
    int rank;
    int outShape[MAX_RANK];
    int aStride[MAX_RANK];     // 0 along broadcast dimensions
    int bStride[MAX_RANK];
};

// A kernel that may run in place (an output may be an input, or it updates memory it reads) has no __restrict__ on
// its inputs: the compiler may read a const __restrict__ input through the non-coherent cache (ld.global.nc), which
// is undefined once the same memory is written in the kernel. KernelRestrictTest checks the sources and the PTX.
extern "C" __global__ void kiln_unary(int op, const float* x, float* y, long long n, int* error) {
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        float v = x[i];
        float r;
        switch (op) {
            case KILN_UNARY_NEG: r = -v; break;
            case KILN_UNARY_EXP: r = expf(v); break;
            case KILN_UNARY_LOG: r = logf(v); break;
            case KILN_UNARY_SQRT: r = sqrtf(v); break;
            case KILN_UNARY_ABS: r = fabsf(v); break;
            case KILN_UNARY_SQUARE: r = v * v; break;
            case KILN_UNARY_RECIPROCAL: r = 1.0f / v; break;
            default: r = kiln_unknown_op(error, KILN_KIND_UNARY, op); break;
        }
        y[i] = r;
    }
}

extern "C" __global__ void kiln_scalar(int op, const float* x, float s, float* y, long long n, int* error) {
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        float v = x[i];
        float r;
        switch (op) {
            case KILN_SCALAR_ADD: r = v + s; break;
            case KILN_SCALAR_MUL: r = v * s; break;
            case KILN_SCALAR_POW: r = s == 2.0f ? v * v : (s == 1.0f ? v : powf(v, s)); break;
            case KILN_SCALAR_RSUB: r = s - v; break;
            case KILN_SCALAR_MAX: r = (v != v || s != s) ? v + s : fmaxf(v, s); break;  // a NaN on either side propagates
            case KILN_SCALAR_MIN: r = (v != v || s != s) ? v + s : fminf(v, s); break;
            default: r = kiln_unknown_op(error, KILN_KIND_SCALAR, op); break;
        }
        y[i] = r;
    }
}

__device__ __forceinline__ float binary_op(int op, float a, float b, int* error) {
    switch (op) {
        case KILN_BINARY_ADD: return a + b;
        case KILN_BINARY_SUB: return a - b;
        case KILN_BINARY_MUL: return a * b;
        case KILN_BINARY_DIV: return a / b;
        case KILN_BINARY_MAX: return (a != a || b != b) ? a + b : fmaxf(a, b);   // NaN propagates
        case KILN_BINARY_MIN: return (a != a || b != b) ? a + b : fminf(a, b);
        default: return kiln_unknown_op(error, KILN_KIND_BINARY, op);
    }
}

// __grid_constant__: indexed in a loop, the by-value struct is read from parameter space, not copied per thread.
extern "C" __global__ void kiln_binary(int op, const float* a, const float* b, float* out, long long n,
                                       const __grid_constant__ Broadcast g, int* error) {
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        long long rem = i, ia = 0, ib = 0;
        for (int d = g.rank - 1; d >= 0; d--) {
            long long c = rem % g.outShape[d];
            rem /= g.outShape[d];
            ia += c * g.aStride[d];
            ib += c * g.bStride[d];
        }
        out[i] = binary_op(op, a[ia], b[ib], error);
    }
}

/** Same-shape fast path. */
extern "C" __global__ void kiln_binary_flat(int op, const float* a, const float* b, float* out, long long n, int* error) {
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        out[i] = binary_op(op, a[i], b[i], error);
    }
}

extern "C" __global__ void kiln_axpy(float alpha, const float* x, float* y, long long n) {
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        y[i] += alpha * x[i];
    }
}

/** out[i] = x[broadcast index of i]; aStride holds x's strides (0 along repeated dimensions). */
extern "C" __global__ void kiln_broadcast_to(const float* __restrict__ x, float* out, long long n,
                                             const __grid_constant__ Broadcast g) {
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        long long rem = i, ix = 0;
        for (int d = g.rank - 1; d >= 0; d--) {
            long long c = rem % g.outShape[d];
            rem /= g.outShape[d];
            ix += c * g.aStride[d];
        }
        out[i] = x[ix];
    }
}

struct Reduce {                // all int, like Broadcast
    int keptRank;              // dimensions that survive (outShape[d] == xShape[d]), outermost first
    int keptSize[MAX_RANK];
    int keptStride[MAX_RANK];  // stride in x
    int redRank;               // dimensions summed over
    int redSize[MAX_RANK];
    int redStride[MAX_RANK];
};

/**
 * sumTo: one block per output element; threads stride over the reduced index space in a fixed order and a
 * shared-memory tree adds the partial sums, so the result is deterministic. Block size must be 256.
 */
extern "C" __global__ void kiln_sum_to(const float* __restrict__ x, float* out, long long outCount, long long redCount, Reduce g) {
    __shared__ float part[256];
    for (long long o = blockIdx.x; o < outCount; o += gridDim.x) {
        long long rem = o, base = 0;
        for (int d = g.keptRank - 1; d >= 0; d--) {
            base += (rem % g.keptSize[d]) * g.keptStride[d];
            rem /= g.keptSize[d];
        }
        float acc = 0.0f;
        for (long long r = threadIdx.x; r < redCount; r += blockDim.x) {
            long long rr = r, off = base;
            for (int d = g.redRank - 1; d >= 0; d--) {
                off += (rr % g.redSize[d]) * g.redStride[d];
                rr /= g.redSize[d];
            }
            acc += x[off];
        }
        part[threadIdx.x] = acc;
        __syncthreads();
        for (int s = blockDim.x / 2; s > 0; s >>= 1) {
            if (threadIdx.x < s) {
                part[threadIdx.x] += part[threadIdx.x + s];
            }
            __syncthreads();
        }
        if (threadIdx.x == 0) {
            out[o] = part[0];
        }
        __syncthreads();
    }
}

/** First index of the maximum along the middle of (outer, extent, inner); NaN counts as the maximum. */
extern "C" __global__ void kiln_argmax(const float* __restrict__ x, int outer, int extent, int inner, float* out) {
    long long total = (long long) outer * inner;
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < total; i += (long long) gridDim.x * blockDim.x) {
        long long o = i / inner, in = i % inner;
        const float* p = x + o * (long long) extent * inner + in;
        int best = 0;
        float bv = p[0];
        if (bv == bv) {
            for (int e = 1; e < extent; e++) {
                float v = p[(long long) e * inner];
                if (v != v) { best = e; break; }
                if (v > bv) { bv = v; best = e; }
            }
        }
        out[i] = (float) best;
    }
}

extern "C" __global__ void kiln_gather_rows(const float* __restrict__ src, int rowLength, const int* __restrict__ rows,
                                           int rowCount, float* dst) {
    long long total = (long long) rowCount * rowLength;
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < total; i += (long long) gridDim.x * blockDim.x) {
        long long r = i / rowLength, c = i % rowLength;
        dst[i] = src[(long long) rows[r] * rowLength + c];
    }
}
