/* train/eval/inception.h — the Inception-v3 that FID and the Inception Score
 * are measured with: torch-fidelity's `inception-v3-compat` (the TensorFlow
 * 2015-12-05 graph of the original FID code), forward only, in the
 * framework's own ops on any backend. docs/eval.md ("The FID Inception
 * network") has its definition with sources:
 *   uint8 RGB [n, 3, h, w] -> float -> TensorFlow 1.x bilinear resize to
 *   299 x 299 -> (x - 128) / 128 -> the Inception-v3 trunk (BatchNorm eps
 *   0.001, folded into the convolutions at load; average pools that do not
 *   count the padding; a max pool in the last block) -> global average pool
 *   = the 2048-d features (FID's) -> fc with its bias = the 1008 logits.
 *
 * Weights: an HDF5 file made by scripts/inception_weights.py from the public
 * weights-inception-2015-12-05-6726825d.pth (or random, for tests): group
 * inception/ holds the state_dict's tensors under their public names
 * (Conv2d_1a_3x3.conv.weight, Mixed_6b.branch7x7_2.bn.running_var, fc.bias,
 * ...). A file may hold the network at a reduced width (every channel count
 * but the RGB input and the 1008 logits divided by the same power of two,
 * 1..16), read from Conv2d_1a_3x3.conv.weight. */
#ifndef TRAIN_EVAL_INCEPTION_H
#define TRAIN_EVAL_INCEPTION_H

#include <stdint.h>

#include "core/backend.h"

#define INCEPTION_SIZE 299   /* the input side every image is resized to */
#define INCEPTION_POOL 2048  /* features at full width */
#define INCEPTION_LOGITS 1008

typedef struct InceptionNet InceptionNet;

/* Load a weights file and place the network on a backend (opened). Stops
 * with a message naming the file and the dataset when the file is missing,
 * is not the Inception's, or a tensor is missing or of the wrong shape, or a
 * BatchNorm variance is negative. For FID as torch-fidelity computes it, a
 * GPU backend is opened with fp32 matrix products (BACKEND_PREC_FP32): bf16
 * operands are rounded to 8 mantissa bits, far outside the parity bound. */
InceptionNet *inception_load(const char *h5_path, const Backend *be);
/* Random weights at 1/div width (div 1, 2, 4, 8 or 16), for tests without
 * a file (the distribution of scripts/inception_weights.py --random). */
InceptionNet *inception_random(int div, uint64_t seed, const Backend *be);
void inception_free(InceptionNet *net);
int inception_pool_dim(const InceptionNet *net);  /* 2048 at full width */
int inception_logit_dim(const InceptionNet *net); /* 1008 */
/* images: n x 3 x h x w uint8 RGB (0..255), NCHW, in host memory; pool
 * [n, pool_dim] and logits [n, logit_dim] in host memory, either may be
 * NULL. The images go through in chunks of inception_set_chunk images
 * (one matrix product per layer each), so any n fits in memory. An image's
 * results are a function of its chunk's images: the same chunks give the
 * same bits; other chunkings agree to rounding (about 1e-7 relative: BLAS
 * chooses its kernels by the product's size). For results independent of
 * how images are split across calls or ranks, cut calls at multiples of the
 * chunk size in a global image order. */
void inception_forward(InceptionNet *net, const uint8_t *images, int n, int h, int w, float *pool, float *logits);

/* The width divisor of the loaded network (1: the real one). */
int inception_width_div(const InceptionNet *net);
/* fc's bias [logit_dim] (host memory). torch-fidelity's Inception Score
 * takes the logits without it ('logits_unbiased'): logits - bias. */
const float *inception_fc_bias(const InceptionNet *net);
/* Images per pass through the network (default: 4 on the CPU, 32 on a GPU;
 * about 260 MB of activations per image at full width, measured as the
 * growth of the peak memory from chunks of 1 to 4). */
int inception_chunk(const InceptionNet *net);
void inception_set_chunk(InceptionNet *net, int images);
/* The side images are resized to (default INCEPTION_SIZE; 75 is the
 * smallest the trunk takes). Only for tests: torch-fidelity's network always
 * sees 299 x 299. */
void inception_set_size(InceptionNet *net, int side);
/* Floating-point operations of one image's forward at the current side,
 * counted from the layers (2 per multiply-add of every convolution and of
 * fc; pools, resize and ReLU are not counted: under 0.1%). */
double inception_flops(const InceptionNet *net);

#endif
