// Activations of Kiln's CUDA kernels: forward from x, derivative from x and the forward output y.
// The codes are declared in Java (code() of dev.kiln.backend.Activation); OpCodesTest compares the two and fails on
// a constant or a case missing here. A new activation is a #define and a case in each switch below.
#pragma once
#include "ops.cuh"

#define KILN_ACT_IDENTITY 0
#define KILN_ACT_SIGMOID 1
#define KILN_ACT_RELU 2
#define KILN_ACT_TANH 3
#define KILN_ACT_RELU6 4

/** act(v). NaN propagates, as in PyTorch. */
__device__ __forceinline__ float kiln_activate(int act, float v, int* error) {
    switch (act) {
        case KILN_ACT_IDENTITY: return v;
        case KILN_ACT_SIGMOID: return 1.0f / (1.0f + expf(-v));
        case KILN_ACT_RELU: return v > 0.0f || v != v ? v : 0.0f;
        case KILN_ACT_TANH: return tanhf(v);
        case KILN_ACT_RELU6: return v != v ? v : fminf(fmaxf(v, 0.0f), 6.0f);
        default: return kiln_unknown_op(error, KILN_KIND_ACTIVATION, act);
    }
}

/** dy * act'(x), from whichever of x and y = act(x) is cheaper; the derivative of ReLU at 0 is 0. */
__device__ __forceinline__ float kiln_activate_grad(int act, float x, float y, float dy, int* error) {
    switch (act) {
        case KILN_ACT_IDENTITY: return dy;
        case KILN_ACT_SIGMOID: return dy * (y * (1.0f - y));
        case KILN_ACT_RELU: return y > 0.0f ? dy : 0.0f;
        case KILN_ACT_TANH: return dy * (1.0f - y * y);
        case KILN_ACT_RELU6: return y <= 0.0f || y >= 6.0f ? 0.0f : dy;
        default: return kiln_unknown_op(error, KILN_KIND_ACTIVATION, act);
    }
}
