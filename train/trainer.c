/* train/trainer.c — the training loop of one rank (see trainer.h). */
#include "train/trainer.h"

#include <errno.h>
#include <signal.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/check.h"
#include "core/ops.h"
#include "core/rng.h"
#include "io/ckpt.h"
#include "io/fsutil.h"
#include "io/png.h"
#include "io/run_lock.h"
#include "io/samples.h"
#include "train/callbacks.h"
#include "train/run_dir.h"
#include "train/model/diffusion.h"
#include "train/model/sampler.h"
#include "train/schedule.h"


static volatile sig_atomic_t trainer_stop_signal;

static void trainer_on_signal(int sig) { trainer_stop_signal = sig; }

void trainer_install_signal_handlers(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = trainer_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
}

/* Resuming with a configuration other than the checkpoint's: keys that
 * change the model (model.*), what the state holds (optim.ema) or the data
 * order (run.seed, data.train) are errors; the rest (lr, steps, device,
 * batch size, ...) are notices, so a changed run is never silent. */
typedef struct ResumeDiff {
    const char *source, *file;
    int rank, errors;
} ResumeDiff;

static int resume_key_is_fatal(const char *key) {
    return strncmp(key, "model.", 6) == 0 || !strcmp(key, "optim.ema") || !strcmp(key, "run.seed") ||
           !strcmp(key, "data.train");
}

static void resume_diff_one(const char *key, const char *was, const char *now, void *user) {
    ResumeDiff *r = user;
    int fatal = resume_key_is_fatal(key);
    r->errors += fatal;
    if (r->rank == 0)
        fprintf(stderr, "%s: %s: %s is %s, the checkpoint's run had %s%s\n", fatal ? "error" : "notice", r->source, key,
                now, was,
                fatal ? (strncmp(key, "model.", 6) == 0 ? " (another model)"
                         : !strcmp(key, "optim.ema")    ? " (other EMA copies than the checkpoint holds)"
                                                        : " (another data order)")
                      : "");
}

static void trainer_check_resume_config(Trainer *T, const char *file, const char *saved_yaml) {
    if (!saved_yaml) return;
    Config was;
    char err[2048];
    if (config_try_load_string(&was, file, saved_yaml, 0, NULL, err, sizeof err) != 0) {
        if (trainer_rank(T) == 0) fprintf(stderr, "notice: %s: the checkpoint's configuration cannot be compared: %s\n", file, err);
        return;
    }
    ResumeDiff r = {T->cfg.source, file, trainer_rank(T), 0};
    config_diff(&was, &T->cfg, resume_diff_one, &r);
    CHECK(r.errors == 0,
          "%s: %d setting%s above differ from checkpoint %s in a way a resumed run cannot take (the model, its EMA "
          "copies or the data order); start a new run, or resume with the checkpoint's settings",
          T->cfg.source, r.errors, r.errors == 1 ? "" : "s", file);
}

void trainer_init(Trainer *T, const Config *cfg, const char *resume, Comm *comm) {
    memset(T, 0, sizeof *T);
    T->cfg = *cfg;
    const Config *c = &T->cfg;
    T->comm = comm;
    T->inject_nan_step = -1;
    T->inject_nan_count = 1;
    T->inject_value = NAN;
    /* Before anything in the run directory is read or written: one trainer
     * per run.out_dir (io/run_lock.h). Rank 0 holds it for the job; a
     * refusal there aborts every rank. */
    T->lock.fd = -1;
    if (trainer_rank(T) == 0) {
        io_mkdirs_or_die(c->out_dir);
        run_lock_acquire(&T->lock, c->out_dir, c->source);
    }
    trainer_device_select(T); /* stops here, with the config's name, when cuda cannot be had */

    /* Built, loaded and broadcast on the host; moved to the device at the end. */
    jit_build(&T->model, &c->model, c->seed);
    if (c->official_decay_set) jit_use_official_decay_set(&T->model);
    trainer_device_alloc_state(T);
    size_t pbytes = T->model.params.padded * sizeof(float);
    graph_init(&T->g, T->be, TRAINER_ARENA_BYTES);
    T->g.seed = c->seed;

    shardset_open(&T->data, c->data_train);
    const JitConfig *mc = &c->model;
    CHECK(T->data.channels == mc->in_channels && T->data.height == mc->img_size && T->data.width == mc->img_size,
          "%s: data %s holds %dx%dx%d images but the model expects %dx%dx%d (model.in_channels, model.img_size)",
          c->source, c->data_train, T->data.channels, T->data.height, T->data.width, mc->in_channels, mc->img_size,
          mc->img_size);
    CHECK(T->data.num_classes <= mc->num_classes, "%s: data has %d classes but model.num_classes is %d", c->source,
          T->data.num_classes, mc->num_classes);
    T->loader = loader_create(&T->data, c->batch_size, trainer_rank(T), trainer_world(T), c->seed, c->hflip, c->prefetch);
    CHECK(loader_steps_per_epoch(T->loader) > 0, "%s: %lld samples are fewer than one global batch (%d x %d ranks)",
          c->data_train, (long long)T->data.total, c->batch_size, trainer_world(T));

    int per = mc->in_channels * mc->img_size * mc->img_size, B = c->batch_size;
    /* Pinned on CUDA, so the batch copies do not stop the host. */
    T->img = T->be->mem->host_alloc(sizeof(float) * (size_t)B * per);
    T->z = T->be->mem->host_alloc(sizeof(float) * (size_t)B * per);
    T->t = T->be->mem->host_alloc(sizeof(float) * (size_t)B);
    T->lab = core_malloc(sizeof(int) * (size_t)B);
    T->y = core_malloc(sizeof(int) * (size_t)B);

    char path[1100];
    io_mkdirs_or_die(c->out_dir);
    int resumed = 0;
    double aux_weight = 1.0; /* PixelGen's lambda, from the checkpoint */
    char ckdir[1100];
    snprintf(ckdir, sizeof ckdir, "%s/ckpt", c->out_dir);
    if (trainer_rank(T) == 0) ckpt_clean_stray(ckdir); /* left by a killed write; nobody writes yet */
    char file[1100] = "";
    CkptState st = {0};
    if (resume && (strcmp(resume, "auto") != 0 || ckpt_exists(ckdir))) {
        /* A run's own directory falls back to its newest intact checkpoint;
         * an explicit file or directory must be what it says. */
        if (strcmp(resume, "auto") == 0) {
            /* Rank 0 checks (reading the whole file through its checksums)
             * and every rank loads what it found. */
            if (trainer_rank(T) == 0) ckpt_resolve_intact(ckdir, file, sizeof file);
            if (comm) comm_broadcast(comm, file, sizeof file, 0);
        } else {
            ckpt_resolve(resume, file, sizeof file);
        }
        CkptData d;
        trainer_device_ckpt_data(T, &d, 0); /* host buffers; placed on the device below */
        char *saved_yaml = NULL;
        int missing = ckpt_load(file, &d, &st, &saved_yaml);
        trainer_check_resume_config(T, file, saved_yaml);
        free(saved_yaml);
        CHECK(missing == 0, "%s: %d parameters of this model are not in checkpoint %s (another model?)", c->source,
              missing, file);
        char what[PARAM_NAME_MAX + 64];
        CHECK(!ckpt_find_nonfinite(&d, what, sizeof what),
              "%s: checkpoint %s holds non-finite values (%s): refusing to resume from it; resume from an earlier "
              "ckpt-*.h5 by its path",
              c->source, file, what);
        T->step = st.step;
        T->ckpt_pending = 1, T->ckpt_pending_step = st.step; /* confirmed by the first step, as a written one */
        snprintf(T->ckpt_pending_path, sizeof T->ckpt_pending_path, "%s", file);
        aux_weight = st.aux_weight;
        loader_seek(T->loader, st.pos);
        resumed = 1;
        if (trainer_rank(T) == 0)
            printf("resumed from %s at step %llu (written by %d rank%s, now %d%s)\n", file,
                   (unsigned long long)st.step, st.world_size, st.world_size == 1 ? "" : "s", trainer_world(T),
                   st.world_size != trainer_world(T) ? ": the loader re-partitions the rest of the epoch" : "");
    }
    /* Whose directory this is, before this run writes anything in it. */
    if (trainer_rank(T) == 0)
        run_dir_claim(c, ckdir, resumed ? file : NULL, st.run_id, resumed && strcmp(resume, "auto") != 0, T->run_id,
                      sizeof T->run_id);
    if (comm) comm_broadcast(comm, T->run_id, sizeof T->run_id, 0);
    if (comm) {
        /* Every rank starts from rank 0's state, whatever its own init or
         * read gave: broadcast over MPI while it is all on the host. */
        CkptData d;
        trainer_device_ckpt_data(T, &d, 0);
        comm_broadcast(comm, d.params->host, pbytes, 0);
        comm_broadcast(comm, d.opt->m, pbytes, 0);
        comm_broadcast(comm, d.opt->v, pbytes, 0);
        for (int k = 0; k < c->n_ema; k++) comm_broadcast(comm, d.ema[k], pbytes, 0);
    }
    trainer_device_place(T); /* the reduction, this rank's range, the state in the backend's memory */
    if (trainer_has_pixelgen(T)) {
        pixelgen_open(&T->pg, &T->cfg, &T->model, T->be); /* stops before any step */
        T->pg.lambda = aux_weight;
    }
    if (trainer_rank(T) == 0) {
        snprintf(path, sizeof path, "%s/config.yaml", c->out_dir);
        IoOut out; /* written under a temporary name, renamed when complete (io/fsutil.h) */
        char err[2400];
        FILE *f = io_out_fopen(&out, path, err, sizeof err);
        CHECK(f != NULL, "cannot write %s: %s", path, strerror(errno));
        config_write(c, f);
        /* A full disk shows here, before any step: the commit flushes. */
        CHECK(io_out_fclose_commit(&out, f, err, sizeof err) == 0, "cannot write %s: %s; nothing was trained", path,
              strerror(errno));
        snprintf(path, sizeof path, "%s/metrics.jsonl", c->out_dir);
        metrics_open(&T->metrics, path, resumed);
        if (resumed) {
            metrics_begin(&T->metrics);
            metrics_str(&T->metrics, "event", "resume");
            metrics_int(&T->metrics, "step", (long long)T->step);
            metrics_end(&T->metrics);
        }
    }
    progress_init(&T->progress, c->progress);
    trainer_eval_open(T);
    callbacks_on_train_start(T);
    T->t_start = T->t_last = core_now_s();
}

void trainer_free(Trainer *T) {
    loader_free(T->loader);
    shardset_close(&T->data);
    metrics_close(&T->metrics);
    trainer_device_free(T); /* first: waits for the device before anything is freed */
    graph_free(&T->g);
    if (trainer_has_pixelgen(T)) pixelgen_free(&T->pg);
    trainer_eval_close(T);
    T->be->mem->host_free(T->img), T->be->mem->host_free(T->z), T->be->mem->host_free(T->t);
    core_free(T->lab), core_free(T->y);
    jit_free(&T->model);
    run_lock_release(&T->lock); /* last: the directory is ours until everything is written */
    memset(T, 0, sizeof *T);
    T->lock.fd = -1;
}

/* One micro-batch: noise it, run the model, return the loss tensor (backward
 * not yet run); the step's loss is loss * (*weight). */
const char *const trainer_phase_names[TRAINER_N_PHASES] = {"callbacks", "data", "forward",  "backward",
                                                          "all-reduce", "optimizer", "log"};

/* Adds the time since *t0 to the phase and restarts the clock. */
static void trainer_phase(Trainer *T, TrainerPhase ph, double *t0) {
    double t = core_now_s();
    T->phase_s[ph] += t - *t0;
    *t0 = t;
}

/* The loss of one micro-batch; the time since *t0 until the forward starts
 * goes to the data phase. With PixelGen's losses, *aux gets their terms. */
static Tensor *micro_batch(Trainer *T, uint64_t sample0, uint64_t micro0, float *weight, double *t0,
                           PixelGenTerms *aux) {
    const Config *c = &T->cfg;
    const JitConfig *mc = &c->model;
    Graph *g = &T->g;
    int B = c->batch_size, S = mc->img_size, C = mc->in_channels, per = C * S * S;
    trainer_device_batch_begin(T); /* the device has read the last batch out of these buffers */
    loader_next(T->loader, T->img, T->lab);
    for (int b = 0; b < B; b++) /* label dropout: the null class teaches the unconditional model */
        T->y[b] = rng_uniform(c->seed, RNG_STREAM_LABEL_DROP, sample0 + (uint64_t)b) < c->label_drop ? mc->num_classes
                                                                                                   : T->lab[b];
    DiffusionConfig dc = {.p_mean = c->p_mean, .p_std = c->p_std, .noise_scale = c->noise_scale};
    diffusion_noise_batch(&dc, c->seed, sample0, T->img, T->z, T->t, B, per);
    Tensor *x = graph_new(g, 4, B, C, S, S), *z = graph_new(g, 4, B, C, S, S), *t = graph_new(g, 1, B);
    trainer_device_batch_upload(T, x, z, t); /* queued before the forward's kernels */
    trainer_phase(T, TRAINER_PHASE_DATA, t0);
    if (g->prof) profile_mark(g->prof);
    *weight = 1.0f;
    memset(aux, 0, sizeof *aux);
    if (T->stage != 1) {
        JitForwardOpts o = {.collect_stats = T->collect_stats_now, .capture_hidden = c->repa_weight > 0,
                            .recompute = c->recompute};
        Tensor *xhat = jit_forward(&T->model, g, z, t, T->y, &o);
        Tensor *loss = op_vloss(g, xhat, x, t);
        if (trainer_has_pixelgen(T))
            pixelgen_terms(&T->pg, g, &T->model, xhat, x, T->img, T->t, micro0, trainer_world(T), aux);
        return loss;
    }

    /* Stage 1 of the conversion: q, k, v of the original (full-attention)
     * model at these timesteps, then the mean distillation loss of every SLA2 block. */
    JitModel *m = &T->model;
    bool prev = graph_set_grad(g, false);
    jit_forward(m, g, z, t, T->y, &(JitForwardOpts){.capture_qkv = true, .full_attention = true});
    graph_set_grad(g, prev);
    Tensor *loss = NULL;
    int n = 0;
    for (int i = 0; i < mc->depth; i++) {
        if (!jit_layer_uses_sla2(mc, i)) continue;
        Tensor *l = jit_sla2_distill_loss(m, g, i);
        loss = loss ? op_add(g, loss, l) : l;
        n++;
    }
    *weight = 1.0f / (float)n; /* the mean over blocks */
    return loss;
}

float trainer_step(Trainer *T) {
    const Config *c = &T->cfg;
    double t0 = core_now_s();
    callbacks_on_step_start(T);
    trainer_device_sync_trainable(T); /* the callbacks may have frozen or unfrozen parameters */
    trainer_phase(T, TRAINER_PHASE_CALLBACKS, &t0);
    T->lr = T->stage == 1 ? T->stage1_lr : schedule_lr(c, (long)T->step);
    params_zero_grad(&T->model.params);
    T->g.training = true;
    T->g.step = T->step;
    double loss_sum = 0.0;
    if (trainer_has_pixelgen(T)) pixelgen_step_begin(&T->pg, T->step);
    uint64_t G = (uint64_t)c->batch_size * (uint64_t)trainer_world(T);
    for (int a = 0; a < c->grad_accum; a++) {
        /* Global index of this rank's first sample: noise and label drops do
         * not depend on how the global batch is split across ranks. */
        uint64_t micro0 = (T->step * (uint64_t)c->grad_accum + (uint64_t)a) * G;
        uint64_t sample0 = micro0 + (uint64_t)trainer_rank(T) * c->batch_size;
        float w;
        /* The last micro-batch's backward reduces the gradients as they
         * become final: its forward notes where each parameter is first read. */
        int last = a == c->grad_accum - 1;
        if (last) grad_reduce_arm(&T->red, &T->g);
        PixelGenTerms aux;
        Tensor *loss = micro_batch(T, sample0, micro0, &w, &t0, &aux);
        float loss_host;
        graph_read(&T->g, loss, &loss_host, 1);
        trainer_phase(T, TRAINER_PHASE_FORWARD, &t0);
        loss_sum += (double)loss_host * w;
        const float seed = w / (float)c->grad_accum; /* d(mean over micro-batches)/d(this loss) */
        /* Backward; with the hook, each bucket's reduction starts once
         * backward has finished its gradients (dist/grad_reduce.h). */
        const GraphBackwardHook *reduce = last ? grad_reduce_start(&T->red, &T->g) : NULL;
        if (trainer_has_pixelgen(T) && T->stage != 1) {
            pixelgen_backward(&T->pg, &T->g, &T->model, loss, seed, &aux, reduce);
        } else {
            graph_seed(&T->g, loss, &seed);
            graph_backward_hooked(&T->g, reduce);
        }
        trainer_phase(T, TRAINER_PHASE_BACKWARD, &t0);
        graph_reset(&T->g); /* the reductions read the parameters' gradients only */
    }
    /* Wait: the buckets not yet started go now; then this rank's range of
     * the gradient is the mean over the ranks (on a GPU the update's kernels
     * wait for the last bucket, the host does not). */
    grad_reduce_wait(&T->red);
    if (T->comm) comm_allreduce_f64(T->comm, &loss_sum, 1, COMM_MEAN); /* the logged loss is the global mean */
    if (trainer_has_pixelgen(T)) pixelgen_step_end(&T->pg, T->comm);
    trainer_phase(T, TRAINER_PHASE_ALLREDUCE, &t0);
    T->g.training = false;
    float loss = (float)(loss_sum / c->grad_accum);
    if (T->inject_nan_step >= 0 && (long)T->step >= T->inject_nan_step &&
        (long)T->step < T->inject_nan_step + T->inject_nan_count)
        trainer_device_poison_grad(T);
    T->grad_norm = trainer_device_grad_norm(T);
    /* The update is checked before it is committed, by what keeps it
     * finite: a finite gradient whose norm (after clipping) is below 1e18
     * has every g^2 below FLT_MAX, so AdamW's moments stay finite (each a
     * convex mix of finite values); the step m/(sqrt(v)+eps) per element is
     * then bounded (by about 1.2 for betas with beta1^2 < beta2, such as
     * 0.9/0.95, by Cauchy-Schwarz), and with lr <= 100 (the config's bound)
     * the weights and their EMA stay finite. Anything else is skipped; a
     * state that still turns non-finite is never checkpointed. */
    double applied = c->grad_clip > 0 && T->grad_norm > c->grad_clip ? c->grad_clip : T->grad_norm;
    int huge = isfinite(T->grad_norm) && applied > TRAINER_MAX_UPDATE_NORM;
    T->last_skipped = !isfinite(loss) || !isfinite(T->grad_norm) || huge;
    T->bad_streak = T->last_skipped ? T->bad_streak + 1 : 0;
    if (T->bad_streak == 1) T->first_bad_step = T->step;
    if (T->ckpt_pending && T->step == T->ckpt_pending_step) {
        /* The step from the checkpoint's state: good confirms it. */
        if (!T->last_skipped) {
            T->ckpt_good = 1, T->ckpt_good_step = T->ckpt_pending_step;
            memcpy(T->ckpt_good_path, T->ckpt_pending_path, sizeof T->ckpt_good_path);
        }
        T->ckpt_pending = 0;
    }
    if (T->last_skipped) {
        /* NaN/Inf guard: no update, no EMA; the step still counts so the data and
         * the schedules move on, and the log says so. */
        T->skipped_total++;
        if (huge)
            fprintf(stderr, "warning: step %llu skipped: gradient norm %g would overflow AdamW's second moment "
                            "(its squares exceed a float); set optim.grad_clip or lower optim.lr\n",
                    (unsigned long long)T->step, T->grad_norm);
        else
            fprintf(stderr, "warning: step %llu skipped: non-finite %s (loss %g, gradient norm %g)\n",
                    (unsigned long long)T->step, isfinite(loss) ? "gradient" : "loss", loss, T->grad_norm);
    } else {
        if (c->grad_clip > 0 && T->grad_norm > c->grad_clip)
            trainer_device_scale_grad(T, (float)(c->grad_clip / T->grad_norm));
        trainer_device_adamw(T, T->lr);
        /* EMA warm-up: decay min(d, (1 + s) / (10 + s)), so the average does not
         * drag the random initial weights along for the first ~1/(1-d) steps;
         * optim.ema_warmup false keeps the official constant decay (an
         * imported checkpoint's step restarts at 0: the warm-up would snap
         * its EMA to the raw weights). */
        float warm = c->ema_warmup ? (float)(1.0 + (double)T->step) / (float)(10.0 + (double)T->step) : 1.0f;
        for (int k = 0; k < c->n_ema; k++) trainer_device_ema(T, k, c->ema[k] < warm ? c->ema[k] : warm);
        /* Sharded: each rank updated its range; every rank's to every rank. */
        grad_reduce_gather(&T->red, T->model.params.data);
    }
    trainer_phase(T, TRAINER_PHASE_OPTIMIZER, &t0);
    T->loss = loss;
    T->step++;
    T->images_seen += (uint64_t)c->batch_size * c->grad_accum * trainer_world(T);

    double now = core_now_s();
    Metrics *mt = &T->metrics;
    metrics_begin(mt);
    metrics_int(mt, "step", (long long)T->step);
    metrics_num(mt, "loss", loss);
    metrics_num(mt, "lr", T->lr);
    metrics_num(mt, "grad_norm", T->grad_norm);
    if (trainer_has_pixelgen(T)) {
        for (int i = 0; i < PG_N_TERMS; i++)
            if (T->pg.on[i]) metrics_num(mt, pixelgen_term_names[i], T->pg.value[i]);
        if (T->cfg.adaptive_start >= 0 && (T->pg.on[PG_LPIPS] || T->pg.on[PG_PDINO]))
            metrics_num(mt, "lambda", T->pg.lambda);
        if (T->pg.cache.row) metrics_num(mt, "dino_cached", T->pg.cached);
    }
    metrics_num(mt, "images_per_s", (double)c->batch_size * c->grad_accum * trainer_world(T) / (now - T->t_last));
    metrics_num(mt, "elapsed_s", now - T->t_start);
    if (T->last_skipped) metrics_int(mt, "skipped", 1);
    trainer_phase(T, TRAINER_PHASE_LOG, &t0);
    callbacks_on_step_end(T);
    trainer_phase(T, TRAINER_PHASE_CALLBACKS, &t0);
    metrics_end(mt);
    trainer_phase(T, TRAINER_PHASE_LOG, &t0);
    T->t_last = now;
    return T->last_skipped ? NAN : loss;
}

static void progress(Trainer *T) {
    const Config *c = &T->cfg;
    double el = core_now_s() - T->t_start, ips = T->images_seen / (el > 0 ? el : 1);
    double per_step = el / (double)(T->step ? T->step : 1);
    long eta = (long)(per_step * (double)(c->steps - (long)T->step));
    char line[256];
    int k = snprintf(line, sizeof line, "step %llu/%d | loss %.4f | lr %.2e | %.1f img/s | ETA %ldm%02lds",
                     (unsigned long long)T->step, c->steps, T->loss, T->lr, ips, eta / 60, eta % 60);
    for (int i = 0; trainer_has_pixelgen(T) && i < PG_N_TERMS; i++)
        if (T->pg.on[i])
            k += snprintf(line + k, sizeof line - (size_t)k, " | %s %.4f", pixelgen_term_names[i], T->pg.value[i]);
    if (c->model.use_sla2) {
        double s = 0;
        int n = 0;
        for (int i = 0; i < c->model.depth; i++)
            if (jit_layer_uses_sla2(&c->model, i)) s += T->model.sla2_topk[i], n++;
        k += snprintf(line + k, sizeof line - (size_t)k, " | topk %.3f | qat %s%s", n ? s / n : 1.0,
                      T->model.sla2_qat ? "on" : "off", T->stage == 1 ? " | stage 1" : "");
    }
    if (isfinite(T->eval_fid) && k < (int)sizeof line)
        snprintf(line + k, sizeof line - (size_t)k, " | fid %.3f", T->eval_fid);
    progress_line(&T->progress, line);
}

/* Rank 0's grid, with the weights in place. */
static void sample_grid(Trainer *T) {
    const Config *c = &T->cfg;
    const JitConfig *mc = &c->model;
    int classes = T->data.num_classes, per_class = c->samples_per_class, n = classes * per_class;
    int per = mc->in_channels * mc->img_size * mc->img_size;
    int *labels = malloc(sizeof(int) * (size_t)n);
    float *out = malloc(sizeof(float) * (size_t)n * per);
    CHECK(labels && out, "out of memory for %d samples", n);
    for (int i = 0; i < n; i++) labels[i] = i / per_class; /* one row per class */
    SamplerConfig sc = sampler_config(c, -1, -1, -1, -1, -1);
    sc.stop = &trainer_stop_signal;
    int stopped = sampler_run(&T->model, &T->g, &sc, labels, n, c->batch_size, out) != 0;
    if (stopped) { /* the signal's handling (checkpoint, exit 75) follows in trainer_run */
        printf("samples: interrupted by %s at step %llu: no grid written\n",
               trainer_stop_signal == SIGUSR1 ? "SIGUSR1" : "SIGTERM", (unsigned long long)T->step);
        metrics_begin(&T->metrics);
        metrics_str(&T->metrics, "event", "samples_interrupted");
        metrics_int(&T->metrics, "step", (long long)T->step);
        metrics_end(&T->metrics);
        free(labels);
        free(out);
        return;
    }
    char dir[1100], png[1200], h5[1200];
    snprintf(dir, sizeof dir, "%s/samples", c->out_dir);
    io_mkdirs_or_die(dir);
    snprintf(png, sizeof png, "%s/step-%08llu.png", dir, (unsigned long long)T->step);
    snprintf(h5, sizeof h5, "%s/step-%08llu.h5", dir, (unsigned long long)T->step);
    png_write_grid(png, out, n, mc->in_channels, mc->img_size, mc->img_size, per_class, 2);
    samples_write_h5(h5, out, labels, n, mc->in_channels, mc->img_size, mc->img_size);
    if (trainer_rank(T) == 0) printf("samples: %s (%d classes x %d, %d steps, cfg %.2f)\n", png, classes, per_class,
                             c->sample_steps, c->cfg_scale);
    metrics_begin(&T->metrics);
    metrics_str(&T->metrics, "event", "samples");
    metrics_int(&T->metrics, "step", (long long)T->step);
    metrics_str(&T->metrics, "png", png);
    metrics_end(&T->metrics);
    free(labels);
    free(out);
}

void trainer_sample(Trainer *T) {
    const Config *c = &T->cfg;
    if (c->samples_per_class == 0) return; /* per_class 0: no grids (e.g. jit-eval makes one) */
    /* The EMA weights in place of the raw ones on every rank (the shards'
     * gather is collective), then back. Rank 0 samples and writes; the
     * others wait for it at the next collective. (Several ranks creating
     * the same HDF5 file would also fight over its lock.) */
    if (c->sample_ema >= 0) trainer_device_weights_ema(T, c->sample_ema);
    if (trainer_rank(T) == 0) sample_grid(T);
    if (c->sample_ema >= 0) trainer_device_weights_raw(T);
}

int trainer_checkpoint(Trainer *T) {
    const Config *c = &T->cfg;
    char dir[1100];
    snprintf(dir, sizeof dir, "%s/ckpt", c->out_dir);
    /* Not while steps are being skipped: such a checkpoint would become
     * "latest" and rotate out the good ones, though its state is the one
     * that gave the non-finite steps. Every rank skips alike. */
    if (T->bad_streak > 0) {
        if (trainer_rank(T) == 0)
            fprintf(stderr, "warning: %s: step %llu: no checkpoint written: steps are being skipped since step %llu; "
                            "%s/latest still names the last one written\n",
                    c->source, (unsigned long long)T->step, (unsigned long long)T->first_bad_step, dir);
        return 0;
    }
    CkptData d;
    trainer_device_ckpt_data(T, &d, 1); /* the device state copied into host buffers */
    /* Never a checkpoint of a poisoned state: it would become "latest" and
     * rotate the good ones out. Every rank holds the same state, so every
     * rank decides the same. */
    char what[PARAM_NAME_MAX + 64];
    if (ckpt_find_nonfinite(&d, what, sizeof what)) {
        trainer_device_release_images(T);
        if (trainer_rank(T) == 0)
            fprintf(stderr, "error: %s: step %llu: %s is not finite: no checkpoint written; %s/latest still names the "
                            "last good one\n",
                    c->source, (unsigned long long)T->step, what, dir);
        T->state_bad = 1;
        return 0;
    }
    char *yaml = config_to_yaml(c);
    d.config_yaml = yaml;
    CkptState st = {.step = T->step, .seed = c->seed, .pos = loader_position(T->loader), .world_size = trainer_world(T),
                    .aux_weight = trainer_has_pixelgen(T) ? T->pg.lambda : 1.0};
    snprintf(st.run_id, sizeof st.run_id, "%s", T->run_id);
    /* The newest known-good checkpoint survives pruning until a newer one
     * is confirmed: the one just written may hold a state that fails at
     * its first step. */
    if (T->ckpt_good) st.protect_step = T->ckpt_good_step; /* 0 (an imported step-0 file): none */
    ckpt_save(T->comm, dir, &d, &st, c->keep_last, c->keep_every);
    trainer_device_release_images(T);
    free(yaml);
    char path[1200];
    snprintf(path, sizeof path, "%s/ckpt-%08llu.h5", dir, (unsigned long long)T->step);
    T->ckpt_pending = 1, T->ckpt_pending_step = T->step;
    snprintf(T->ckpt_pending_path, sizeof T->ckpt_pending_path, "%s", path);
    callbacks_on_checkpoint(T, path);
    return 1;
}

/* The NaN guard gave up: say why, what to change and where to resume
 * from, log it, and stop without a checkpoint. The checkpoint to resume
 * from is the newest one a good step followed (a checkpoint written just
 * before the first bad step holds the state that failed); "latest" is
 * pointed back at it when it is in this run's directory, so --resume auto
 * finds it too. */
static int trainer_diverged(Trainer *T) {
    const Config *c = &T->cfg;
    progress_done(&T->progress);
    char where[1600];
    if (T->ckpt_good)
        snprintf(where, sizeof where, "resume from %s (step %llu, the last checkpoint a good step followed)",
                 T->ckpt_good_path, (unsigned long long)T->ckpt_good_step);
    else
        snprintf(where, sizeof where, "start again: no checkpoint of this run was followed by a good step");
    if (trainer_rank(T) == 0) {
        if (T->state_bad)
            fprintf(stderr, "error: %s: the run diverged at step %llu: its state is no longer finite", c->source,
                    (unsigned long long)T->step);
        else if (T->bad_streak > 0)
            fprintf(stderr,
                    "error: %s: the run diverged at step %llu: %d consecutive step%s skipped for a non-finite loss "
                    "or gradient since step %llu (%d in all; train.max_bad_steps = %d)",
                    c->source, (unsigned long long)T->step, T->bad_streak, T->bad_streak == 1 ? "" : "s",
                    (unsigned long long)T->first_bad_step, T->skipped_total, c->max_bad_steps);
        else
            fprintf(stderr, "error: %s: the run diverged: every step of it (%d) was skipped for a non-finite loss "
                            "or gradient", c->source, T->skipped_total);
        fprintf(stderr, ". Lower optim.lr or set optim.grad_clip, then %s\n", where);
        char dir[1100];
        snprintf(dir, sizeof dir, "%s/ckpt", c->out_dir);
        if (T->ckpt_good && ckpt_point_latest(dir, T->ckpt_good_path))
            fprintf(stderr, "notice: %s/latest names %s again\n", dir, T->ckpt_good_path);
    }
    metrics_begin(&T->metrics);
    metrics_str(&T->metrics, "event", "diverged");
    metrics_int(&T->metrics, "step", (long long)T->step);
    metrics_int(&T->metrics, "skipped_steps", T->skipped_total);
    if (T->ckpt_good) metrics_str(&T->metrics, "resume_from", T->ckpt_good_path);
    metrics_end(&T->metrics);
    return TRAINER_EXIT_DIVERGED;
}

static int trainer_run_loop(Trainer *T);

int trainer_run(Trainer *T) {
    watchdog_start(&T->watchdog, T->cfg.watchdog_s, trainer_rank(T), trainer_world(T), T->cfg.out_dir, T->cfg.source,
                   T->step, TRAINER_EXIT_STALLED);
    int code = trainer_run_loop(T);
    watchdog_stop(&T->watchdog);
    return code;
}

/* Test hook: the step loop stops for good before this step, as a rank
 * stuck in a kernel or a dead file system would (the watchdog's test). */
static void trainer_test_stall(const Trainer *T) {
    const char *at = getenv("JIT_TEST_STALL_AT_STEP");
    if (!at || strtoull(at, NULL, 10) != T->step) return;
    fprintf(stderr, "test: JIT_TEST_STALL_AT_STEP=%s: rank %d stalls\n", at, trainer_rank(T));
    for (;;) pause();
}

static int trainer_run_loop(Trainer *T) {
    const Config *c = &T->cfg;
    if (trainer_rank(T) == 0)
        printf("training %s: %s, %zu parameters, %d steps of %d x %d images, data %s (%lld images)\n", c->run_name,
               c->model_name, params_count(&T->model.params), c->steps, c->batch_size * trainer_world(T), c->grad_accum,
               c->data_train, (long long)T->data.total);
    if (trainer_rank(T) == 0) {
        char dev[256], red[256];
        printf("device: %s; %s\n", trainer_device_describe(T, dev, sizeof dev),
               grad_reduce_describe(&T->red, red, sizeof red));
    }
    long first_step = (long)T->step;
    while ((long)T->step < c->steps) {
        trainer_test_stall(T);
        trainer_step(T);
        watchdog_beat(&T->watchdog, T->step);
        long s = (long)T->step;
        if (trainer_rank(T) == 0 && (s % c->log_every == 0 || s == c->steps)) progress(T);
        if (c->sample_every > 0 && s % c->sample_every == 0 && s != c->steps) {
            progress_done(&T->progress);
            /* Rank 0 samples alone for as long as a grid takes; the others
             * wait for it here, disarmed, instead of in the next step. */
            watchdog_pause(&T->watchdog);
            trainer_sample(T);
            if (T->comm) comm_barrier(T->comm);
            watchdog_resume(&T->watchdog);
        }
        /* The condition is the same on every rank: all evaluate together. */
        if (c->eval_every > 0 && s % c->eval_every == 0) {
            progress_done(&T->progress);
            watchdog_pause(&T->watchdog);
            trainer_eval(T);
            watchdog_resume(&T->watchdog);
        }
        /* Every rank skips the same steps (the loss and gradient norm are
         * global), so every rank stops here together. */
        if (c->max_bad_steps > 0 && T->bad_streak >= c->max_bad_steps) return trainer_diverged(T);
        if (c->checkpoint_every > 0 && s % c->checkpoint_every == 0 && s != c->steps) trainer_checkpoint(T);
        if (T->state_bad) return trainer_diverged(T);
        /* A signal on any rank stops every rank at the same step boundary. */
        int stop = trainer_stop_signal;
        if (T->comm) comm_allreduce_i32(T->comm, &stop, 1, COMM_MAX);
        if (stop && s != c->steps) {
            progress_done(&T->progress);
            int written = trainer_checkpoint(T);
            if (T->state_bad) return trainer_diverged(T);
            if (trainer_rank(T) == 0 && written)
                printf("received %s: checkpoint written at step %ld; exiting with code %d so the job is requeued\n",
                       stop == SIGUSR1 ? "SIGUSR1" : "SIGTERM", s, TRAINER_EXIT_REQUEUE);
            else if (trainer_rank(T) == 0)
                printf("received %s at step %ld: no checkpoint (steps are being skipped); exiting with code %d so "
                       "the job is requeued\n", stop == SIGUSR1 ? "SIGUSR1" : "SIGTERM", s, TRAINER_EXIT_REQUEUE);
            metrics_begin(&T->metrics);
            metrics_str(&T->metrics, "event", "preempted");
            metrics_int(&T->metrics, "step", s);
            metrics_end(&T->metrics);
            return TRAINER_EXIT_REQUEUE;
        }
    }
    /* Every step of this run skipped (fewer than max_bad_steps): nothing learned. */
    if (T->skipped_total > 0 && (long)T->skipped_total >= (long)T->step - first_step) return trainer_diverged(T);
    progress_done(&T->progress);
    /* Ending while steps are being skipped: no final checkpoint, and the
     * run did not end well. */
    if (!trainer_checkpoint(T)) return trainer_diverged(T);
    watchdog_pause(&T->watchdog); /* the steps are done; rank 0 samples the final grid alone */
    trainer_sample(T);
    callbacks_on_train_end(T);
    /* A signal during the final grid: the checkpoint is written; requeued,
     * the job resumes at the last step and only samples. */
    if (trainer_stop_signal) {
        if (trainer_rank(T) == 0)
            printf("received %s after the last step: checkpoint written; exiting with code %d\n",
                   trainer_stop_signal == SIGUSR1 ? "SIGUSR1" : "SIGTERM", TRAINER_EXIT_REQUEUE);
        return TRAINER_EXIT_REQUEUE;
    }
    return 0;
}
