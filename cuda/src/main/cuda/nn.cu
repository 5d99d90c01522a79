// Loss, batch-norm running statistics, pooling backward and optimizer kernels of Kiln's CUDA backend.
// Built into PTX by tools/build-ptx.sh (sm_75, PTX ISA rewritten to 8.0); launched from CudaKernels.java.

#include "activations.cuh"

// As in elementwise.cu: no __restrict__ on the inputs of a kernel that may run in place (KernelRestrictTest).

/**
 * Softmax cross-entropy, one block (256 threads) per row: probs = softmax(logits[row]), rowLoss[row] =
 * -log(probs[target]) computed as logsumexp - logit[target]. A target outside [0, classes) sets *error to
 * row + 1 (the host reads the flag at its next synchronisation point and throws) and gives a NaN loss.
 */
extern "C" __global__ void kiln_softmax_xent_rows(int rows, int classes, const float* __restrict__ logits,
                                                 const float* __restrict__ targets, float* probs, float* rowLoss,
                                                 int* error) {
    __shared__ float red[256];
    for (int r = blockIdx.x; r < rows; r += gridDim.x) {
        const float* x = logits + (long long) r * classes;
        float* p = probs + (long long) r * classes;
        float m = -INFINITY;
        for (int c = threadIdx.x; c < classes; c += blockDim.x) {
            float v = x[c];
            m = (v != v || v > m) ? v : m;
        }
        red[threadIdx.x] = m;
        __syncthreads();
        for (int s = blockDim.x / 2; s > 0; s >>= 1) {
            if (threadIdx.x < s) {
                float o = red[threadIdx.x + s];
                float t = red[threadIdx.x];
                red[threadIdx.x] = (o != o || o > t) ? o : t;
            }
            __syncthreads();
        }
        m = red[0];
        __syncthreads();
        float sum = 0.0f;
        for (int c = threadIdx.x; c < classes; c += blockDim.x) {
            sum += expf(x[c] - m);
        }
        red[threadIdx.x] = sum;
        __syncthreads();
        for (int s = blockDim.x / 2; s > 0; s >>= 1) {
            if (threadIdx.x < s) {
                red[threadIdx.x] += red[threadIdx.x + s];
            }
            __syncthreads();
        }
        sum = red[0];
        __syncthreads();
        float inv = 1.0f / sum;
        for (int c = threadIdx.x; c < classes; c += blockDim.x) {
            p[c] = expf(x[c] - m) * inv;
        }
        if (threadIdx.x == 0) {
            float tf = targets[r];
            int t = (int) tf;
            if (!(tf >= 0.0f) || t >= classes || (float) t != tf) {
                atomicCAS(error, 0, r + 1);
                rowLoss[r] = NAN;
            } else {
                rowLoss[r] = (logf(sum) + m) - x[t];
            }
        }
        __syncthreads();
    }
}

/** loss[0] = mean of rowLoss, one block of 256 threads in a fixed order (deterministic). */
extern "C" __global__ void kiln_mean(const float* __restrict__ v, int n, float* out) {
    __shared__ float red[256];
    float acc = 0.0f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        acc += v[i];
    }
    red[threadIdx.x] = acc;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) {
            red[threadIdx.x] += red[threadIdx.x + s];
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        out[0] = red[0] / (float) n;
    }
}

/** dLogits = (probs - onehot(targets)) * dLoss[0] / rows. */
extern "C" __global__ void kiln_softmax_xent_backward(int rows, int classes, const float* __restrict__ probs,
                                                     const float* __restrict__ targets, const float* __restrict__ dLoss,
                                                     float* dLogits) {
    long long total = (long long) rows * classes;
    float scale = dLoss[0] / (float) rows;
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < total; i += (long long) gridDim.x * blockDim.x) {
        int r = (int) (i / classes), c = (int) (i % classes);
        float onehot = ((int) targets[r] == c) ? 1.0f : 0.0f;
        dLogits[i] = (probs[i] - onehot) * scale;
    }
}

/**
 * PyTorch's running-statistics update from the saved mean and inverse std of a training forward:
 * var_unbiased = (1/invStd^2 - eps) * m/(m-1); running = (1-factor) * running + factor * batch (double math).
 */
extern "C" __global__ void kiln_bn_running_stats(int channels, const float* saveMean,
                                                const float* saveInvStd, float eps, double factor,
                                                double correction, float* runningMean, float* runningVar,
                                                const float* guard, float* skipped) {
    if (guard != nullptr && !isfinite(guard[0])) {
        if (skipped != nullptr && blockIdx.x == 0 && threadIdx.x == 0) {
            skipped[0] += 1.0f;
        }
        return;
    }
    for (int c = blockIdx.x * blockDim.x + threadIdx.x; c < channels; c += gridDim.x * blockDim.x) {
        double is = saveInvStd[c];
        double varUnbiased = (1.0 / (is * is) - (double) eps) * correction;
        runningMean[c] = (float) ((1.0 - factor) * runningMean[c] + factor * saveMean[c]);
        runningVar[c] = (float) ((1.0 - factor) * runningVar[c] + factor * varUnbiased);
    }
}

/**
 * Max-pool backward as a gather (no atomics, deterministic): each input position sums dy over the output windows
 * whose FIRST maximal position (row-major within the window) it is, as the SPI specifies.
 */
extern "C" __global__ void kiln_max_pool_backward(int n, int channels, int inH, int inW, int outH, int outW,
                                                 int kH, int kW, int sH, int sW, int pH, int pW,
                                                 const float* __restrict__ x, const float* __restrict__ y,
                                                 const float* __restrict__ dy, float* dx) {
    long long total = (long long) n * channels * inH * inW;
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < total; i += (long long) gridDim.x * blockDim.x) {
        int iw = (int) (i % inW);
        int ih = (int) ((i / inW) % inH);
        long long plane = i / ((long long) inH * inW);
        const float* xp = x + plane * inH * inW;
        const float* yp = y + plane * outH * outW;
        const float* dyp = dy + plane * outH * outW;
        // output rows/cols whose window contains (ih, iw)
        int ohLo = (ih + pH - kH + sH) / sH; if (ih + pH - kH + 1 <= 0) ohLo = 0;
        int ohHi = (ih + pH) / sH; if (ohHi > outH - 1) ohHi = outH - 1;
        int owLo = (iw + pW - kW + sW) / sW; if (iw + pW - kW + 1 <= 0) owLo = 0;
        int owHi = (iw + pW) / sW; if (owHi > outW - 1) owHi = outW - 1;
        float acc = 0.0f;
        for (int oh = ohLo; oh <= ohHi; oh++) {
            for (int ow = owLo; ow <= owHi; ow++) {
                int h0 = oh * sH - pH, w0 = ow * sW - pW;
                if (ih < h0 || ih >= h0 + kH || iw < w0 || iw >= w0 + kW) continue;
                float m = yp[oh * outW + ow];
                int first = -1;
                for (int a = 0; a < kH && first < 0; a++) {
                    int hh = h0 + a;
                    if (hh < 0 || hh >= inH) continue;
                    for (int b = 0; b < kW; b++) {
                        int ww = w0 + b;
                        if (ww < 0 || ww >= inW) continue;
                        float v = xp[hh * inW + ww];
                        if (v == m || (v != v && m != m)) { first = hh * inW + ww; break; }
                    }
                }
                if (first == ih * inW + iw) {
                    acc += dyp[oh * outW + ow];
                }
            }
        }
        dx[i] = acc;
    }
}

/** PyTorch SGD: g = grad + wd*p; buf = first ? g : mom*buf + (1-damp)*g; g = nesterov ? g + mom*buf : buf; p -= lr*g. */
__device__ __forceinline__ void kiln_sgd_element(long long i, float lr, float momentum, float oneMinusDampening,
                                                 int nesterov, float weightDecay, int firstStep, float* p,
                                                 const float* grad, float* buf) {
    float g = weightDecay != 0.0f ? grad[i] + weightDecay * p[i] : grad[i];
    if (momentum != 0.0f) {
        float b = firstStep ? g : momentum * buf[i] + oneMinusDampening * g;
        buf[i] = b;
        g = nesterov ? g + momentum * b : b;
    }
    p[i] -= lr * g;
}

/**
 * PyTorch Adam/AdamW, one fused pass over p, grad, m, v. stepSize = lr / (1 - beta1^t) and
 * bc2Sqrt = sqrt(1 - beta2^t) are prepared on the host in double; decay = 1 - lr*wd for AdamW.
 */
extern "C" __global__ void kiln_adam(float beta1, float beta2, float eps, float weightDecay, int decoupled, float decay,
                                    float stepSize, float bc2Sqrt, float* p, const float* grad,
                                    float* m, float* v, long long n) {
    float ob1 = 1.0f - beta1, ob2 = 1.0f - beta2;
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        float g = grad[i];
        float pi = p[i];
        if (weightDecay != 0.0f) {
            if (decoupled) {
                pi *= decay;
            } else {
                g += weightDecay * pi;
            }
        }
        float mi = beta1 * m[i] + ob1 * g;
        float vi = beta2 * v[i] + ob2 * g * g;
        m[i] = mi;
        v[i] = vi;
        float denom = sqrtf(vi) / bc2Sqrt + eps;
        p[i] = pi - stepSize * (mi / denom);
    }
}

/** Parameters per kiln_sgd_many launch: 32 x 3 pointers + 32 lengths keep the by-value table at 1 KiB. */
#define KILN_SGD_MAX_TENSORS 32

struct SgdTable {
    float* param[KILN_SGD_MAX_TENSORS];
    const float* grad[KILN_SGD_MAX_TENSORS];
    float* buf[KILN_SGD_MAX_TENSORS];
    long long n[KILN_SGD_MAX_TENSORS];
    int count;
};

/**
 * kiln_sgd_element for up to 32 parameters in one launch (the table travels by value, as in PyTorch's multi_tensor_apply).
 * lrDevice (nullable) overrides lrHost, so a replayed graph uses the current rate; a non-finite guard[0] (the loss)
 * skips the whole update, and the first launch of a step counts the skip in skipped[0].
 */
extern "C" __global__ void kiln_sgd_many(SgdTable t, const float* lrDevice, float lrHost, const float* guard,
                                        float* skipped, int countSkip, float momentum, float oneMinusDampening,
                                        int nesterov, float weightDecay, int firstStep) {
    if (guard != nullptr && !isfinite(guard[0])) {
        if (countSkip && skipped != nullptr && blockIdx.x == 0 && threadIdx.x == 0) {
            skipped[0] += 1.0f;
        }
        return;
    }
    float lr = lrDevice != nullptr ? lrDevice[0] : lrHost;
    long long stride = (long long) gridDim.x * blockDim.x;
    long long start = blockIdx.x * (long long) blockDim.x + threadIdx.x;
    for (int k = 0; k < t.count; k++) {
        for (long long i = start; i < t.n[k]; i += stride) {
            kiln_sgd_element(i, lr, momentum, oneMinusDampening, nesterov, weightDecay, firstStep, t.param[k],
                             t.grad[k], t.buf[k]);
        }
    }
}

/** y = act(x); y may be x. */
extern "C" __global__ void kiln_activation_forward(int act, const float* x, float* y, long long n, int* error) {
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        y[i] = kiln_activate(act, x[i], error);
    }
}

/** dx = dy * act'(x), with y = act(x); dx may be dy. */
extern "C" __global__ void kiln_activation_backward(int act, const float* x, const float* y,
                                                   const float* dy, float* dx, long long n, int* error) {
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        dx[i] = kiln_activate_grad(act, x[i], y[i], dy[i], error);
    }
}

/** y = act(x + bias[c]) over (outer, channels, inner): a layer's bias and activation in one pass. y may be x. */
extern "C" __global__ void kiln_bias_activation(int act, long long n, int channels, int inner,
                                               const float* x, const float* bias, float* y, int* error) {
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        int c = (int) ((i / inner) % channels);
        y[i] = kiln_activate(act, x[i] + bias[c], error);
    }
}

/**
 * Inference batch norm then activation, one pass: y = act((x - mean[c]) * scale + beta[c]) with
 * scale = gamma[c] / sqrt(var[c] + eps) in double, as the CPU backend computes it. gamma and beta are nullable.
 */
extern "C" __global__ void kiln_bn_inference_activation(int act, long long n, int channels, int spatial,
                                                       const float* x, const float* gamma,
                                                       const float* beta, const float* mean,
                                                       const float* var, float eps, float* y,
                                                       int* error) {
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        int c = (int) ((i / spatial) % channels);
        double g = gamma != nullptr ? (double) gamma[c] : 1.0;
        float scale = (float) (g / sqrt((double) var[c] + (double) eps));
        float b = beta != nullptr ? beta[c] : 0.0f;
        y[i] = kiln_activate(act, (x[i] - mean[c]) * scale + b, error);
    }
}

/**
 * dst[o, dstStart + j, i] = src[o, srcStart + j, i] for j < length, viewing src as (outer, srcExtent, inner) and dst as
 * (outer, dstExtent, inner): narrow, cat and stack.
 */
extern "C" __global__ void kiln_copy_slice(int outer, int srcExtent, int srcStart, int dstExtent, int dstStart,
                                          int length, int inner, const float* __restrict__ src, float* dst) {
    long long run = (long long) length * inner;
    long long total = (long long) outer * run;
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < total; i += (long long) gridDim.x * blockDim.x) {
        long long o = i / run;
        long long r = i - o * run;
        dst[(o * dstExtent + dstStart) * inner + r] = src[(o * srcExtent + srcStart) * inner + r];
    }
}

/** PyTorch's adaptive window: [floor(o * in / out), ceil((o + 1) * in / out)). */
__device__ __forceinline__ int kiln_adaptive_start(int o, int in, int out) {
    return (int) ((long long) o * in / out);
}

__device__ __forceinline__ int kiln_adaptive_end(int o, int in, int out) {
    return (int) (((long long) (o + 1) * in + out - 1) / out);
}

/** The outputs whose windows hold input index i: [floor(i * out / in), ceil((i + 1) * out / in) - 1]. */
__device__ __forceinline__ int kiln_adaptive_first(int i, int in, int out) {
    return (int) ((long long) i * out / in);
}

__device__ __forceinline__ int kiln_adaptive_last(int i, int in, int out) {
    return (int) (((long long) (i + 1) * out + in - 1) / in) - 1;
}

/** Adaptive average pooling, one thread per output: the window's sum divided by its height, then its width. */
extern "C" __global__ void kiln_adaptive_avg_forward(int planes, int inH, int inW, int outH, int outW,
                                                    const float* __restrict__ x, float* __restrict__ y) {
    long long total = (long long) planes * outH * outW;
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < total; i += (long long) gridDim.x * blockDim.x) {
        int ow = (int) (i % outW);
        int oh = (int) ((i / outW) % outH);
        const float* xp = x + (i / ((long long) outH * outW)) * inH * inW;
        int h0 = kiln_adaptive_start(oh, inH, outH), h1 = kiln_adaptive_end(oh, inH, outH);
        int w0 = kiln_adaptive_start(ow, inW, outW), w1 = kiln_adaptive_end(ow, inW, outW);
        float sum = 0.0f;
        for (int h = h0; h < h1; h++) {
            for (int w = w0; w < w1; w++) {
                sum += xp[h * inW + w];
            }
        }
        y[i] = sum / (float) (h1 - h0) / (float) (w1 - w0);
    }
}

/** Adaptive average pooling backward as a gather, one thread per input, windows in output order. */
extern "C" __global__ void kiln_adaptive_avg_backward(int planes, int inH, int inW, int outH, int outW,
                                                     const float* __restrict__ dy, float* __restrict__ dx) {
    long long total = (long long) planes * inH * inW;
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < total; i += (long long) gridDim.x * blockDim.x) {
        int iw = (int) (i % inW);
        int ih = (int) ((i / inW) % inH);
        const float* dyp = dy + (i / ((long long) inH * inW)) * outH * outW;
        int oh0 = kiln_adaptive_first(ih, inH, outH), oh1 = kiln_adaptive_last(ih, inH, outH);
        int ow0 = kiln_adaptive_first(iw, inW, outW), ow1 = kiln_adaptive_last(iw, inW, outW);
        float acc = 0.0f;
        for (int oh = oh0; oh <= oh1; oh++) {
            float kh = (float) (kiln_adaptive_end(oh, inH, outH) - kiln_adaptive_start(oh, inH, outH));
            for (int ow = ow0; ow <= ow1; ow++) {
                float kw = (float) (kiln_adaptive_end(ow, inW, outW) - kiln_adaptive_start(ow, inW, outW));
                acc += dyp[oh * outW + ow] / kh / kw;
            }
        }
        dx[i] = acc;
    }
}

/** Adaptive max pooling: the first maximum of the window (the last NaN, if any) and its index in the plane. */
extern "C" __global__ void kiln_adaptive_max_forward(int planes, int inH, int inW, int outH, int outW,
                                                    const float* __restrict__ x, float* __restrict__ y,
                                                    float* __restrict__ indices) {
    long long total = (long long) planes * outH * outW;
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < total; i += (long long) gridDim.x * blockDim.x) {
        int ow = (int) (i % outW);
        int oh = (int) ((i / outW) % outH);
        const float* xp = x + (i / ((long long) outH * outW)) * inH * inW;
        int h0 = kiln_adaptive_start(oh, inH, outH), h1 = kiln_adaptive_end(oh, inH, outH);
        int w0 = kiln_adaptive_start(ow, inW, outW), w1 = kiln_adaptive_end(ow, inW, outW);
        float m = -INFINITY;
        int at = h0 * inW + w0;
        for (int h = h0; h < h1; h++) {
            for (int w = w0; w < w1; w++) {
                float v = xp[h * inW + w];
                if (v > m || v != v) {
                    m = v;
                    at = h * inW + w;
                }
            }
        }
        y[i] = m;
        indices[i] = (float) at;
    }
}

/** Adaptive max pooling backward as a gather: each input sums the dy of the windows whose index names it. */
extern "C" __global__ void kiln_adaptive_max_backward(int planes, int inH, int inW, int outH, int outW,
                                                     const float* __restrict__ indices, const float* __restrict__ dy,
                                                     float* __restrict__ dx) {
    long long total = (long long) planes * inH * inW;
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < total; i += (long long) gridDim.x * blockDim.x) {
        int iw = (int) (i % inW);
        int ih = (int) ((i / inW) % inH);
        long long plane = i / ((long long) inH * inW);
        const float* ip = indices + plane * outH * outW;
        const float* dyp = dy + plane * outH * outW;
        float here = (float) (ih * inW + iw);
        int oh0 = kiln_adaptive_first(ih, inH, outH), oh1 = kiln_adaptive_last(ih, inH, outH);
        int ow0 = kiln_adaptive_first(iw, inW, outW), ow1 = kiln_adaptive_last(iw, inW, outW);
        float acc = 0.0f;
        for (int oh = oh0; oh <= oh1; oh++) {
            for (int ow = ow0; ow <= ow1; ow++) {
                if (ip[oh * outW + ow] == here) {
                    acc += dyp[oh * outW + ow];
                }
            }
        }
        dx[i] = acc;
    }
}

/** Nearest upsampling by integer factors: y[oh, ow] = x[oh / sH, ow / sW]. */
extern "C" __global__ void kiln_upsample_nearest_forward(int planes, int inH, int inW, int sH, int sW,
                                                        const float* __restrict__ x, float* __restrict__ y) {
    int outH = inH * sH, outW = inW * sW;
    long long total = (long long) planes * outH * outW;
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < total; i += (long long) gridDim.x * blockDim.x) {
        int ow = (int) (i % outW);
        int oh = (int) ((i / outW) % outH);
        long long plane = i / ((long long) outH * outW);
        y[i] = x[plane * inH * inW + (oh / sH) * inW + ow / sW];
    }
}

/** Its backward as a gather: each input sums its sH x sW block of dy, row-major. */
extern "C" __global__ void kiln_upsample_nearest_backward(int planes, int inH, int inW, int sH, int sW,
                                                         const float* __restrict__ dy, float* __restrict__ dx) {
    int outW = inW * sW;
    long long total = (long long) planes * inH * inW;
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < total; i += (long long) gridDim.x * blockDim.x) {
        int iw = (int) (i % inW);
        int ih = (int) ((i / inW) % inH);
        long long plane = i / ((long long) inH * inW);
        const float* dyp = dy + plane * inH * sH * outW;
        float acc = 0.0f;
        for (int a = 0; a < sH; a++) {
            for (int b = 0; b < sW; b++) {
                acc += dyp[(ih * sH + a) * outW + iw * sW + b];
            }
        }
        dx[i] = acc;
    }
}
