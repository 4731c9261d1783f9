/* train/trainer_eval.c — online FID and IS during training (eval.every), like
 * the official JiT's --online_eval: at every multiple of eval.every, every
 * rank samples its share of eval.images with the sampling: settings and EMA
 * copy (sampling.ema_index), the features are gathered to rank 0 in chunk
 * order (train/eval/fid_eval.h: the same bits on any rank count), and rank 0
 * logs {"event": "eval", "step", "fid", "is_mean", "is_std", "images",
 * "seconds"} to metrics.jsonl; the last FID stays on the progress line.
 * The step condition is the same on every rank, so all of them enter the
 * evaluation's collectives together and none waits in a gradient
 * all-reduce meanwhile. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/check.h"
#include "core/profile.h"
#include "train/eval/features.h"
#include "train/eval/fid.h"
#include "train/eval/fid_eval.h"
#include "train/model/sampler.h"
#include "train/trainer.h"

void trainer_eval_open(Trainer *T) {
    T->eval_fid = NAN;
    const Config *c = &T->cfg;
    if (c->eval_every <= 0) return;
    /* the extractor runs on the host: the training backend keeps its device memory */
    T->eval_fx = features_open(c->eval_features, backend_cpu(), 0);
    features_check_input(T->eval_fx, c->model.in_channels, c->model.img_size, c->model.img_size, c->source);
    if (trainer_rank(T) == 0) {
        fid_stats_read_npz(c->eval_ref, &T->eval_ref);
        CHECK(T->eval_ref.d == T->eval_fx->pool_dim, "%s: eval.ref %s has %d features but eval.features %s gives %d",
              c->source, c->eval_ref, T->eval_ref.d, c->eval_features, T->eval_fx->pool_dim);
    }
}

void trainer_eval_close(Trainer *T) {
    if (T->eval_fx) features_close(T->eval_fx);
    if (T->eval_ref.mu) frechet_stats_free(&T->eval_ref);
    T->eval_fx = NULL;
}

static void trainer_eval_produce(void *ctx, int row, long first, int n, uint8_t *out) {
    Trainer *T = ctx;
    const Config *c = &T->cfg;
    const JitConfig *mc = &c->model;
    size_t per = (size_t)mc->in_channels * mc->img_size * mc->img_size;
    int *labels = core_malloc(sizeof(int) * (size_t)n);
    float *img = core_malloc(sizeof(float) * per * (size_t)n);
    for (int i = 0; i < n; i++) labels[i] = fid_label_of(first + i, c->eval_images, mc->num_classes);
    SamplerConfig sc = sampler_config(c, -1, -1, -1, -1, -1);
    sc.first_index = (uint64_t)first;
    sampler_run(&T->model, &T->g, &sc, labels, n, c->batch_size < n ? c->batch_size : n, img);
    fid_to_u8(img, per * (size_t)n, out);
    core_free(labels), core_free(img);
}

void trainer_eval(Trainer *T) {
    const Config *c = &T->cfg;
    const JitConfig *mc = &c->model;
    double t0 = core_now_s();
    size_t pbytes = T->model.params.padded * sizeof(float);
    const DeviceMem *mem = T->be->mem;
    if (c->sample_ema >= 0) { /* the EMA weights, then the raw ones back */
        mem->copy(T->backup, T->model.params.data, pbytes);
        mem->copy(T->model.params.data, T->ema[c->sample_ema], pbytes);
    }
    const char *name = "online";
    char identity[64];
    snprintf(identity, sizeof identity, "online step %llu", (unsigned long long)T->step);
    FidEvalSpec sp = {.n_images = c->eval_images, .chunk = c->eval_chunk, .channels = mc->in_channels,
                      .height = mc->img_size, .width = mc->img_size, .rows = 1, .row_names = &name,
                      .identity = identity, .produce = trainer_eval_produce, .ctx = T, .fx = T->eval_fx,
                      .ref = trainer_rank(T) == 0 ? &T->eval_ref : NULL, .inception_score = T->eval_fx->logit_dim >= 2,
                      .quiet = 1, .tag = "eval", .comm = T->comm};
    FidRowResult r;
    fid_eval_run(&sp, &r, NULL);
    if (c->sample_ema >= 0) mem->copy(T->model.params.data, T->backup, pbytes);
    T->eval_fid = r.fid;
    if (trainer_rank(T) == 0) {
        double sec = core_now_s() - t0;
        printf("eval: step %llu: FID %.4f, IS %.3f ± %.3f (%ld images, %s, %.1f s)\n", (unsigned long long)T->step,
               r.fid, r.is_mean, r.is_std, r.n, c->eval_features, sec);
        metrics_begin(&T->metrics);
        metrics_str(&T->metrics, "event", "eval");
        metrics_int(&T->metrics, "step", (long long)T->step);
        metrics_num(&T->metrics, "fid", r.fid);
        metrics_num(&T->metrics, "is_mean", r.is_mean);
        metrics_num(&T->metrics, "is_std", r.is_std);
        metrics_int(&T->metrics, "images", r.n);
        metrics_num(&T->metrics, "seconds", sec);
        char h[24];
        snprintf(h, sizeof h, "%016llx", (unsigned long long)r.image_hash);
        metrics_str(&T->metrics, "image_hash", h);
        metrics_end(&T->metrics);
    }
}
