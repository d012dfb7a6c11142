"""CUDA C sources of the fused GPU kernels in :mod:`deepgrad.kernels.cuda_fused` (``cupy.RawKernel`` bodies).

Each source is a complete ``extern "C" __global__`` kernel (no templates: one compile per dtype, with ``T``
bound by :func:`source`), written for NVRTC: no headers, only CUDA's built-in maths. Kept apart from the
launch code so tests/test_gpu_fused.py can compile every one with ``nvcc --ptx`` on a machine without a GPU.
Every kernel uses a grid-stride loop (any grid size covers any ``n``) and 64-bit indices.
"""

from __future__ import annotations

PRELUDE = r"""
typedef {T} T;
typedef {ACC} ACC;
__device__ __forceinline__ float dg_exp(float a) { return expf(a); }
__device__ __forceinline__ double dg_exp(double a) { return exp(a); }
__device__ __forceinline__ float dg_log(float a) { return logf(a); }
__device__ __forceinline__ double dg_log(double a) { return log(a); }
__device__ __forceinline__ float dg_tanh(float a) { return tanhf(a); }
__device__ __forceinline__ double dg_tanh(double a) { return tanh(a); }
__device__ __forceinline__ float dg_sqrt(float a) { return sqrtf(a); }
__device__ __forceinline__ double dg_sqrt(double a) { return sqrt(a); }
__device__ __forceinline__ float dg_abs(float a) { return fabsf(a); }
__device__ __forceinline__ double dg_abs(double a) { return fabs(a); }
__device__ __forceinline__ float dg_nan(float) { return __int_as_float(0x7fc00000); }
__device__ __forceinline__ double dg_nan(double) { return __longlong_as_double(0x7ff8000000000000LL); }
/* the stable logistic: exp of a non-positive number only, as the NumPy path's _sigmoid */
__device__ __forceinline__ T dg_sigmoid(T a) {
    T e = dg_exp(-dg_abs(a));
    return a >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
}
#define GRID_STRIDE(idx, n) \
    for (long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x; idx < (n); \
         idx += (long long)gridDim.x * blockDim.x)
"""

# torch's LSTM cell from the pre-activations (x W_ih^T + b_ih + h W_hh^T + b_hh), gates (i, f, g, o). ``gates``
# is overwritten with the activations (what backward needs); h may not alias c_prev, c may.
LSTM_CELL_FORWARD = r"""
extern "C" __global__ void lstm_cell_forward(T* gates, const T* c_prev, T* c, T* tanh_c, T* h,
                                             long long n, long long hidden) {
    GRID_STRIDE(idx, n) {
        long long row = idx / hidden, j = idx - row * hidden;
        T* g = gates + row * 4 * hidden;
        T ig = dg_sigmoid(g[j]), fg = dg_sigmoid(g[hidden + j]);
        T gg = dg_tanh(g[2 * hidden + j]), og = dg_sigmoid(g[3 * hidden + j]);
        g[j] = ig; g[hidden + j] = fg; g[2 * hidden + j] = gg; g[3 * hidden + j] = og;
        T cn = fg * c_prev[idx] + ig * gg;
        T tc = dg_tanh(cn);
        c[idx] = cn; tanh_c[idx] = tc; h[idx] = og * tc;
    }
}
"""

# dh: gradient reaching h_t; dc_next: gradient reaching c_t from step t+1 (dc_prev may alias it).
LSTM_CELL_BACKWARD = r"""
extern "C" __global__ void lstm_cell_backward(const T* dh, const T* dc_next, const T* acts, const T* tanh_c,
                                              const T* c_prev, T* dgates, T* dc_prev, long long n, long long hidden) {
    GRID_STRIDE(idx, n) {
        long long row = idx / hidden, j = idx - row * hidden;
        const T* a = acts + row * 4 * hidden;
        T* d = dgates + row * 4 * hidden;
        T ig = a[j], fg = a[hidden + j], gg = a[2 * hidden + j], og = a[3 * hidden + j];
        T tc = tanh_c[idx], dhv = dh[idx];
        T dc = dhv * og * (T(1) - tc * tc) + dc_next[idx];
        d[j] = dc * gg * ig * (T(1) - ig);
        d[hidden + j] = dc * c_prev[idx] * fg * (T(1) - fg);
        d[2 * hidden + j] = dc * ig * (T(1) - gg * gg);
        d[3 * hidden + j] = dhv * tc * og * (T(1) - og);
        dc_prev[idx] = dc * fg;
    }
}
"""

# torch's GRU cell: gi = x W_ih^T + b_ih, gh = h W_hh^T + b_hh, gates (r, z, n);
# n = tanh(gi_n + r * gh_n), h' = (1 - z) * n + z * h. h may alias h_prev.
GRU_CELL_FORWARD = r"""
extern "C" __global__ void gru_cell_forward(const T* gi, const T* gh, const T* h_prev, T* acts, T* hn, T* h,
                                            long long n, long long hidden) {
    GRID_STRIDE(idx, n) {
        long long row = idx / hidden, j = idx - row * hidden;
        const T* x = gi + row * 3 * hidden;
        const T* s = gh + row * 3 * hidden;
        T* a = acts + row * 3 * hidden;
        T r = dg_sigmoid(x[j] + s[j]), z = dg_sigmoid(x[hidden + j] + s[hidden + j]);
        T hnv = s[2 * hidden + j];
        T nv = dg_tanh(x[2 * hidden + j] + r * hnv);
        T hp = h_prev[idx];
        a[j] = r; a[hidden + j] = z; a[2 * hidden + j] = nv;
        hn[idx] = hnv;
        h[idx] = (T(1) - z) * nv + z * hp;
    }
}
"""

# dgi / dgh: gradients of the input / hidden pre-activations (dgh's n-part carries r); dh_prev gets only the
# direct z * dh term (the caller adds dgh @ W_hh). dh_prev may alias dh.
GRU_CELL_BACKWARD = r"""
extern "C" __global__ void gru_cell_backward(const T* dh, const T* acts, const T* hn, const T* h_prev, T* dgi,
                                             T* dgh, T* dh_prev, long long n, long long hidden) {
    GRID_STRIDE(idx, n) {
        long long row = idx / hidden, j = idx - row * hidden;
        const T* a = acts + row * 3 * hidden;
        T r = a[j], z = a[hidden + j], nv = a[2 * hidden + j];
        T dhv = dh[idx];
        T dnp = dhv * (T(1) - z) * (T(1) - nv * nv);
        T drp = dnp * hn[idx] * r * (T(1) - r);
        T dzp = dhv * (h_prev[idx] - nv) * z * (T(1) - z);
        T* di = dgi + row * 3 * hidden;
        T* ds = dgh + row * 3 * hidden;
        di[j] = drp; di[hidden + j] = dzp; di[2 * hidden + j] = dnp;
        ds[j] = drp; ds[hidden + j] = dzp; ds[2 * hidden + j] = dnp * r;
        dh_prev[idx] = dhv * z;
    }
}
"""

# One block per row (blockDim.x == 256): the row's log-sum-exp (max-shifted) and the loss lse - x[target];
# 0 for ignore_index rows, NaN for a target outside [0, classes) (the op checks targets before launching).
CROSS_ENTROPY_FORWARD = r"""
extern "C" __global__ void cross_entropy_forward(const T* logits, const long long* target, T* loss, T* lse,
                                                 long long rows, long long classes, long long ignore_index) {
    __shared__ ACC buf[256];
    int tid = threadIdx.x;
    for (long long row = blockIdx.x; row < rows; row += gridDim.x) {
        const T* x = logits + row * classes;
        ACC m = (ACC)x[0];
        for (long long c = tid; c < classes; c += blockDim.x) m = (ACC)x[c] > m ? (ACC)x[c] : m;
        buf[tid] = m;
        __syncthreads();
        for (int s = blockDim.x / 2; s > 0; s >>= 1) {
            if (tid < s && buf[tid + s] > buf[tid]) buf[tid] = buf[tid + s];
            __syncthreads();
        }
        m = buf[0];
        __syncthreads();
        ACC total = 0;
        for (long long c = tid; c < classes; c += blockDim.x) total += dg_exp((ACC)x[c] - m);
        buf[tid] = total;
        __syncthreads();
        for (int s = blockDim.x / 2; s > 0; s >>= 1) {
            if (tid < s) buf[tid] += buf[tid + s];
            __syncthreads();
        }
        if (tid == 0) {
            ACC l = m + dg_log(buf[0]);
            long long t = target[row];
            lse[row] = (T)l;
            if (t == ignore_index) loss[row] = T(0);
            else if (t < 0 || t >= classes) loss[row] = dg_nan(T(0));
            else loss[row] = (T)(l - (ACC)x[t]);
        }
        __syncthreads();
    }
}
"""

# d logits = grad_rows[row] * (softmax - onehot(target)); grad_rows is 0 on ignored rows.
CROSS_ENTROPY_BACKWARD = r"""
extern "C" __global__ void cross_entropy_backward(const T* logits, const long long* target, const T* lse,
                                                  const T* grad_rows, T* dlogits, long long n, long long classes) {
    GRID_STRIDE(idx, n) {
        long long row = idx / classes, c = idx - row * classes;
        T p = dg_exp(logits[idx] - lse[row]);
        dlogits[idx] = grad_rows[row] * (p - (c == target[row] ? T(1) : T(0)));
    }
}
"""

# One block per channel (blockDim.x == 256) of a contiguous (N, C, L) input: the batch mean, the biased
# variance (two passes, no E[x^2] - E[x]^2 cancellation) and 1/sqrt(var + eps), summed in ACC precision.
BATCH_NORM_STATS = r"""
extern "C" __global__ void batch_norm_stats(const T* x, T* mean, T* var, T* invstd, long long N, long long C,
                                            long long L, double eps) {
    __shared__ ACC buf[256];
    int tid = threadIdx.x;
    long long count = N * L;
    for (long long c = blockIdx.x; c < C; c += gridDim.x) {
        ACC total = 0;
        for (long long k = tid; k < count; k += blockDim.x) {
            long long b = k / L;
            total += (ACC)x[(b * C + c) * L + (k - b * L)];
        }
        buf[tid] = total;
        __syncthreads();
        for (int s = blockDim.x / 2; s > 0; s >>= 1) {
            if (tid < s) buf[tid] += buf[tid + s];
            __syncthreads();
        }
        ACC mu = buf[0] / (ACC)count;
        __syncthreads();
        ACC sq = 0;
        for (long long k = tid; k < count; k += blockDim.x) {
            long long b = k / L;
            ACC d = (ACC)x[(b * C + c) * L + (k - b * L)] - mu;
            sq += d * d;
        }
        buf[tid] = sq;
        __syncthreads();
        for (int s = blockDim.x / 2; s > 0; s >>= 1) {
            if (tid < s) buf[tid] += buf[tid + s];
            __syncthreads();
        }
        if (tid == 0) {
            ACC v = buf[0] / (ACC)count;
            mean[c] = (T)mu;
            var[c] = (T)v;
            invstd[c] = (T)(ACC(1) / dg_sqrt(v + (ACC)eps));
        }
        __syncthreads();
    }
}
"""

# xhat = (x - mean[c]) * invstd[c]; out = xhat * weight[c] + bias[c] (has_weight / has_bias: 0 or 1).
BATCH_NORM_APPLY = r"""
extern "C" __global__ void batch_norm_apply(const T* x, const T* mean, const T* invstd, const T* weight,
                                            const T* bias, T* xhat, T* out, long long n, long long C, long long L,
                                            int has_weight, int has_bias) {
    GRID_STRIDE(idx, n) {
        long long c = (idx / L) % C;
        T xh = (x[idx] - mean[c]) * invstd[c];
        xhat[idx] = xh;
        T y = has_weight ? xh * weight[c] : xh;
        out[idx] = has_bias ? y + bias[c] : y;
    }
}
"""

# One block per channel: sum(g) and sum(g * xhat), the bias and weight gradients.
BATCH_NORM_GRAD_SUMS = r"""
extern "C" __global__ void batch_norm_grad_sums(const T* g, const T* xhat, T* gsum, T* gxsum, long long N,
                                                long long C, long long L) {
    __shared__ ACC buf[256];
    __shared__ ACC buf2[256];
    int tid = threadIdx.x;
    long long count = N * L;
    for (long long c = blockIdx.x; c < C; c += gridDim.x) {
        ACC s1 = 0, s2 = 0;
        for (long long k = tid; k < count; k += blockDim.x) {
            long long b = k / L;
            long long at = (b * C + c) * L + (k - b * L);
            s1 += (ACC)g[at];
            s2 += (ACC)g[at] * (ACC)xhat[at];
        }
        buf[tid] = s1;
        buf2[tid] = s2;
        __syncthreads();
        for (int s = blockDim.x / 2; s > 0; s >>= 1) {
            if (tid < s) { buf[tid] += buf[tid + s]; buf2[tid] += buf2[tid + s]; }
            __syncthreads();
        }
        if (tid == 0) { gsum[c] = (T)buf[0]; gxsum[c] = (T)buf2[0]; }
        __syncthreads();
    }
}
"""

# dx = scale[c] * (g - gsum[c] / M - xhat * gxsum[c] / M), scale = invstd * weight, M = N * L.
BATCH_NORM_BACKWARD_INPUT = r"""
extern "C" __global__ void batch_norm_backward_input(const T* g, const T* xhat, const T* scale, const T* gsum,
                                                     const T* gxsum, T* dx, long long n, long long C, long long L,
                                                     long long count) {
    GRID_STRIDE(idx, n) {
        long long c = (idx / L) % C;
        T inv = T(1) / (T)count;
        dx[idx] = scale[c] * (g[idx] - gsum[c] * inv - xhat[idx] * (gxsum[c] * inv));
    }
}
"""

# Multi-tensor updates: one launch over every element of every parameter. ptrs are device arrays of raw
# pointers, offsets the running element counts (num_tensors + 1 entries); a binary search finds the tensor.
MULTI_TENSOR_FIND = r"""
__device__ __forceinline__ int dg_find_tensor(const long long* offsets, int num_tensors, long long idx) {
    int lo = 0, hi = num_tensors - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (offsets[mid] <= idx) lo = mid; else hi = mid - 1;
    }
    return lo;
}
"""

# torch.optim.Adam (amsgrad off): m = m + (1-b1)(g - m), v = b2 v + (1-b2) g^2,
# p -= step_size * m / (sqrt(v) / bias2_sqrt + eps); decoupled: p *= 1 - lr * wd first (AdamW).
ADAM_MULTI_TENSOR = MULTI_TENSOR_FIND + r"""
extern "C" __global__ void adam_multi_tensor(const unsigned long long* params, const unsigned long long* grads,
                                             const unsigned long long* exp_avgs,
                                             const unsigned long long* exp_avg_sqs, const long long* offsets,
                                             int num_tensors, long long total, double lr, double beta1,
                                             double beta2, double eps, double weight_decay, double step_size,
                                             double bias2_sqrt, int decoupled, int maximize) {
    GRID_STRIDE(idx, total) {
        int t = dg_find_tensor(offsets, num_tensors, idx);
        long long k = idx - offsets[t];
        T* p = (T*)params[t];
        T* m = (T*)exp_avgs[t];
        T* v = (T*)exp_avg_sqs[t];
        T g = ((const T*)grads[t])[k];
        if (maximize) g = -g;
        if (weight_decay != 0.0) {
            if (decoupled) p[k] *= (T)(1.0 - lr * weight_decay);
            else g += (T)weight_decay * p[k];
        }
        T vk = (T)beta2 * v[k] + (T)(1.0 - beta2) * g * g;
        T mk = m[k] + (T)(1.0 - beta1) * (g - m[k]);
        m[k] = mk;
        v[k] = vk;
        p[k] -= (T)step_size * (mk / (dg_sqrt(vk) / (T)bias2_sqrt + (T)eps));
    }
}
"""

# torch.optim.SGD: g (+ wd p); buf = g on the first step, else momentum buf + (1 - dampening) g;
# nesterov: g + momentum buf, else buf; p -= lr * that. momentum == 0 never touches bufs.
SGD_MULTI_TENSOR = MULTI_TENSOR_FIND + r"""
extern "C" __global__ void sgd_multi_tensor(const unsigned long long* params, const unsigned long long* grads,
                                            const unsigned long long* bufs, const long long* offsets,
                                            int num_tensors, long long total, double lr, double momentum,
                                            double dampening, double weight_decay, int nesterov, int maximize,
                                            int first_step) {
    GRID_STRIDE(idx, total) {
        int t = dg_find_tensor(offsets, num_tensors, idx);
        long long k = idx - offsets[t];
        T* p = (T*)params[t];
        T g = ((const T*)grads[t])[k];
        if (maximize) g = -g;
        if (weight_decay != 0.0) g += (T)weight_decay * p[k];
        if (momentum != 0.0) {
            T* b = (T*)bufs[t];
            T bk = first_step ? g : (T)momentum * b[k] + (T)(1.0 - dampening) * g;
            b[k] = bk;
            g = nesterov ? g + (T)momentum * bk : bk;
        }
        p[k] -= (T)lr * g;
    }
}
"""

KERNELS = {
    "lstm_cell_forward": LSTM_CELL_FORWARD, "lstm_cell_backward": LSTM_CELL_BACKWARD,
    "gru_cell_forward": GRU_CELL_FORWARD, "gru_cell_backward": GRU_CELL_BACKWARD,
    "cross_entropy_forward": CROSS_ENTROPY_FORWARD, "cross_entropy_backward": CROSS_ENTROPY_BACKWARD,
    "batch_norm_stats": BATCH_NORM_STATS, "batch_norm_apply": BATCH_NORM_APPLY,
    "batch_norm_grad_sums": BATCH_NORM_GRAD_SUMS, "batch_norm_backward_input": BATCH_NORM_BACKWARD_INPUT,
    "adam_multi_tensor": ADAM_MULTI_TENSOR, "sgd_multi_tensor": SGD_MULTI_TENSOR,
}


def source(name: str, dtype: str) -> str:
    """The full CUDA source of kernel ``name`` for element type ``dtype`` ("float32" or "float64").

    >>> "extern \\"C\\" __global__ void lstm_cell_forward" in source("lstm_cell_forward", "float32")
    True
    """
    ctype = {"float32": "float", "float64": "double"}[dtype]
    # reductions accumulate in double for float32 too: batch-norm statistics over 10^6 elements keep ~1e-7
    return PRELUDE.replace("{T}", ctype).replace("{ACC}", "double") + KERNELS[name]
