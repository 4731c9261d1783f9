/* train/eval/fid.h — FID and Inception Score as torch-fidelity computes them
 * (docs/eval.md "FID and IS"), streamed: images are added in index order,
 * a chunk at a time, into running float64 sums, so 50,000 images never sit
 * in memory as features.
 *
 * FID statistics: mu = mean of the pool features, sigma = their covariance
 * with the n - 1 normalisation (np.mean, np.cov(rowvar=False) in
 * torch_fidelity/metric_fid.py). Accumulated as sums of (x - x0) and of
 * (x - x0)(x - x0)^T in float64 (dsyrk per added block), x0 = the features
 * of image 0: the shift keeps the covariance free of the cancellation of
 * E[xx^T] - mu mu^T, and depends on the image index only, so the sums are
 * the same whoever computed the blocks.
 *
 * IS (torch_fidelity/metric_isc.py): the logits in float64, p = softmax,
 * rows permuted by numpy's RandomState(2020).permutation(N) (samples_shuffle,
 * on by default), cut into 10 splits at i*N//10; per split
 * exp(mean_rows sum_c p (log p - log q)), q = the split's mean p; the score
 * is the mean and the (population) std over splits. Streamed: for each
 * image its split is known in advance (the inverse permutation), and a
 * split needs only sum_rows p [L] and sum_rows sum_c p log p.
 *
 * 8-bit images (the official JiT evaluation writes PNGs): x in [-1, 1] ->
 * round(clip((x + 1) / 2 * 255, 0, 255)), float32 arithmetic and numpy's
 * round-half-to-even, exactly as engine_jit.py does before cv2.imwrite. */
#ifndef TRAIN_EVAL_FID_H
#define TRAIN_EVAL_FID_H

#include <stddef.h>
#include <stdint.h>

#include "train/eval/frechet.h"

#define FID_IS_SPLITS 10      /* torch-fidelity's isc_splits */
#define FID_IS_SEED 2020u     /* torch-fidelity's rng_seed */

/* Model-space pixels [-1, 1] -> 8-bit (see above); NaN -> 0. */
void fid_to_u8(const float *x, size_t n, uint8_t *out);

/* numpy's legacy np.random.RandomState(seed).permutation(n) (MT19937,
 * init_genrand seeding, Fisher-Yates from the end with masked rejection
 * sampling): perm[k] = the index at position k. */
void fid_np_permutation(uint32_t seed, long n, long *perm);

typedef struct FidAccum {
    int d, L, splits;      /* pool and logit dimensions (L = 0: no IS) */
    long n_total, n;       /* images expected, images added */
    double *shift, *sum, *cross; /* [d], [d], [d, d] (upper triangle) */
    int *split_of;         /* [n_total] the IS split of each image index */
    double *psum, *plogp;  /* [splits, L], [splits] */
    long *count;           /* [splits] */
} FidAccum;

/* shuffle: torch-fidelity's samples_shuffle (default on) with rng_seed. */
void fid_accum_init(FidAccum *a, int d, int L, long n_total, int splits, int shuffle, uint32_t rng_seed);
void fid_accum_free(FidAccum *a);
/* Add images [a->n, a->n + n): pool [n, d], logits [n, L] (NULL when L = 0). */
void fid_accum_add(FidAccum *a, int n, const float *pool, const float *logits);
/* mu and sigma (n - 1) of what was added (>= 2 images). */
void fid_accum_stats(const FidAccum *a, FeatureStats *s);
/* IS mean and std over the splits; needs every image added. */
void fid_accum_is(const FidAccum *a, double *mean, double *std);

/* The accumulator as a flat array of doubles (for the resume state) and
 * back: fid_accum_size doubles. split_of is rebuilt by init, not saved. */
size_t fid_accum_size(const FidAccum *a);
void fid_accum_save(const FidAccum *a, double *out);
void fid_accum_restore(FidAccum *a, const double *in);

/* Reference statistics from an .npz (keys mu [d], sigma [d, d]); stops
 * naming the file and key on any problem. And the writer of such a file. */
void fid_stats_read_npz(const char *path, FeatureStats *s);
void fid_stats_write_npz(const char *path, const FeatureStats *s);

#endif
