/* train/losses/pixelgen.h — PixelGen's auxiliary losses in the trainer
 * (docs/pixelgen.md, with PixelGen's definitions and sources):
 *
 *   L = L_fm + repa_weight L_REPA + lambda (lpips_weight L_LPIPS + pdino_weight L_PDINO)
 *
 * REPA: 1 - cos(P(h), Phi(x)) per token, averaged over every token of the
 * global batch; h the JiT tokens entering block align_layer (in-context
 * tokens excluded), P the model's projector (jit_repa_project), Phi DINOv2
 * on the clean image. LPIPS(x_hat, x) averaged over the samples with
 * t >= percept_t_threshold. P-DINO: 1 - cos(Phi(x_hat), Phi(x)), averaged
 * over every token of the batch whenever any sample passes the gate
 * (PixelGen's released code, pdino_gating: released) or over the gated
 * samples' tokens (the paper, per_sample). Gated-out samples never run
 * through a network whose term they do not enter.
 *
 * Data-parallel: every average is over the global micro-batch, and the
 * gated count is computed on every rank from the timesteps' Philox draws,
 * so 2 ranks equal 1 rank with twice the batch. Each rank seeds its
 * elements with world x its share; the gradient all-reduce averages.
 *
 * The adaptive weight lambda (from step adaptive_start, every
 * adaptive_every steps): the gradients of L_fm and of the perceptual term
 * with respect to final_layer.linear.weight are measured over the step's
 * whole global batch (a second replay of the tape per micro-batch), and
 * lambda <- 0.8 lambda + 0.2 clamp(|g_fm| / (|g_p| + 1e-4), 0, 100) takes
 * effect from the next step. PixelGen measures each rank's own batch and
 * applies the new value in the same step; this is the deterministic,
 * rank-independent variant (docs/pixelgen.md). lambda is checkpointed.
 *
 * With losses.dino_cache_mb the targets Phi(x) are cached per image
 * (feature_cache.h); a miss is computed for that image alone, so a target's
 * bits do not depend on the batch it came in or on the cache's state, and
 * a resumed run (its cache empty) continues bit for bit. */
#ifndef TRAIN_LOSSES_PIXELGEN_H
#define TRAIN_LOSSES_PIXELGEN_H

#include <stdint.h>

#include "core/graph.h"
#include "dist/comm.h"
#include "train/config/config.h"
#include "train/losses/dinov2.h"
#include "train/losses/feature_cache.h"
#include "train/losses/lpips.h"
#include "train/model/jit.h"

enum { PG_LPIPS, PG_REPA, PG_PDINO, PG_N_TERMS };
extern const char *const pixelgen_term_names[PG_N_TERMS]; /* "lpips", "repa", "pdino": the log's keys */

/* One micro-batch's terms: per-element tensors and the gradient each
 * element gets (d objective / d element, lambda not included). */
typedef struct PixelGenTerms {
    Tensor *t[PG_N_TERMS]; /* LPIPS [k]; REPA, P-DINO: cosines [B or k, N]; NULL: none this micro-batch */
    float seed[PG_N_TERMS];
} PixelGenTerms;

typedef struct PixelGen {
    const Config *cfg;
    int on[PG_N_TERMS];
    LpipsNet lpips;
    DinoNet dino;
    FeatCache cache; /* Phi(x) per clean image (losses.dino_cache_mb > 0; row 0: off) */
    double lambda;  /* the adaptive weight of LPIPS and P-DINO (1 until adapted; checkpointed) */
    /* this step */
    int adapt_now;                       /* lambda is measured this step ... */
    int measured;                        /* ... and this many micro-batches were (0: a stage-1 step) */
    double sum[PG_N_TERMS];              /* the terms' values, summed over micro-batches (this rank's share) */
    int micro[PG_N_TERMS];               /* micro-batches where a term is defined */
    double cache_use[2];                 /* targets read from the cache, targets needed (this rank) */
    double *g_fm, *g_p;                  /* [final_layer.linear.weight]: the two gradients, this step */
    float *g_read;                       /* [3, g_n]: that gradient before, between and after the replays */
    size_t g_n;
    /* last step, for the log: the terms' means (NaN where none was defined),
     * the fraction of DINOv2 targets the cache gave (global; NaN: no cache) */
    double value[PG_N_TERMS], cached;
} PixelGen;

/* Any of the three terms on? */
int pixelgen_enabled(const Config *c);
/* The frozen networks (files, every dataset checked, stops naming the config
 * key; or random stand-ins of reduced width, the same on every rank), before
 * any step; grid: the JiT's patches per side (DINOv2's output grid). */
void pixelgen_open(PixelGen *p, const Config *c, const JitModel *m, const Backend *be);
void pixelgen_free(PixelGen *p);

/* Start a step: clears the sums; decides whether lambda is measured. */
void pixelgen_step_begin(PixelGen *p, uint64_t step);
/* The terms of one micro-batch of this rank: x_hat and the clean x [B, C,
 * H, W] (device), x_host the same clean images on the host (the cache's
 * keys), t the timesteps (host), micro0 the global index of the
 * micro-batch's first sample, G = B x world, accum the micro-batches per
 * step; m->cap_hidden from a forward with capture_hidden when REPA is on.
 * Adds the values to the step's sums. */
void pixelgen_terms(PixelGen *p, Graph *g, JitModel *m, Tensor *xhat, Tensor *x, const float *x_host, const float *t,
                    uint64_t micro0, int world, PixelGenTerms *out);
/* Backward of the micro-batch: the flow loss `loss` seeded with fm_seed plus
 * the terms; on a step that measures lambda the tape is replayed twice
 * (perceptual terms alone first). reduce (NULL: none) is the gradient
 * reduction's hook (dist/grad_reduce.h), given to the last replay only:
 * the gradients are final only after it. */
void pixelgen_backward(PixelGen *p, Graph *g, JitModel *m, Tensor *loss, float fm_seed, const PixelGenTerms *t,
                       const GraphBackwardHook *reduce);
/* End a step: the logged values over all ranks; lambda's update. */
void pixelgen_step_end(PixelGen *p, Comm *comm);

#endif
