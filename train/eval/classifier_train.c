/* train/eval/classifier_train.c — training the evaluation classifier with the
 * framework's own pieces: the streaming shard loader, the tape autograd,
 * cross-entropy, AdamW with linear warm-up then cosine decay, global-norm
 * clipping; optional flips and small random translations (see classifier.h). */
#include <math.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/check.h"
#include "core/ops.h"
#include "core/optim.h"
#include "core/profile.h"
#include "core/rng.h"
#include "io/shards.h"
#include "train/eval/classifier.h"

/* Translations draw from their own part of the data namespace: the loader
 * uses epochs from 0 (permutations) and from 2^31 (flips). */
#define CLS_SHIFT_STREAM (RNG_STREAM_DATA + 0xC0000000ull)

static float cls_lr(const ClassifierTrainConfig *c, int step) {
    if (step < c->warmup_steps) return c->lr * (float)(step + 1) / (float)c->warmup_steps;
    int span = c->steps - c->warmup_steps;
    double p = span > 0 ? (double)(step - c->warmup_steps) / span : 1.0;
    return (float)(c->min_lr + 0.5 * (c->lr - c->min_lr) * (1.0 + cos(M_PI * p)));
}

/* Move image b by (dy, dx) pixels, filling with the background (-1). */
static void cls_shift(float *img, float *tmp, int C, int S, int dy, int dx) {
    size_t per = (size_t)C * S * S;
    memcpy(tmp, img, per * sizeof(float));
    for (int ch = 0; ch < C; ch++)
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++) {
                int sy = y - dy, sx = x - dx;
                img[((size_t)ch * S + y) * S + x] =
                    sy >= 0 && sy < S && sx >= 0 && sx < S ? tmp[((size_t)ch * S + sy) * S + sx] : -1.0f;
            }
}

ClassifierTrainResult classifier_train(const ClassifierTrainConfig *c, Classifier *m, FILE *log) {
    ClassifierTrainResult res = {.test_accuracy = -1, .final_loss = NAN};
    classifier_build(m, &c->model, c->seed);
    const ClassifierConfig *mc = &m->cfg;
    ShardSet data;
    shardset_open(&data, c->data_train);
    CHECK(data.channels == mc->channels && data.height == mc->img_size && data.width == mc->img_size,
          "%s: data %s holds %dx%dx%d images but the classifier expects %dx%dx%d (model.channels, model.img_size)",
          c->source, c->data_train, data.channels, data.height, data.width, mc->channels, mc->img_size, mc->img_size);
    CHECK(data.num_classes <= mc->num_classes, "%s: data has %d classes but model.num_classes is %d", c->source,
          data.num_classes, mc->num_classes);
    int B = c->batch_size, S = mc->img_size, per = mc->channels * S * S;
    Loader *L = loader_create(&data, B, 0, 1, c->seed, c->hflip, 4);
    CHECK(loader_steps_per_epoch(L) > 0, "%s: %lld training images are fewer than one batch of %d", c->data_train,
          (long long)data.total, B);
    AdamW opt;
    adamw_init(&opt, &m->params, c->beta1, c->beta2, 1e-8f, c->weight_decay);
    Graph g;
    graph_init(&g, backend_cpu(), 16u << 20);
    g.seed = c->seed;
    float *img = core_malloc(sizeof(float) * (size_t)B * per), *tmp = core_malloc(sizeof(float) * (size_t)per);
    int *lab = core_malloc(sizeof(int) * (size_t)B);
    if (log)
        fprintf(log, "jit-classify: %zu parameters, %lld training images, %d steps of batch %d (%.2f epochs)\n",
                params_count(&m->params), (long long)data.total, c->steps, B, (double)c->steps * B / data.total);

    double t0 = core_now_s(), loss_sum = 0;
    long right = 0, seen = 0;
    int n_loss = 0;
    for (int step = 0; step < c->steps; step++) {
        loader_next(L, img, lab);
        if (c->shift > 0)
            for (int b = 0; b < B; b++) {
                uint64_t i = ((uint64_t)step * B + (uint64_t)b) * 2;
                int span = 2 * c->shift + 1;
                int dy = (int)(rng_uniform(c->seed, CLS_SHIFT_STREAM, i) * span) - c->shift;
                int dx = (int)(rng_uniform(c->seed, CLS_SHIFT_STREAM, i + 1) * span) - c->shift;
                if (dy || dx) cls_shift(img + (size_t)b * per, tmp, mc->channels, S, dy, dx);
            }
        params_zero_grad(&m->params);
        g.training = true;
        Tensor *x = graph_new(&g, 4, B, mc->channels, S, S);
        memcpy(x->data, img, sizeof(float) * (size_t)B * per);
        Tensor *logits = classifier_forward(m, &g, x, NULL);
        Tensor *loss = op_cross_entropy(&g, logits, lab);
        for (int b = 0; b < B; b++) {
            const float *l = logits->data + (size_t)b * mc->num_classes;
            int best = 0;
            for (int k = 1; k < mc->num_classes; k++)
                if (l[k] > l[best]) best = k;
            right += best == lab[b];
        }
        seen += B;
        float lv = loss->data[0];
        graph_backward(&g, loss);
        graph_reset(&g);
        CHECK(isfinite(lv), "classifier training diverged at step %d (loss %g): lower train.lr", step, lv);
        double gn = params_grad_norm(&m->params);
        if (c->grad_clip > 0 && gn > c->grad_clip) params_scale_grad(&m->params, (float)(c->grad_clip / gn));
        adamw_step(&opt, &m->params, cls_lr(c, step));
        loss_sum += lv, n_loss++;
        if (log && ((step + 1) % c->log_every == 0 || step + 1 == c->steps)) {
            fprintf(log, "step %6d  loss %.4f  train acc %.4f  lr %.2e  %.1f img/s\n", step + 1, loss_sum / n_loss,
                    (double)right / seen, cls_lr(c, step), seen / (core_now_s() - t0 + 1e-9));
            fflush(log);
        }
        if ((step + 1) % c->log_every == 0 || step + 1 == c->steps) {
            res.final_loss = loss_sum / n_loss;
            loss_sum = 0, n_loss = 0;
        }
    }
    res.train_seconds = core_now_s() - t0;
    loader_free(L);
    shardset_close(&data);
    adamw_free(&opt);
    core_free(img), core_free(tmp), core_free(lab);

    if (c->data_test[0]) {
        float *timg;
        int *tlab, n, C, H, W, K;
        shardset_read_all(c->data_test, &timg, &tlab, &n, &C, &H, &W, &K);
        CHECK(C == mc->channels && H == S && W == S, "%s: test data %s holds %dx%dx%d images, the classifier %dx%dx%d",
              c->source, c->data_test, C, H, W, mc->channels, S, S);
        int *pred = core_malloc(sizeof(int) * (size_t)n);
        classifier_predict(m, &g, timg, n, c->eval_batch, NULL, pred);
        res.test_accuracy = classifier_accuracy(pred, tlab, n, mc->num_classes, NULL);
        res.n_test = n;
        core_free(pred), core_free(timg), core_free(tlab);
    }
    graph_free(&g);
    m->test_accuracy = res.test_accuracy;
    m->train_steps = c->steps;
    m->train_seconds = res.train_seconds;
    return res;
}
