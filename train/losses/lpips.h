/* train/losses/lpips.h — LPIPS (v0.1, VGG16) in the framework's own ops:
 * PixelGen's perceptual loss on the predicted clean image
 * (docs/pixelgen.md: "LPIPS" and PixelGen's definitions, with sources).
 *
 * LPIPS(a, b) per sample = sum over the 5 taps l of VGG16's features
 * (relu1_2, relu2_2, relu3_3, relu4_3, relu5_3) of the spatial mean of
 * sum_c w_l[c] (u_a - u_b)^2, u the channel-wise unit-normalised features;
 * images in [-1, 1] go through LPIPS's scaling layer first. The networks are
 * frozen: their weights take no gradient, the loss backpropagates to the
 * image only.
 *
 * Weights come from two HDF5 files made by scripts/pixelgen_weights.py from
 * the public torchvision vgg16-397923af.pth and LPIPS's v0.1 vgg.pth: group
 * vgg16/ holds features.{0,2,5,...,28}.{weight,bias} (conv weights [OC, C, 3,
 * 3]) and group lpips_lin/ holds lin{0..4}.model.1.weight [1, C, 1, 1], under
 * the public key names. A file may hold VGG16 at a reduced width (every
 * channel count divided by the same power of two, for tests); the width is
 * read from features.0.weight. */
#ifndef TRAIN_LOSSES_LPIPS_H
#define TRAIN_LOSSES_LPIPS_H

#include "core/backend.h"
#include "core/graph.h"
#include "core/params.h"

#define LPIPS_N_CONV 13
#define LPIPS_N_TAPS 5

typedef struct LpipsNet {
    ParamStore vgg, lin;       /* frozen: never in an optimiser */
    int div;                   /* channel counts are VGG16's divided by div (1: the real network) */
    int ch[LPIPS_N_CONV];      /* output channels of each convolution */
    Tensor w2d[LPIPS_N_CONV];  /* views [OC, C*9] of the conv weights: the linear weights of unfold + linear */
    Tensor *b[LPIPS_N_CONV];
    Tensor *lin_w[LPIPS_N_TAPS]; /* [1, C, 1, 1]: the non-negative heads */
} LpipsNet;

/* The network at 1/div width (div a power of two, 1..64), weights unset. */
void lpips_init(LpipsNet *n, int div);
/* The width divisor of a VGG16 file (from features.0.weight's shape). */
int lpips_file_div(const char *vgg_path, const char *vgg_what);
/* Load both files (what: the config keys, for messages, e.g.
 * "losses.vgg_weights"); stops with a message naming the file, the key and
 * the dataset on any problem: missing file or group, a dataset missing or of
 * another shape, a negative head weight. */
void lpips_load(LpipsNet *n, const char *vgg_path, const char *vgg_what, const char *lin_path, const char *lin_what);
/* Random weights (tests, and the tiny configuration's stand-in networks):
 * convolutions N(0, sqrt(2 / fan_in)) (He), biases 0.01 N(0,1), heads |N(0,1)| / C. */
void lpips_init_random(LpipsNet *n, uint64_t seed);
/* Weights into the backend's memory (after loading; a no-op on the CPU). */
void lpips_to_device(LpipsNet *n, const Backend *be);
void lpips_free(LpipsNet *n);

/* VGG16's five taps of image tokens x [B, H*W, 3] (channels last, already
 * scaled), each [B, H_l*W_l, C_l]. */
void lpips_features(Graph *g, const LpipsNet *n, Tensor *x, int H, int W, Tensor *taps[LPIPS_N_TAPS]);
/* LPIPS per sample, [B], of images a, b [B, 3, H, W] in [-1, 1] (H, W >=
 * 16). b takes no gradient (the clean image): its features are computed
 * without recording. taps_a (NULL: not wanted) receives a's five taps. */
Tensor *lpips_distance(Graph *g, const LpipsNet *n, Tensor *a, Tensor *b, Tensor *taps_a[LPIPS_N_TAPS]);

#endif
