/* tests/test_trainer.c — the trainer on a small synthetic data set: the loss
 * falls over 200 steps, same seed means bit-identical losses, the SLA2
 * callbacks act at their configured steps (read back from metrics.jsonl),
 * the NaN guard skips a poisoned step, a resumed run continues exactly, the
 * two-stage conversion trains what each stage should, and the sampler is
 * deterministic with CFG 1 equal to the conditional sample. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hdf5.h>

#include "core/rng.h"
#include "io/ckpt.h"
#include "io/shards.h"
#include "train/config/config.h"
#include "train/model/sampler.h"
#include "train/schedule.h"
#include "train/trainer.h"
#include "train/trainer_device.h"
#include "trainer_fixture.h"

/* Criterion's .init: the toy data in a fresh directory. */
static void make_data(void) { fixture_make_toy_data("jit-trainer"); }

static Config small_config_ov(const char *name, int sla2, int n_ov, char **ov) {
    return fixture_tiny_config(name, sla2, NULL, n_ov, ov);
}

static Config small_config(const char *name, int sla2) { return small_config_ov(name, sla2, 0, NULL); }

static float *run_losses(Config *c, int steps, const char *resume) {
    Trainer T;
    trainer_init(&T, c, resume, NULL);
    float *l = calloc((size_t)steps, sizeof(float));
    for (int s = (int)T.step; s < steps; s++) l[s] = trainer_step(&T);
    trainer_free(&T);
    return l;
}

Test(trainer, loss_falls_and_is_bit_reproducible, .init = make_data) {
    Config c = small_config("fall", 0);
    float *a = run_losses(&c, 200, NULL);
    double first = 0, last = 0;
    for (int i = 0; i < 20; i++) first += a[i] / 20, last += a[180 + i] / 20;
    printf("trainer: mean loss of steps 1-20 %.4f, of steps 181-200 %.4f (%.0f%% lower)\n", first, last,
           100 * (1 - last / first));
    cr_expect_lt(last, 0.6 * first, "200 steps must lower the loss by at least 40%%: %g -> %g", first, last);
    float *b = run_losses(&c, 30, NULL);
    for (int i = 0; i < 30; i++) cr_expect_eq(a[i], b[i], "step %d: %.9g vs %.9g with the same seed", i, a[i], b[i]);
    free(a), free(b);
}

/* The number after "key": in a JSON line, or NAN. */
static double json_num(const char *line, const char *key) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    const char *p = strstr(line, pat);
    return p ? strtod(p + strlen(pat), NULL) : NAN;
}

Test(trainer, sla2_callbacks_act_at_their_steps, .init = make_data) {
    Config c = small_config("callbacks", 1);
    char *ov[] = {"train.steps=20"};
    char yaml[4096];
    snprintf(yaml, sizeof yaml,
             "run: {name: cb, out_dir: %s/cb, seed: 1}\n"
             "model: {name: jit-tiny, img_size: 16, patch: 4, depth: 2, hidden: 64, heads: 2, bottleneck: 16,\n"
             "        in_context_len: 4, in_context_start: 1, num_classes: 4, use_sla2: true,\n"
             "        sla2_compression_ratio: 4, sla2_topk_ratio: 0.5}\n"
             "data: {train: %s/data, batch_size: 8}\n"
             "logging: {progress: false}\n"
             "callbacks:\n"
             "  - {type: RouterParameterScheduler, start_ratio: 1.0, target_ratio: 0.2, start_step: 5,\n"
             "     warmup_steps: 10, schedule: linear, layer: all}\n"
             "  - {type: SLA2QATCallback, enable_step: 12}\n"
             "  - {type: QuantizedAttentionMonitor, every: 5}\n",
             fixture_dir, fixture_dir);
    config_load_string(&c, "callbacks", yaml, 1, ov);
    free(run_losses(&c, 20, NULL));
    char path[512], line[65536];
    snprintf(path, sizeof path, "%s/cb/metrics.jsonl", fixture_dir);
    FILE *f = fopen(path, "r");
    cr_assert(f != NULL);
    int steps_seen = 0, qat_event = -1, stats_seen = 0;
    while (fgets(line, sizeof line, f)) {
        if (strstr(line, "\"event\": \"qat_enabled\"")) qat_event = (int)json_num(line, "step");
        if (strstr(line, "\"event\"")) continue;
        int s = (int)json_num(line, "step") - 1; /* the record of update s carries step s+1 */
        double want = s <= 5 ? 1.0 : s >= 15 ? 0.2 : 1.0 + (0.2 - 1.0) * (s - 5) / 10.0;
        cr_expect(fabs(json_num(line, "topk") - want) < 1e-6, "update %d: top-k %g, expected %g", s,
                  json_num(line, "topk"), want);
        cr_expect_eq((int)json_num(line, "qat"), s >= 12, "update %d: qat %g", s, json_num(line, "qat"));
        int has_stats = strstr(line, "\"sla2\": [") != NULL;
        cr_expect_eq(has_stats, s % 5 == 0, "update %d: statistics %s", s, has_stats ? "present" : "missing");
        if (has_stats) {
            stats_seen++;
            cr_expect(strstr(line, "\"qat_rel_err\"") && strstr(line, "\"captured_mass\""));
        }
        steps_seen++;
    }
    fclose(f);
    cr_expect_eq(steps_seen, 20);
    cr_expect_eq(qat_event, 12, "the QAT switch is logged at step 12, got %d", qat_event);
    cr_expect_eq(stats_seen, 4);
}

Test(trainer, nan_guard_skips_a_poisoned_step, .init = make_data) {
    Config c = small_config("nan", 0);
    Trainer T;
    trainer_init(&T, &c, NULL, NULL);
    for (int s = 0; s < 3; s++) cr_assert(isfinite(trainer_step(&T)));
    size_t bytes = T.model.params.padded * sizeof(float);
    float *before = malloc(bytes);
    memcpy(before, T.model.params.data, bytes);
    T.inject_nan_step = 3;
    cr_expect(isnan(trainer_step(&T)), "the poisoned step reports NaN");
    cr_expect_eq(T.skipped_total, 1);
    cr_expect_eq(memcmp(before, T.model.params.data, bytes), 0, "a skipped step must not change the weights");
    for (int s = 0; s < 3; s++) cr_expect(isfinite(trainer_step(&T)), "training goes on after the skip");
    cr_expect_neq(memcmp(before, T.model.params.data, bytes), 0);
    free(before);
    trainer_free(&T);
}

Test(trainer, resume_continues_bit_identically, .init = make_data) {
    Config c = small_config("resume", 1);
    float *straight = run_losses(&c, 12, NULL);
    Config c2 = small_config("resume2", 1);
    Trainer T;
    trainer_init(&T, &c2, NULL, NULL);
    for (int s = 0; s < 6; s++) trainer_step(&T);
    trainer_checkpoint(&T);
    trainer_free(&T);
    float *resumed = run_losses(&c2, 12, "auto");
    for (int s = 6; s < 12; s++)
        cr_expect_eq(straight[s], resumed[s], "step %d after resume: %.9g vs %.9g", s, resumed[s], straight[s]);
    free(straight), free(resumed);
}

/* A fresh run of c that checkpoints at steps 2 and 4, then ends. */
static void train_two_checkpoints(Config *c) {
    Trainer T;
    trainer_init(&T, c, NULL, NULL);
    for (int k = 0; k < 2; k++) {
        for (int s = 0; s < 2; s++) trainer_step(&T);
        trainer_checkpoint(&T);
    }
    trainer_free(&T);
}

/* A latest checkpoint cut short (shared storage, a full disk) does not stop
 * the resume: the run goes on from the newest intact one, and says so. A
 * checkpoint write that was killed leaves ckpt-N.h5.tmp: removed at start. */
Test(trainer, resume_falls_back_to_the_newest_intact_checkpoint, .init = make_data) {
    Config c = small_config("fallback", 0);
    Trainer T;
    train_two_checkpoints(&c);
    char p[600];
    snprintf(p, sizeof p, "%s/fallback/ckpt/ckpt-00000004.h5", fixture_dir);
    struct stat sb;
    cr_assert_eq(stat(p, &sb), 0);
    cr_assert_eq(truncate(p, sb.st_size / 2), 0);
    char stray[600];
    snprintf(stray, sizeof stray, "%s/fallback/ckpt/ckpt-00000006.h5.tmp", fixture_dir);
    FILE *f = fopen(stray, "w");
    cr_assert(f != NULL);
    fputs("half a checkpoint", f);
    fclose(f);
    trainer_init(&T, &c, "auto", NULL);
    cr_expect_eq(T.step, 2, "resumed at step %llu, expected the intact step-2 checkpoint", (unsigned long long)T.step);
    cr_expect(isfinite(trainer_step(&T)));
    cr_expect_neq(access(stray, F_OK), 0, "the stray %s is still there", stray);
    trainer_free(&T);
}

/* A diverging run stops with an error after train.max_bad_steps skipped
 * steps in a row, and one whose every step was skipped fails too, both
 * without a checkpoint (before, both exited 0); a single skipped step among
 * good ones does not stop a run. */
Test(trainer, diverging_run_stops_with_an_error, .init = make_data) {
    char *ov[] = {"train.max_bad_steps=3", "train.steps=20"};
    Config c = small_config_ov("diverge", 0, 2, ov);
    Trainer T;
    trainer_init(&T, &c, NULL, NULL);
    T.inject_nan_step = 0, T.inject_nan_count = 1000;
    cr_expect_eq(trainer_run(&T), TRAINER_EXIT_DIVERGED);
    cr_expect_eq(T.step, 3, "stopped at step %llu", (unsigned long long)T.step);
    trainer_free(&T);
    char p[600];
    snprintf(p, sizeof p, "%s/diverge/ckpt/latest", fixture_dir);
    cr_expect_neq(access(p, F_OK), 0, "a diverged run wrote a checkpoint");

    char *ov2[] = {"train.max_bad_steps=0", "train.steps=2"};
    Config c2 = small_config_ov("all-bad", 0, 2, ov2);
    trainer_init(&T, &c2, NULL, NULL);
    T.inject_nan_step = 0, T.inject_nan_count = 1000;
    cr_expect_eq(trainer_run(&T), TRAINER_EXIT_DIVERGED, "a run without one good step ended as if it had trained");
    trainer_free(&T);

    char *ov3[] = {"train.max_bad_steps=3", "train.steps=4"};
    Config c3 = small_config_ov("one-bad", 0, 2, ov3);
    trainer_init(&T, &c3, NULL, NULL);
    T.inject_nan_step = 1;
    cr_expect_eq(trainer_run(&T), 0);
    cr_expect_eq(T.skipped_total, 1);
    trainer_free(&T);
}

/* A state with NaN or Inf (an Adam moment blown up by a huge learning rate,
 * say) is never checkpointed: "latest" keeps naming the last good one, and
 * the run ends as diverged. */
Test(trainer, no_checkpoint_of_a_nonfinite_state, .init = make_data) {
    Config c = small_config("nonfinite", 0);
    Trainer T;
    trainer_init(&T, &c, NULL, NULL);
    for (int s = 0; s < 2; s++) trainer_step(&T);
    trainer_checkpoint(&T);
    for (int s = 0; s < 2; s++) trainer_step(&T);
    T.opt.v[T.model.params.info[3].offset] = INFINITY;
    trainer_checkpoint(&T);
    cr_expect(T.state_bad, "the poisoned state was not noticed");
    char p[600];
    snprintf(p, sizeof p, "%s/nonfinite/ckpt/ckpt-00000004.h5", fixture_dir);
    cr_expect_neq(access(p, F_OK), 0, "a checkpoint of a non-finite state was written");
    snprintf(p, sizeof p, "%s/nonfinite/ckpt/latest", fixture_dir);
    FILE *f = fopen(p, "r");
    char name[64] = "";
    cr_assert(f && fgets(name, sizeof name, f));
    fclose(f);
    cr_expect(strncmp(name, "ckpt-00000002.h5", 16) == 0, "latest names %s", name);
    trainer_free(&T);
}

/* A checkpoint that holds NaN (written by another tool, or before this
 * check) is refused at resume, with the tensor named. */
Test(trainer, resume_refuses_a_nonfinite_checkpoint, .init = make_data, .exit_code = 1) {
    Config c = small_config("nanckpt", 0);
    Trainer T;
    trainer_init(&T, &c, NULL, NULL);
    trainer_step(&T);
    T.model.params.data[T.model.params.info[5].offset + 1] = NAN;
    CkptData d;
    trainer_device_ckpt_data(&T, &d, 1);
    CkptState st = {.step = T.step, .seed = c.seed, .pos = loader_position(T.loader), .world_size = 1};
    char dir[600];
    snprintf(dir, sizeof dir, "%s/nanckpt/ckpt", fixture_dir);
    ckpt_save(NULL, dir, &d, &st, 3, 0); /* bypassing the trainer's own check */
    trainer_free(&T);
    trainer_init(&T, &c, "auto", NULL); /* exits 1: "holds non-finite values (params/..." */
    trainer_free(&T);
}

/* Resuming with settings other than the checkpoint's: a change of the data
 * order (seed) or of the model (SLA2 switched off) is an error (before,
 * both were accepted silently); other settings are notices and the run
 * resumes. */
static void checkpoint_two_steps(const char *name, int sla2) {
    Config c = small_config(name, sla2);
    Trainer T;
    trainer_init(&T, &c, NULL, NULL);
    for (int s = 0; s < 2; s++) trainer_step(&T);
    trainer_checkpoint(&T);
    trainer_free(&T);
}

Test(trainer, resume_with_another_seed_is_an_error, .init = make_data, .exit_code = 1) {
    checkpoint_two_steps("reseed", 0);
    char *ov[] = {"run.seed=8"};
    Config c = small_config_ov("reseed", 0, 1, ov);
    Trainer T;
    trainer_init(&T, &c, "auto", NULL); /* exits 1: run.seed is 8, the checkpoint's run had 7 */
}

Test(trainer, resume_without_sla2_on_an_sla2_checkpoint_is_an_error, .init = make_data, .exit_code = 1) {
    checkpoint_two_steps("resla2", 1);
    Config c = small_config("resla2", 0);
    Trainer T;
    trainer_init(&T, &c, "auto", NULL); /* exits 1: model.use_sla2 is false, ... had true */
}

Test(trainer, resume_notices_other_settings, .init = make_data) {
    checkpoint_two_steps("relr", 0);
    char *ov[] = {"optim.lr=1.0e-3", "train.steps=300"};
    Config c = small_config_ov("relr", 0, 2, ov);
    Trainer T;
    trainer_init(&T, &c, "auto", NULL);
    cr_expect_eq(T.step, 2);
    trainer_free(&T);
}

Test(trainer, conversion_recipe_stage1_router_only_then_stage2, .init = make_data) {
    Config full = small_config("full", 0);
    Trainer T;
    trainer_init(&T, &full, NULL, NULL);
    for (int s = 0; s < 5; s++) trainer_step(&T);
    trainer_checkpoint(&T);
    trainer_free(&T);

    Config c = small_config("convert", 1);
    char yaml[4096];
    snprintf(yaml, sizeof yaml,
             "run: {name: convert, out_dir: %s/convert, seed: 3}\n"
             "model: {name: jit-tiny, img_size: 16, patch: 4, depth: 2, hidden: 64, heads: 2, bottleneck: 16,\n"
             "        in_context_len: 4, in_context_start: 1, num_classes: 4, use_sla2: true,\n"
             "        sla2_compression_ratio: 4, sla2_topk_ratio: 0.3}\n"
             "data: {train: %s/data, batch_size: 8}\n"
             "optim: {lr: 1.0e-3, warmup_steps: 0}\n"
             "train: {steps: 30}\n"
             "logging: {progress: false}\n"
             "callbacks:\n"
             "  - {type: SLA2Conversion, from: %s/full/ckpt, stage1_steps: 15, stage1_lr: 1.0e-2}\n",
             fixture_dir, fixture_dir, fixture_dir);
    config_load_string(&c, "convert", yaml, 0, NULL);
    trainer_init(&T, &c, NULL, NULL);
    ParamStore *ps = &T.model.params;
    size_t bytes = ps->padded * sizeof(float);
    float *start = malloc(bytes);
    memcpy(start, ps->data, bytes);
    double l_first = 0, l_last = 0;
    for (int s = 0; s < 15; s++) {
        float l = trainer_step(&T);
        if (s < 3) l_first += l / 3;
        if (s >= 12) l_last += l / 3;
    }
    printf("conversion stage 1: distillation loss %.5f -> %.5f\n", l_first, l_last);
    cr_expect_lt(l_last, l_first, "stage 1 lowers the distillation loss");
    float *after1 = malloc(bytes);
    memcpy(after1, ps->data, bytes);
    for (int i = 0; i < ps->n; i++) {
        const ParamInfo *p = &ps->info[i];
        int router = strstr(p->name, ".attn.sla2.") != NULL;
        int changed = memcmp(start + p->offset, after1 + p->offset, p->numel * sizeof(float)) != 0;
        cr_expect_eq(changed, router, "stage 1: %s %s", p->name, router ? "did not learn" : "changed (model is frozen)");
    }
    for (int s = 15; s < 20; s++) trainer_step(&T);
    for (int i = 0; i < ps->n; i++) {
        const ParamInfo *p = &ps->info[i];
        int proj = strstr(p->name, ".attn.sla2.proj_") != NULL;
        int changed = memcmp(after1 + p->offset, ps->data + p->offset, p->numel * sizeof(float)) != 0;
        if (proj) cr_expect(!changed, "stage 2: router %s must stay frozen", p->name);
        else if (strstr(p->name, "alpha_logit") || strstr(p->name, "qkv.weight"))
            cr_expect(changed, "stage 2: %s must learn", p->name);
    }
    free(start), free(after1);
    trainer_free(&T);
}

Test(sampler, deterministic_and_cfg_one_is_conditional, .init = make_data) {
    Config c = small_config("sample", 1);
    JitModel m;
    jit_build(&m, &c.model, 5);
    rng_fill_normal(m.params.data, m.params.padded, 2, RNG_STREAM_TEST, 0, 0.0f, 0.05f);
    Graph g;
    graph_init(&g, backend_cpu(), 1 << 20);
    const int n = 6, per = 16 * 16;
    int labels[6] = {0, 1, 2, 3, 1, 2};
    float *a = malloc(sizeof(float) * n * per), *b = malloc(sizeof(float) * n * per), *d = malloc(sizeof(float) * n * per);
    SamplerConfig sc = {.steps = 5, .cfg = 1.0f, .cfg_lo = 0.1f, .cfg_hi = 1.0f, .noise_scale = 1.0f, .seed = 9};
    sampler_run(&m, &g, &sc, labels, n, 4, a);
    sampler_run(&m, &g, &sc, labels, n, 4, b);
    cr_expect_eq(memcmp(a, b, sizeof(float) * n * per), 0, "sampling is deterministic");
    sampler_run(&m, &g, &sc, labels, n, 3, b);
    /* Another batch size draws the same noise per sample; only the matrix
     * products' blocking (and so the rounding) may differ. */
    double worst = 0;
    for (int i = 0; i < n * per; i++) worst = fmax(worst, fabs(a[i] - b[i]));
    cr_expect_lt(worst, 1e-4, "batch size changed the samples by %g", worst);
    SamplerConfig cond = sc;
    cond.cfg = 3.0f, cond.cfg_lo = 1.0f, cond.cfg_hi = 1.0f; /* an empty interval: never guided */
    sampler_run(&m, &g, &cond, labels, n, 4, b);
    cr_expect_eq(memcmp(a, b, sizeof(float) * n * per), 0, "CFG 1 equals the conditional sample");
    SamplerConfig guided = sc;
    guided.cfg = 3.0f;
    sampler_run(&m, &g, &guided, labels, n, 4, d);
    cr_expect_neq(memcmp(a, d, sizeof(float) * n * per), 0, "CFG 3 differs, so the test is not vacuous");
    for (int i = 0; i < n * per; i++) cr_assert(isfinite(d[i]));
    free(a), free(b), free(d);
    graph_free(&g);
    jit_free(&m);
}

/* ---- the official JiT recipe's switches (docs/interop.md, "Where the recipes differ") ---- */

/* optim.ema_warmup false: the official constant decay from the first step
 * (the default warm-up uses min(d, 1/10) at step 0). */
Test(recipe, ema_constant_decay_without_warmup, .init = make_data) {
    char *ov[] = {"optim.ema_warmup=false"};
    for (int official = 0; official < 2; official++) {
        Config c = small_config_ov(official ? "ema-const" : "ema-warm", 0, official, ov);
        cr_assert_eq(c.ema_warmup, !official);
        Trainer T;
        trainer_init(&T, &c, NULL, NULL);
        size_t n = T.model.params.padded;
        float *w0 = malloc(n * sizeof(float));
        memcpy(w0, T.model.params.data, n * sizeof(float));
        trainer_step(&T);
        const float *w1 = T.model.params.data, *e = T.ema[0];
        float d = official ? 0.99f : 0.1f; /* the decay the first update must have used */
        double worst = 0, moved = 0;
        for (size_t i = 0; i < n; i++) {
            double want = (double)w0[i] + (1.0 - d) * ((double)w1[i] - w0[i]);
            worst = fmax(worst, fabs(e[i] - want));
            moved = fmax(moved, fabs(w1[i] - w0[i]));
        }
        cr_expect(moved > 1e-4, "the step moved the weights (by %g)", moved);
        cr_expect(worst < 1e-3 * moved, "%s: EMA after one step is off the decay-%.2f update by %g",
                  official ? "constant decay" : "warm-up", d, worst);
        free(w0);
        trainer_free(&T);
    }
}

/* optim.official_decay_set: the class-embedding table and the in-context
 * position embedding are decayed too; nothing else changes. */
Test(recipe, official_weight_decay_set, .init = make_data) {
    char *ov[] = {"optim.official_decay_set=true"};
    Config a = small_config("wd-project", 0), b = small_config_ov("wd-official", 0, 1, ov);
    Trainer A, B;
    trainer_init(&A, &a, NULL, NULL);
    trainer_init(&B, &b, NULL, NULL);
    const ParamStore *pa = &A.model.params, *pb = &B.model.params;
    int extra = 0;
    for (int i = 0; i < pa->n; i++) {
        const char *nm = pa->info[i].name;
        int table = !strcmp(nm, "y_embedder.embedding_table.weight") || !strcmp(nm, "in_context_posemb");
        if (table) {
            cr_expect(!pa->info[i].weight_decay, "%s is not decayed by this project's default", nm);
            cr_expect(pb->info[i].weight_decay, "%s is decayed by the official set", nm);
            extra++;
        } else {
            cr_expect_eq(pa->info[i].weight_decay, pb->info[i].weight_decay, "%s: the sets differ here", nm);
        }
    }
    cr_expect_eq(extra, 2);
    trainer_free(&A), trainer_free(&B);
}

/* optim.official_warmup: lr * s / W (the first step at 0) instead of (s + 1) / W. */
Test(recipe, official_lr_warmup) {
    Config c;
    config_defaults(&c);
    c.lr = 1.0f, c.warmup_steps = 10, c.lr_schedule = LR_CONSTANT;
    cr_expect_float_eq(schedule_lr(&c, 0), 0.1f, 1e-7);
    cr_expect_float_eq(schedule_lr(&c, 9), 1.0f, 1e-7);
    c.official_warmup = 1;
    cr_expect_float_eq(schedule_lr(&c, 0), 0.0f, 1e-7);
    cr_expect_float_eq(schedule_lr(&c, 5), 0.5f, 1e-7);
    cr_expect_float_eq(schedule_lr(&c, 10), 1.0f, 1e-7);
}

/* sampling.official_cfg_interval: with lo = 0, guidance also at t = 0 (the
 * first Heun step), as the official (t < hi) & ((lo == 0) | (t > lo)). */
Test(sampler, official_cfg_interval_guides_at_zero, .init = make_data) {
    Config c = small_config("sample-cfg", 0);
    JitModel m;
    jit_build(&m, &c.model, 5);
    rng_fill_normal(m.params.data, m.params.padded, 2, RNG_STREAM_TEST, 0, 0.0f, 0.05f);
    Graph g;
    graph_init(&g, backend_cpu(), 1 << 20);
    const int n = 4, per = 16 * 16;
    int labels[4] = {0, 1, 2, 3};
    float *plain = malloc(sizeof(float) * n * per), *open = malloc(sizeof(float) * n * per);
    float *official = malloc(sizeof(float) * n * per);
    /* 5 steps: t = 0, 0.2, ...; only t = 0 is below hi = 0.05 */
    SamplerConfig sc = {.steps = 5, .cfg = 1.0f, .cfg_lo = 0.0f, .cfg_hi = 0.05f, .noise_scale = 1.0f, .seed = 9};
    sampler_run(&m, &g, &sc, labels, n, 4, plain);
    sc.cfg = 3.0f;
    sampler_run(&m, &g, &sc, labels, n, 4, open);
    sc.cfg_official = 1;
    sampler_run(&m, &g, &sc, labels, n, 4, official);
    cr_expect_eq(memcmp(plain, open, sizeof(float) * n * per), 0, "lo < t < hi: no step is guided");
    cr_expect_neq(memcmp(plain, official, sizeof(float) * n * per), 0, "the official rule guides at t = 0");
    free(plain), free(open), free(official);
    graph_free(&g);
    jit_free(&m);
}

/* SIGTERM (SLURM's time limit) during the end-of-run sampling: the sampling
 * stops at once instead of finishing a grid of 1000 steps, no grid is
 * written, the final checkpoint is there, and the run exits with the
 * requeue code (it used to wait for the whole grid). */
Test(trainer, sigterm_during_final_sampling_stops_it, .init = make_data) {
    char *ov[] = {"train.steps=1", "sampling.steps=1000", "sampling.per_class=4"};
    Config c = small_config_ov("termsample", 0, 3, ov);
    Trainer T;
    trainer_init(&T, &c, NULL, NULL);
    trainer_install_signal_handlers();
    raise(SIGTERM); /* arrives before the last step's check sees it: steps == 1 */
    int code = trainer_run(&T);
    trainer_free(&T);
    cr_expect_eq(code, TRAINER_EXIT_REQUEUE, "exit code %d", code);
    char p[700];
    snprintf(p, sizeof p, "%s/termsample/ckpt/ckpt-00000001.h5", fixture_dir);
    cr_expect_eq(access(p, F_OK), 0, "the final checkpoint is missing");
    snprintf(p, sizeof p, "%s/termsample/samples/step-00000001.png", fixture_dir);
    cr_expect_neq(access(p, F_OK), 0, "an interrupted grid was written");
    snprintf(p, sizeof p, "%s/termsample/metrics.jsonl", fixture_dir);
    FILE *f = fopen(p, "r");
    char line[4096];
    int seen = 0;
    while (f && fgets(line, sizeof line, f)) seen |= strstr(line, "\"samples_interrupted\"") != NULL;
    if (f) fclose(f);
    cr_expect(seen, "no samples_interrupted event in metrics.jsonl");
}

/* sampling.per_class 0: the trainer writes no sample grid, not even at the
 * end (the demo makes its grid with jit-eval, from the samples it scores). */
Test(trainer, per_class_zero_writes_no_grid, .init = make_data) {
    char *ov[] = {"train.steps=2", "train.sample_every=1", "sampling.per_class=0"};
    Config c = small_config_ov("nogrid", 0, 3, ov);
    Trainer T;
    trainer_init(&T, &c, NULL, NULL);
    cr_expect_eq(trainer_run(&T), 0);
    trainer_free(&T);
    char p[700];
    snprintf(p, sizeof p, "%s/nogrid/samples", fixture_dir);
    cr_expect_neq(access(p, F_OK), 0, "a samples directory was written with per_class 0");
    snprintf(p, sizeof p, "%s/nogrid/ckpt/ckpt-00000002.h5", fixture_dir);
    cr_expect_eq(access(p, F_OK), 0, "the final checkpoint is missing");
}

/* A finite gradient too large for AdamW's float second moment (g^2 would be
 * inf: optim.lr = 1e3 made one in issue 14) is skipped before the update:
 * weights, moments and EMA stay as they were and finite. With the old
 * NaN/Inf guard alone the moment became inf. */
Test(trainer, update_that_would_overflow_the_moments_is_skipped, .init = make_data) {
    Config c = small_config("huge", 0);
    Trainer T;
    trainer_init(&T, &c, NULL, NULL);
    for (int s = 0; s < 2; s++) cr_assert(isfinite(trainer_step(&T)));
    ParamStore *ps = &T.model.params;
    size_t bytes = ps->padded * sizeof(float);
    float *before = malloc(bytes);
    memcpy(before, ps->data, bytes);
    T.inject_nan_step = 2;
    T.inject_value = 1e30f; /* finite; its square is not */
    cr_expect(isnan(trainer_step(&T)), "the skipped step reports NaN");
    cr_expect_eq(T.skipped_total, 1);
    cr_expect_eq(memcmp(before, ps->data, bytes), 0, "a skipped step must not change the weights");
    for (size_t i = 0; i < ps->padded; i++) {
        if (!isfinite(T.opt.v[i]) || !isfinite(T.opt.m[i]) || !isfinite(T.ema[0][i])) {
            cr_assert_fail("non-finite optimizer or EMA state at %zu: m %g v %g ema %g", i, T.opt.m[i], T.opt.v[i],
                           T.ema[0][i]);
        }
    }
    cr_expect(isfinite(trainer_step(&T)), "training goes on");
    free(before);
    trainer_free(&T);
}

/* Flips one bit inside the stored chunk of a checkpoint's 2-D tensor. */
static void flip_tensor_byte(const char *path, const char *tensor) {
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT), d = H5Dopen2(f, tensor, H5P_DEFAULT);
    hsize_t origin[2] = {0, 0}, size = 0;
    haddr_t addr = 0;
    unsigned mask = 0;
    cr_assert(H5Dget_chunk_info_by_coord(d, origin, &mask, &addr, &size) >= 0 && size > 100);
    H5Dclose(d), H5Fclose(f);
    FILE *fp = fopen(path, "r+b");
    cr_assert(fp && fseek(fp, (long)addr + 64, SEEK_SET) == 0);
    int c = fgetc(fp);
    fseek(fp, (long)addr + 64, SEEK_SET);
    fputc(c ^ 0x10, fp);
    fclose(fp);
}

/* A flipped byte inside a checkpointed weight: the tensor's Fletcher-32
 * checksum makes the resume an error naming the file and the tensor (it
 * used to load a silently different model) when no intact checkpoint is
 * left to fall back to. */
Test(trainer, corrupt_checkpoint_weight_is_an_error, .init = make_data, .exit_code = 1) {
    checkpoint_two_steps("flip", 0);
    char path[700];
    snprintf(path, sizeof path, "%s/flip/ckpt/ckpt-00000002.h5", fixture_dir);
    flip_tensor_byte(path, "params/blocks.0.attn.qkv.weight");
    Config cfg = small_config("flip", 0);
    Trainer T;
    trainer_init(&T, &cfg, "auto", NULL); /* exits 1: no intact checkpoint (params/... fails its checksum) */
}

/* A flipped byte in a tensor of the newest checkpoint (a weight, or an Adam
 * moment): --resume auto falls back to the newest intact one, as it does
 * for a truncated file (issue 28: it stopped with an error and a 20-line
 * HDF5 dump). */
Test(trainer, corrupt_newest_checkpoint_falls_back, .init = make_data) {
    const char *tensors[2] = {"params/blocks.1.mlp.w12.weight", "optim/v/blocks.0.attn.qkv.weight"};
    for (int k = 0; k < 2; k++) {
        char name[32];
        snprintf(name, sizeof name, "flipnew%d", k);
        Config c = small_config(name, 0);
        Trainer T;
        train_two_checkpoints(&c);
        char p[700];
        snprintf(p, sizeof p, "%s/%s/ckpt/ckpt-00000004.h5", fixture_dir, name);
        flip_tensor_byte(p, tensors[k]);
        trainer_init(&T, &c, "auto", NULL);
        cr_expect_eq(T.step, 2, "%s flipped: resumed at step %llu, expected the intact step-2 checkpoint", tensors[k],
                     (unsigned long long)T.step);
        cr_expect(isfinite(trainer_step(&T)));
        trainer_free(&T);
    }
}
