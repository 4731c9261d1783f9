/* kernels/cpu/image.c — patch extraction and its inverse, bicubic
 * resizing (DINOv2's input and position table) and TensorFlow 1.x's bilinear
 * resizing (the FID Inception-v3's input). Patches enter the model
 * flattened in (channel, row, col) order (the layout of a conv weight), and
 * leave it in (row, col, channel) order, as JiT does. */
#include <math.h>

#include "kernels/bicubic.h"
#include "kernels/bilinear_tf.h"
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

/* Bicubic resize (kernels/bicubic.h), separable: the four rows' taps along
 * x, then their combination along y, per plane. */
void cpu_resize_bicubic_fwd(float *out, const float *inp, int P, int Hi, int Wi, int Ho, int Wo, float ry, float rx) {
#pragma omp parallel for collapse(2) schedule(static)
    for (int p = 0; p < P; p++)
        for (int oy = 0; oy < Ho; oy++) {
            int iy[4], ix[4];
            float wy[4], wx[4];
            bicubic_taps(oy, ry, Hi, iy, wy);
            const float *src = inp + (size_t)p * Hi * Wi;
            for (int ox = 0; ox < Wo; ox++) {
                bicubic_taps(ox, rx, Wi, ix, wx);
                float acc = 0.0f;
                for (int a = 0; a < 4; a++) {
                    const float *row = src + (size_t)iy[a] * Wi;
                    acc += wy[a] * (wx[0] * row[ix[0]] + wx[1] * row[ix[1]] + wx[2] * row[ix[2]] + wx[3] * row[ix[3]]);
                }
                out[((size_t)p * Ho + oy) * Wo + ox] = acc;
            }
        }
}

/* The transpose: each output gradient scattered onto its 16 taps; planes in
 * parallel, each in a fixed order. */
void cpu_resize_bicubic_bwd(float *dinp, const float *dout, int P, int Hi, int Wi, int Ho, int Wo, float ry, float rx) {
#pragma omp parallel for schedule(static)
    for (int p = 0; p < P; p++) {
        float *dst = dinp + (size_t)p * Hi * Wi;
        for (int oy = 0; oy < Ho; oy++) {
            int iy[4], ix[4];
            float wy[4], wx[4];
            bicubic_taps(oy, ry, Hi, iy, wy);
            for (int ox = 0; ox < Wo; ox++) {
                bicubic_taps(ox, rx, Wi, ix, wx);
                float d = dout[((size_t)p * Ho + oy) * Wo + ox];
                for (int a = 0; a < 4; a++)
                    for (int c = 0; c < 4; c++) dst[(size_t)iy[a] * Wi + ix[c]] += d * wy[a] * wx[c];
            }
        }
    }
}

/* TensorFlow 1.x's bilinear resize (kernels/bilinear_tf.h), per plane and row. */
void cpu_resize_bilinear_tf_fwd(float *out, const float *inp, int P, int Hi, int Wi, int Ho, int Wo) {
    float sy = bilinear_tf_scale(Hi, Ho), sx = bilinear_tf_scale(Wi, Wo);
#pragma omp parallel for collapse(2) schedule(static)
    for (int p = 0; p < P; p++)
        for (int oy = 0; oy < Ho; oy++)
            for (int ox = 0; ox < Wo; ox++)
                out[((size_t)p * Ho + oy) * Wo + ox] = bilinear_tf_pixel(inp + (size_t)p * Hi * Wi, Hi, Wi, oy, ox, sy, sx);
}
