/* kernels/cpu/image.c — patch extraction and its inverse. Patches enter the
 * model flattened in (channel, row, col) order (the layout of a conv
 * weight), and leave it in (row, col, channel) order, as JiT does. */
#include "kernels/cpu/cpu.h"

void cpu_patchify_fwd(float *out, const float *img, int B, int C, int H, int W, int p) {
    int gh = H / p, gw = W / p, P = C * p * p;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int gy = 0; gy < gh; gy++)
            for (int gx = 0; gx < gw; gx++) {
                float *o = out + ((size_t)b * gh * gw + (size_t)gy * gw + gx) * P;
                for (int c = 0; c < C; c++)
                    for (int py = 0; py < p; py++)
                        for (int px = 0; px < p; px++)
                            o[(c * p + py) * p + px] = img[(((size_t)b * C + c) * H + gy * p + py) * W + gx * p + px];
            }
}

void cpu_patchify_bwd(float *dimg, const float *dout, int B, int C, int H, int W, int p) {
    int gh = H / p, gw = W / p, P = C * p * p;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int gy = 0; gy < gh; gy++)
            for (int gx = 0; gx < gw; gx++) {
                const float *d = dout + ((size_t)b * gh * gw + (size_t)gy * gw + gx) * P;
                for (int c = 0; c < C; c++)
                    for (int py = 0; py < p; py++)
                        for (int px = 0; px < p; px++)
                            dimg[(((size_t)b * C + c) * H + gy * p + py) * W + gx * p + px] += d[(c * p + py) * p + px];
            }
}

void cpu_unpatchify_fwd(float *img, const float *tok, int B, int C, int H, int W, int p) {
    int gh = H / p, gw = W / p, P = C * p * p;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int gy = 0; gy < gh; gy++)
            for (int gx = 0; gx < gw; gx++) {
                const float *t = tok + ((size_t)b * gh * gw + (size_t)gy * gw + gx) * P;
                for (int py = 0; py < p; py++)
                    for (int px = 0; px < p; px++)
                        for (int c = 0; c < C; c++)
                            img[(((size_t)b * C + c) * H + gy * p + py) * W + gx * p + px] = t[(py * p + px) * C + c];
            }
}

void cpu_unpatchify_bwd(float *dtok, const float *dimg, int B, int C, int H, int W, int p) {
    int gh = H / p, gw = W / p, P = C * p * p;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int gy = 0; gy < gh; gy++)
            for (int gx = 0; gx < gw; gx++) {
                float *t = dtok + ((size_t)b * gh * gw + (size_t)gy * gw + gx) * P;
                for (int py = 0; py < p; py++)
                    for (int px = 0; px < p; px++)
                        for (int c = 0; c < C; c++)
                            t[(py * p + px) * C + c] += dimg[(((size_t)b * C + c) * H + gy * p + py) * W + gx * p + px];
            }
}
