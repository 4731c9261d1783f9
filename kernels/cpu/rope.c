/* kernels/cpu/rope.c — 2D rotary position embedding on interleaved pairs.
 * The angle tables are built by the model (train/model/jit.c); tokens before n_ctx
 * (the in-context class tokens) are copied unrotated. */
#include <string.h>

#include "kernels/cpu/cpu.h"

/* sign = +1 rotates by the angle (forward), -1 by its negative (backward). */
static void rope_apply(float *out, const float *inp, const float *cs, const float *sn, int BH, int N, int hd,
                       int n_ctx, float sign, int accumulate) {
    int half = hd / 2;
#pragma omp parallel for schedule(static)
    for (int bh = 0; bh < BH; bh++) {
        for (int n = 0; n < N; n++) {
            const float *x = inp + ((size_t)bh * N + n) * hd;
            float *o = out + ((size_t)bh * N + n) * hd;
            if (n < n_ctx) {
                for (int c = 0; c < hd; c++) o[c] = accumulate ? o[c] + x[c] : x[c];
                continue;
            }
            const float *c_ = cs + (size_t)(n - n_ctx) * half, *s_ = sn + (size_t)(n - n_ctx) * half;
            for (int j = 0; j < half; j++) {
                float y0, y1;
                cpu_rope_pair(&y0, &y1, x[2 * j], x[2 * j + 1], c_[j], s_[j], sign);
                if (accumulate) {
                    o[2 * j] += y0;
                    o[2 * j + 1] += y1;
                } else {
                    o[2 * j] = y0;
                    o[2 * j + 1] = y1;
                }
            }
        }
    }
}

void cpu_rope_fwd(float *out, const float *inp, const float *cos, const float *sin, int BH, int N, int hd, int n_ctx) {
    rope_apply(out, inp, cos, sin, BH, N, hd, n_ctx, 1.0f, 0);
}

/* The rotation is orthogonal: its transpose is the rotation by -angle. */
void cpu_rope_bwd(float *dinp, const float *dout, const float *cos, const float *sin, int BH, int N, int hd,
                  int n_ctx) {
    rope_apply(dinp, dout, cos, sin, BH, N, hd, n_ctx, -1.0f, 1);
}
