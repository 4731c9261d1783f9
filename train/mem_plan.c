/* train/mem_plan.c — the memory plan of a training configuration (see
 * mem_plan.h): the trainer's allocations replayed on counted memory. */
#include "train/mem_plan.h"

#include <string.h>

#include "core/alloc.h"
#include "core/check.h"
#include "core/ops.h"
#include "core/plan_mem.h"
#include "train/losses/pixelgen.h"
#include "train/model/jit.h"
#include "train/trainer.h"

static const char *const mp_levels[MP_LEVELS] = {"none", "attention", "block"};

/* Bytes allocated since a mark: the counted device memory, plus host memory
 * when the device is the host. */
typedef struct Mark {
    size_t dev;
    long long host;
} Mark;

static Mark mark_now(void) { return (Mark){plan_mem_live(), (long long)core_alloc_live_bytes()}; }

static size_t since(Mark m, int on_cpu, size_t *host_out) {
    long long h = (long long)core_alloc_live_bytes() - m.host;
    if (h < 0) h = 0;
    if (host_out) *host_out += (size_t)h;
    return plan_mem_live() - m.dev + (on_cpu ? (size_t)h : 0);
}

/* One micro-batch of the trainer (train/trainer.c micro_batch and the
 * backward after it) at recomputation level `level`, on a fresh graph. */
static void plan_step(const Config *c, int ranks, const Backend *pb, JitModel *m, PixelGen *pg, int level,
                      size_t *out, size_t *arena_bytes, size_t *peak) {
    const JitConfig *mc = &c->model;
    int B = c->batch_size, C = mc->in_channels, S = mc->img_size, per = C * S * S;
    int on_cpu = device_mem_is_host(pb->mem), pixelgen = pixelgen_enabled(c);
    /* The host inputs of the step: every sample passes the perceptual gate. */
    float *img = core_calloc(sizeof(float) * (size_t)B * per), *t_host = core_malloc(sizeof(float) * (size_t)B);
    int *y = core_calloc(sizeof(int) * (size_t)B);
    for (int b = 0; b < B; b++) t_host[b] = 1.0f;
    size_t dev0 = plan_mem_live();
    long long host0 = (long long)core_alloc_live_bytes();
    plan_mem_peak_reset();
    core_alloc_peak_reset();

    Graph g;
    graph_init(&g, pb, TRAINER_ARENA_BYTES);
    g.training = true;
    g.seed = c->seed;
    Tensor *x = graph_new(&g, 4, B, C, S, S), *z = graph_new(&g, 4, B, C, S, S), *t = graph_new(&g, 1, B);
    size_t a0 = arena_in_use(&g.arena);
    JitForwardOpts o = {.capture_hidden = c->repa_weight > 0, .recompute = level};
    Tensor *xhat = jit_forward(m, &g, z, t, y, &o);
    Tensor *loss = op_vloss(&g, xhat, x, t);
    size_t a1 = arena_in_use(&g.arena);
    PixelGenTerms aux;
    if (pixelgen) {
        uint64_t step = 0; /* a step that measures the adaptive weight, when there is one: two replays */
        if (c->adaptive_start >= 0)
            for (step = (uint64_t)c->adaptive_start; step % (uint64_t)c->adaptive_every; step++) {
            }
        pixelgen_step_begin(pg, step);
        pixelgen_terms(pg, &g, m, xhat, x, img, t_host, 0, ranks, &aux);
    }
    size_t a2 = arena_in_use(&g.arena);
    const float seed = 1.0f / (float)c->grad_accum;
    if (pixelgen) {
        pixelgen_backward(pg, &g, m, loss, seed, &aux, NULL);
    } else {
        graph_seed(&g, loss, &seed);
        graph_backward_seeded(&g);
    }
    size_t a3 = arena_in_use(&g.arena);
    out[MP_BATCH] = a0;
    out[MP_ACT] = a1 - a0;
    out[MP_LOSS_ACT] = a2 - a1;
    out[MP_BACKWARD] = a3 - a2;
    out[MP_SCRATCH] = g.scratch.capacity;
    graph_reset(&g); /* the step arena becomes one block of the step's high-water size */
    out[MP_SLACK] = g.arena.capacity - arena_high_water(&g.arena);
    long long host_peak = (long long)core_alloc_peak_bytes() - host0;
    out[MP_HOST_STEP] = on_cpu && host_peak > 0 ? (size_t)host_peak : 0;
    *arena_bytes = g.arena.capacity + g.scratch.capacity;
    *peak = plan_mem_peak() - dev0 + out[MP_HOST_STEP];
    graph_free(&g);
    core_free(img), core_free(t_host), core_free(y);
}

void mem_plan_compute(const Config *cfg, int ranks, MemPlan *p) {
    CHECK(ranks >= 1, "the memory plan needs at least one rank, got %d", ranks);
    memset(p, 0, sizeof *p);
    const Backend *target = backend_find(cfg->device);
    CHECK(target != NULL, "%s: run.device %s is not in this build (it has: %s)", cfg->source, cfg->device,
          backend_names());
    Config c = *cfg;
    /* The frozen networks at the configured width with random weights (the
     * files' shapes: the public ones are full width); every sample passes
     * the perceptual gate (the step's worst case). */
    if (c.frozen_random_div == 0) c.frozen_random_div = 1;
    c.percept_t_threshold = 0.0f;
    plan_mem_reset();
    const Backend *pb = plan_backend(target);
    int on_cpu = device_mem_is_host(pb->mem);
    p->ranks = ranks, p->on_cpu = on_cpu, p->pixelgen = pixelgen_enabled(&c), p->device = target->name;

    JitModel m;
    Mark mk = mark_now();
    jit_build_planned(&m, &c.model, pb);
    if (c.official_decay_set) jit_use_official_decay_set(&m);
    p->n_params = params_count(&m.params);
    p->state[MP_PARAMS] = plan_mem_size(m.params.data);
    p->state[MP_GRADS] = plan_mem_size(m.params.grad);
    p->state[MP_TABLES] = since(mk, on_cpu, &p->host_state) - p->state[MP_PARAMS] - p->state[MP_GRADS];

    /* The flat state buffers of trainer_device.c: two moments, the EMA copies, the backup. */
    const DeviceMem *mem = pb->mem;
    size_t sb = trainer_state_bytes(&m.params);
    void *buf[CFG_MAX_EMA + 3];
    int nbuf = 0;
    mk = mark_now();
    buf[nbuf++] = mem->alloc(sb), buf[nbuf++] = mem->alloc(sb);
    p->state[MP_OPTIM] = since(mk, on_cpu, NULL);
    mk = mark_now();
    for (int k = 0; k < c.n_ema; k++) buf[nbuf++] = mem->alloc(sb);
    p->state[MP_EMA] = since(mk, on_cpu, NULL);
    mk = mark_now();
    buf[nbuf++] = mem->alloc(sb);
    p->state[MP_BACKUP] = since(mk, on_cpu, NULL);

    PixelGen pg;
    memset(&pg, 0, sizeof pg);
    if (p->pixelgen) {
        mk = mark_now();
        pixelgen_open(&pg, &c, &m, pb);
        p->state[MP_FROZEN] = since(mk, on_cpu, &p->host_state);
    }
    if (on_cpu) p->host_state = 0; /* counted in the categories */
    size_t state = 0;
    for (int i = 0; i < MP_N_STATE; i++) state += p->state[i];
    for (int l = 0; l < MP_LEVELS; l++) {
        size_t peak;
        plan_step(&c, ranks, pb, &m, &pg, l, p->step[l], &p->step_arena[l], &peak);
        p->peak[l] = state + peak;
    }
    if (p->pixelgen) pixelgen_free(&pg);
    for (int i = 0; i < nbuf; i++) mem->free(buf[i]);
    jit_free(&m);
    plan_mem_reset();
}

static double gib(size_t b) { return (double)b / (double)(1ull << 30); }

/* An 80 GB H100 reports 79.1 GiB to cudaMemGetInfo; the CUDA context,
 * cuBLASLt's 32 MiB workspace and NCCL's buffers are not counted by the
 * plan: 2 GiB are left for them. */
#define MP_H100_GIB 79.1
#define MP_UNCOUNTED_GIB 2.0

void mem_plan_print(FILE *f, const Config *c, const MemPlan *p) {
    static const char *const state_names[MP_N_STATE] = {
        "parameters", "gradients", "optimizer state (AdamW m, v)", "EMA copies", "raw-weight backup (sampling)",
        "fixed tables (position, RoPE)", "frozen DINOv2 + VGG16/LPIPS"};
    static const char *const step_names[MP_N_STEP] = {
        "micro-batch tensors (x, z, t)", "activations: JiT forward + v-loss", "activations: PixelGen's losses",
        "activation gradients + workspaces", "recomputation arena (1 segment)", "step arena's first block unused",
        "host bookkeeping of the step"};
    fprintf(f, "memory plan: %s: %s, %zu parameters, %d images per rank x %d rank%s, %s, PixelGen's losses %s\n",
            c->source, c->model_name, p->n_params, c->batch_size, p->ranks, p->ranks == 1 ? "" : "s", p->device,
            p->pixelgen ? "on" : "off");
    fprintf(f, "bytes per rank (data parallel: every rank holds all of it, whatever the rank count)\n");
    fprintf(f, "  %-36s %15s %9s\n", "state", "bytes", "GiB");
    size_t state = 0;
    for (int i = 0; i < MP_N_STATE; i++) {
        if (i == MP_FROZEN && !p->pixelgen) continue;
        fprintf(f, "  %-36s %15zu %9.3f\n", state_names[i], p->state[i], gib(p->state[i]));
        state += p->state[i];
    }
    fprintf(f, "  %-36s %15zu %9.3f\n", "state in all", state, gib(state));
    fprintf(f, "  %-36s", "one micro-batch, train.recompute:");
    for (int l = 0; l < MP_LEVELS; l++) fprintf(f, " %15s", mp_levels[l]);
    fprintf(f, "\n");
    for (int i = 0; i < MP_N_STEP; i++) {
        if ((i == MP_LOSS_ACT && !p->pixelgen) || (i == MP_HOST_STEP && !p->on_cpu)) continue;
        fprintf(f, "  %-36s", step_names[i]);
        for (int l = 0; l < MP_LEVELS; l++) fprintf(f, " %15zu", p->step[l][i]);
        fprintf(f, "\n");
    }
    fprintf(f, "  %-36s", "peak per rank (bytes)");
    for (int l = 0; l < MP_LEVELS; l++) fprintf(f, " %15zu", p->peak[l]);
    fprintf(f, "\n  %-36s", "peak per rank (GiB)");
    for (int l = 0; l < MP_LEVELS; l++) fprintf(f, " %15.2f", gib(p->peak[l]));
    fprintf(f, "\n  %-36s", "with 2-byte activations (GiB, est.)");
    for (int l = 0; l < MP_LEVELS; l++) fprintf(f, " %15.2f", gib(p->peak[l] - p->step_arena[l] / 2));
    fprintf(f, "\n");
    if (!p->on_cpu) {
        fprintf(f, "  %-36s", "fits an 80 GB H100 (fp32 / 2-byte)");
        for (int l = 0; l < MP_LEVELS; l++) {
            int a = gib(p->peak[l]) + MP_UNCOUNTED_GIB <= MP_H100_GIB,
                b = gib(p->peak[l] - p->step_arena[l] / 2) + MP_UNCOUNTED_GIB <= MP_H100_GIB;
            fprintf(f, " %15s", a ? "yes / yes" : b ? "no / yes" : "no / no");
        }
        fprintf(f, "\n  host memory counted besides (the frozen networks' host copies, the DINOv2 cache; not the "
                   "trainer's host images of the state): %zu bytes (%.2f GiB)\n",
                p->host_state, gib(p->host_state));
        fprintf(f, "  fits: peak + %.0f GiB for what the plan does not count (CUDA context, cuBLASLt workspace, NCCL) "
                   "<= %.1f GiB\n", MP_UNCOUNTED_GIB, MP_H100_GIB);
    }
    fprintf(f, "  2-byte activations: every step-arena byte halved, an estimate of what bf16 activations would give "
               "(activations are stored in fp32 today, so this line is not a count)\n");
}
