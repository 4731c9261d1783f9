/* train/eval/fid_eval.h — FID/IS of N images from any number of ranks, the
 * same bits for any rank count, streamed and resumable (docs/eval.md
 * "FID-50K from any number of ranks").
 *
 * Images are numbered 0..N-1 and cut into chunks of a fixed size (the last
 * one shorter). Image i is a function of (its row's settings, seed, i) only:
 * the producer makes chunk k the same way on any rank (the sampler's noise
 * is Philox of (seed, i), the label i*K/N, the batches inside a chunk fixed).
 * In each round the ranks take chunks round-robin (rank r: chunk c0 + r),
 * make the 8-bit images and their features, and gather the features to
 * rank 0, which adds them to the running statistics in chunk order. So
 * every sum is formed in the same order whatever the rank count: FID and IS
 * are bit-identical on 1, 2, 3 or 8 ranks (tested), given the same build,
 * hardware and threads per rank.
 *
 * Rows: several settings (CFG scale, interval, EMA copy: a sweep) evaluated
 * one after the other in one command over the same noise, a result each.
 *
 * Resume: after every round rank 0 writes the state (rows done, the next
 * chunk, the running sums) atomically (io_out_*: a temporary name renamed
 * when complete). A killed evaluation started again with the same state
 * file and identity continues at the next chunk, on any rank count, and
 * ends with the same bits as an uninterrupted one (tested). */
#ifndef TRAIN_EVAL_FID_EVAL_H
#define TRAIN_EVAL_FID_EVAL_H

#include <stdint.h>

#include "dist/comm.h"
#include "train/eval/features.h"
#include "train/eval/frechet.h"

#define FID_CHUNK_DEFAULT 256

/* Make the 8-bit images [first, first + n) of row `row`, NCHW, into out. */
typedef void (*FidProduce)(void *ctx, int row, long first, int n, uint8_t *out);

typedef struct FidEvalSpec {
    long n_images;
    int chunk;                 /* images per chunk (part of the identity) */
    int channels, height, width;
    int rows;
    const char *const *row_names; /* [rows] for messages and PNG folders */
    const char *identity;      /* what the images depend on; a resume state must carry the same */
    FidProduce produce;
    void *ctx;
    FeatureExtractor *fx;
    const FeatureStats *ref;   /* reference statistics: NULL = no FID (computing them) */
    int inception_score;       /* also the IS (the extractor's logits) */
    const char *state_path;    /* NULL: not resumable */
    const char *png_dir;       /* NULL: no PNGs; else DIR/<row name>/<index, 5+ digits>.png */
    long max_chunks;           /* > 0: stop after about this many chunks (the round's end) */
    int quiet;
    const char *tag;           /* message prefix ("jit-eval") */
    Comm *comm;                /* NULL: this process alone */
} FidEvalSpec;

typedef struct FidRowResult {
    double fid, is_mean, is_std; /* NAN when not computed */
    double seconds;              /* wall time of the row (all invocations) */
    uint64_t image_hash;         /* FNV-1a over the per-image FNV-1a hashes, in index order */
    long n;
} FidRowResult;

/* Run (or continue) the evaluation. res [rows] is filled on every rank.
 * stats (may be NULL): on rank 0, the last row's statistics (fid-ref's
 * output; frechet_stats_free them). Returns 0 when every row is done, 1 when
 * max_chunks stopped it (the state holds the progress). Every rank must
 * call it with the same spec. */
int fid_eval_run(const FidEvalSpec *s, FidRowResult *res, FeatureStats *stats);

/* 8-bit images [n, C, H, W] as DIR/<first + i, 5+ digits>.png (the official
 * evaluation's names), DIR created. */
void fid_write_pngs(const char *dir, long first, int n, int C, int H, int W, const uint8_t *img);

/* The class of image i of n_images over K classes: i*K/n (class-balanced,
 * the official evaluation's order: image index -> class, K classes of n/K). */
static inline int fid_label_of(long i, long n_images, int K) { return (int)((i * (long long)K) / n_images); }

#endif
