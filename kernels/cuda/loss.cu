/* kernels/cuda/loss.cu — the JiT v-loss and a plain MSE, GPU twins of
 * kernels/cpu/loss.c. The squared errors are summed in double over fixed
 * segments (cuda_dsum), and one thread adds the per-sample sums in batch
 * order: the loss is reproducible run to run and agrees with the CPU's
 * double sums to about 1e-15 before the final rounding to float. The
 * v-loss backward goes in float4 units when a sample's size is a multiple
 * of 4 and its arrays are 16-byte aligned (kernels/cuda/vec.cuh). */
#include "kernels/cuda/cuda_util.cuh"
#include "kernels/cuda/vec.cuh"

#define LAUNCH(n) <<<cuda_blocks((size_t)(n), CUDA_THREADS), CUDA_THREADS, 0, cuda_compute_stream()>>>

__device__ __forceinline__ float vloss_denom(float t) {
    float d = 1.0f - t;
    return d > 0.05f ? d : 0.05f;
}

struct SqErr {
    const float *a, *b;
    size_t per;
    __device__ double operator()(int g, size_t i) const {
        size_t j = (size_t)g * per + i;
        double e = (double)b[j] - a[j];
        return e * e;
    }
};

struct VlossFin {
    float *loss;
    const float *t;
    size_t per;
    __device__ void operator()(const double *partial, int G, int S) const {
        double total = 0.0;
        for (int b = 0; b < G; b++) {
            double s = 0.0;
            for (int k = 0; k < S; k++) s += partial[(size_t)b * S + k];
            double d = vloss_denom(t[b]);
            total += s / (d * d);
        }
        loss[0] = (float)(total / ((double)G * per));
    }
};

extern "C" void cuda_vloss_fwd(float *loss, const float *xhat, const float *x, const float *t, int B, int per) {
    if (B <= 0) return;
    cuda_dsum(SqErr{xhat, x, (size_t)per}, VlossFin{loss, t, (size_t)per}, B, (size_t)per);
}

/* unit i = floats [i V, i V + V): one sample's (per % V == 0) */
template <int V, bool Wide>
__global__ void vloss_bwd_kernel(float *dxhat, const float *dloss, const float *xhat, const float *x, const float *t,
                                 int B, int per, size_t nu) {
    float g = dloss[0] * 2.0f / ((float)B * per);
    CUDA_FOR(i, nu) {
        size_t j = i * V;
        float d = vloss_denom(t[j / per]), k = g / (d * d);
        float xh[V], xv[V], o[V];
        vec_load<V, Wide>(xh, xhat + j);
        vec_load<V, Wide>(xv, x + j);
        vec_load<V, Wide>(o, dxhat + j);
#pragma unroll
        for (int e = 0; e < V; e++) o[e] += k * (xh[e] - xv[e]);
        vec_store<V, Wide>(dxhat + j, o);
    }
}

extern "C" void cuda_vloss_bwd(float *dxhat, const float *dloss, const float *xhat, const float *x, const float *t,
                               int B, int per) {
    size_t n = (size_t)B * per;
    if (!n) return;
    if (per % 4 == 0 && vec_aligned({dxhat, xhat, x}))
        vloss_bwd_kernel<4, true> LAUNCH(n / 4)(dxhat, dloss, xhat, x, t, B, per, n / 4);
    else
        vloss_bwd_kernel<1, false> LAUNCH(n)(dxhat, dloss, xhat, x, t, B, per, n);
    CUDA_CHECK_LAUNCH();
}

struct MseFin {
    float *loss;
    size_t n;
    __device__ void operator()(const double *partial, int G, int S) const {
        double s = 0.0;
        for (int k = 0; k < S; k++) s += partial[k];
        loss[0] = (float)(s / (double)n);
    }
};

extern "C" void cuda_mse_fwd(float *loss, const float *a, const float *b, size_t n) {
    if (!n) return;
    cuda_dsum(SqErr{b, a, n}, MseFin{loss, n}, 1, n);
}

__global__ void mse_bwd_kernel(float *da, float *db, const float *dloss, const float *a, const float *b, size_t n) {
    float g = dloss[0] * 2.0f / (float)n;
    CUDA_FOR(i, n) {
        float e = g * (a[i] - b[i]);
        if (da) da[i] += e;
        if (db) db[i] -= e;
    }
}

extern "C" void cuda_mse_bwd(float *da, float *db, const float *dloss, const float *a, const float *b, size_t n) {
    if (!n || (!da && !db)) return;
    mse_bwd_kernel LAUNCH(n)(da, db, dloss, a, b, n);
    CUDA_CHECK_LAUNCH();
}

/* ---- cosine similarity of rows (REPA, P-DINO): one thread per row, the
 * CPU's sums in the CPU's order ---- */
#define COS_EPS 1e-8

__device__ __forceinline__ void cos_sums(const float *x, const float *y, int C, double *xy, double *xx, double *yy) {
    *xy = *xx = *yy = 0.0;
    for (int c = 0; c < C; c++) *xy += (double)x[c] * y[c], *xx += (double)x[c] * x[c], *yy += (double)y[c] * y[c];
}

__global__ void cosine_fwd_kernel(float *out, const float *a, const float *b, int rows, int C) {
    CUDA_FOR(r, (size_t)rows) {
        double xy, xx, yy;
        cos_sums(a + r * C, b + r * C, C, &xy, &xx, &yy);
        out[r] = (float)(xy / (fmax(sqrt(xx), COS_EPS) * fmax(sqrt(yy), COS_EPS)));
    }
}

__global__ void cosine_bwd_kernel(float *da, float *db, const float *dout, const float *a, const float *b, int rows,
                                  int C) {
    CUDA_FOR(r, (size_t)rows) {
        const float *x = a + r * C, *y = b + r * C;
        double xy, xx, yy;
        cos_sums(x, y, C, &xy, &xx, &yy);
        double nx = sqrt(xx), ny = sqrt(yy), cx = fmax(nx, COS_EPS), cy = fmax(ny, COS_EPS);
        double cs = xy / (cx * cy), g = dout[r];
        for (int c = 0; c < C; c++) {
            if (da) da[r * C + c] += (float)(g * (y[c] / (cx * cy) - (nx > COS_EPS ? cs * x[c] / xx : 0.0)));
            if (db) db[r * C + c] += (float)(g * (x[c] / (cx * cy) - (ny > COS_EPS ? cs * y[c] / yy : 0.0)));
        }
    }
}

extern "C" void cuda_cosine_fwd(float *out, const float *a, const float *b, int rows, int C) {
    if (rows <= 0) return;
    cosine_fwd_kernel LAUNCH(rows)(out, a, b, rows, C);
    CUDA_CHECK_LAUNCH();
}

extern "C" void cuda_cosine_bwd(float *da, float *db, const float *dout, const float *a, const float *b, int rows,
                                int C) {
    if (rows <= 0 || (!da && !db)) return;
    cosine_bwd_kernel LAUNCH(rows)(da, db, dout, a, b, rows, C);
    CUDA_CHECK_LAUNCH();
}
