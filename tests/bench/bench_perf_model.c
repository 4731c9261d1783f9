/* tests/bench/bench_perf_model.c — the stated performance model of the CUDA
 * backend (perf_model.h): a PREDICTION of a training step of a configuration
 * on an H100 SXM, kernel by kernel, with today's SIMT attention kernels and
 * with the tensor-core FlashAttention-2 design, and of the attention op alone
 * at N = 256 ... 16384 (d = 64, B*H = tokens / N, as bench_cuda_attn).
 *
 *   bench_perf_model [--config configs/jit-b16.yaml] [--batch N] [--max-n 16384] [--tokens 65536]
 *                    [--tc-bwd-products 5|7] [--check] [--measure [--iters 10]]
 *
 * --batch defaults to the configuration's data.batch_size (128 for JiT-B/16).
 * Lines (besides the tables):
 *   pm_step config=... model=... batch=128 attn=simt|tc pred_ms=... fwd_ms=... bwd_ms=... opt_ms=...
 *           model_tflop=... mfu=...
 *   pm_attn N=1024 B=4 H=16 d=64 simt_fwd_ms=... simt_bwd_ms=... tc_fwd_ms=... tc_bwd_ms=... simt_tflops=...
 *           tc_tflops=... [meas_fwd_ms=... meas_bwd_ms=... meas_tflops=...]
 *   pm_sla2 N=1024 B=4 H=16 d=64 topk=0.15 block=32 simt_fwd_ms=... simt_bwd_ms=... tc_fwd_ms=... tc_bwd_ms=...
 *           simt_eq_tflops=... tc_eq_tflops=...   (SLA2 alone; an SLA2 configuration's step uses pm_sla2 per
 *           SLA2 block: attn=simt is the sparse branch on the SIMT flash tiles, attn=tc block-sparse on tensor
 *           cores, sla2_tc.cu)
 * --check: also runs the configuration's model once on the CPU (forward,
 *   v-loss, backward at --batch) and fails (exit 1) unless every op the graph
 *   records is called as often as the model's kernel list says, and the
 *   model's forward GEMM and attention FLOPs add up to pm_forward_flops: the
 *   prediction cannot drift from the model silently (ctest perf_model_check).
 * --measure (a GPU): times, in BF16 mode, the attention op at each N and the
 *   block's linear layers at their shapes through the op table, and prints
 *   them beside the predictions (exit 77 without a CUDA device). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "core/graph.h"
#include "core/ops.h"
#include "core/profile.h"
#include "core/rng.h"
#include "tests/bench/perf_model.h"
#include "train/config/config.h"
#ifdef JIT_HAVE_CUDA
#include "tests/bench/bench_cuda_time.h"
#endif

static const char *pm_unit_name(PmUnit u) { return u == PM_TC ? "tc" : u == PM_SIMT ? "simt" : "mem"; }

/* The step's kernels, one row per name and phase, SIMT-attention and
 * tensor-core-attention predictions side by side. */
static void print_step_table(const PmList *s, const PmList *t) {
    printf("%-34s %-3s %-4s %6s %9s %9s %9s %11s %11s\n", "kernel (summed over the step)", "ph", "unit", "launch",
           "GFLOP", "GB moved", "GB dram", "SIMT-attn ms", "TC-attn ms");
    for (int pass = 0; pass < 2; pass++) {
        const PmList *a = pass ? t : s, *b = pass ? s : t;
        for (int i = 0; i < a->n; i++) {
            const PmKernel *k = &a->k[i], *o = NULL;
            for (int j = 0; j < b->n; j++)
                if (b->k[j].phase == k->phase && !strcmp(b->k[j].name, k->name)) o = &b->k[j];
            if (pass && o) continue; /* printed in the first pass */
            char ts[16] = "-", tt[16] = "-";
            const PmKernel *ks = pass ? o : k, *kt = pass ? k : o;
            if (ks) snprintf(ts, sizeof ts, "%.3f", ks->time_s * 1e3);
            if (kt) snprintf(tt, sizeof tt, "%.3f", kt->time_s * 1e3);
            printf("%-34s %-3c %-4s %6ld %9.1f %9.2f %9.2f %11s %11s\n", k->name, k->phase, pm_unit_name(k->unit),
                   k->launches, k->flops * 1e-9, k->bytes * 1e-9, k->dram * 1e-9, ts, tt);
        }
    }
}

static void print_step_line(const char *cfg, const JitConfig *c, int batch, const PmList *l, const char *attn) {
    double model = 3.0 * pm_forward_flops(c) * batch, t = pm_total(l, 0, 0);
    printf("pm_step config=%s model=%s batch=%d attn=%s pred_ms=%.2f fwd_ms=%.2f bwd_ms=%.2f opt_ms=%.2f "
           "launches=%.0f model_tflop=%.3f mfu=%.3f\n",
           cfg, c->name, batch, attn, t * 1e3, pm_total(l, 'f', 0) * 1e3, pm_total(l, 'b', 0) * 1e3,
           pm_total(l, 'o', 0) * 1e3, pm_total(l, 0, 4), model * 1e-12, model / (t * l->r.tc_peak));
}

/* Time of the rows whose name starts with prefix (one phase). */
static double rows_time(const PmList *l, const char *prefix, char phase) {
    double s = 0;
    for (int i = 0; i < l->n; i++)
        if (l->k[i].phase == phase && !strncmp(l->k[i].name, prefix, strlen(prefix))) s += l->k[i].time_s;
    return s;
}

/* --check: the real model's recorded ops against the kernel list. */
static int check_against_model(const JitConfig *mc, int batch, const PmList *l) {
    JitModel m;
    jit_build(&m, mc, 1);
    const JitConfig *c = &m.cfg;
    Graph g;
    graph_init(&g, backend_cpu(), 1 << 20);
    g.training = true;
    Profile prof;
    profile_reset(&prof);
    g.prof = &prof;
    const int S = c->img_size, C = c->in_channels;
    Tensor *x = graph_new(&g, 4, batch, C, S, S), *z = graph_new(&g, 4, batch, C, S, S), *t = graph_new(&g, 1, batch);
    rng_fill_normal(x->data, x->numel, 1, RNG_STREAM_TEST, 0, 0.0f, 0.5f);
    rng_fill_normal(z->data, z->numel, 2, RNG_STREAM_TEST, 0, 0.0f, 1.0f);
    int *y = malloc(sizeof(int) * (size_t)batch);
    CHECK(y != NULL, "out of memory");
    for (int b = 0; b < batch; b++) t->data[b] = (b + 0.5f) / batch, y[b] = b % (c->num_classes + 1);
    params_zero_grad(&m.params);
    Tensor *loss = op_vloss(&g, jit_forward(&m, &g, z, t, y, NULL), x, t);
    graph_backward(&g, loss);
    int bad = 0;
    for (int i = 0; i < prof.n_ops; i++) {
        int want = pm_op_calls(l, prof.op[i].name);
        if (want != prof.op[i].fwd_n || prof.op[i].bwd_n != prof.op[i].fwd_n) {
            printf("check: op %-18s recorded %ld times (backward %ld), the perf model has %d\n", prof.op[i].name,
                   prof.op[i].fwd_n, prof.op[i].bwd_n, want);
            bad = 1;
        }
    }
    for (int i = 0; i < l->n_ops; i++) {
        int seen = 0;
        for (int j = 0; j < prof.n_ops; j++) seen |= !strcmp(prof.op[j].name, l->op[i]);
        if (!seen) printf("check: the perf model has op %s (%d calls) that the model never records\n", l->op[i],
                          l->op_calls[i]),
                bad = 1;
    }
    /* the GEMM and attention FLOPs of the kernel list against the model FLOPs */
    double fl = 0;
    for (int i = 0; i < l->n; i++)
        if (l->k[i].phase == 'f' && l->k[i].unit == PM_TC && !strstr(l->k[i].name, "attention")) fl += l->k[i].flops;
    for (int i = 0; i < c->depth; i++) {
        int n = c->tokens + (c->in_context_len > 0 && i >= c->in_context_start ? c->in_context_len : 0);
        fl += pm_attention_model_flops(batch, c->heads, n, c->head_dim, 0);
    }
    double want = pm_forward_flops(c) * batch;
    if (fabs(fl - want) > 1e-9 * want) {
        printf("check: the kernel list's forward GEMM + attention FLOPs %.6g differ from pm_forward_flops %.6g\n", fl,
               want);
        bad = 1;
    }
    printf("check: %d ops recorded by the real %s forward+backward at batch %d %s the perf model; forward FLOPs "
           "%.4g %s\n",
           prof.n_ops, c->name, batch, bad ? "DIFFER FROM" : "match", fl, bad ? "" : "(equal)");
    free(y);
    graph_free(&g);
    jit_free(&m);
    return bad;
}

int main(int argc, char **argv) {
    const char *cfg_path = "configs/jit-b16.yaml";
    int batch = 0, max_n = 16384, tokens = 65536, check = 0, measure = 0, iters = 10;
    PmRates r = pm_rates_h100();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--check")) check = 1;
        else if (!strcmp(a, "--measure")) measure = 1;
        else if (i + 1 < argc && !strcmp(a, "--config")) cfg_path = argv[++i];
        else if (i + 1 < argc && !strcmp(a, "--batch")) batch = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(a, "--max-n")) max_n = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(a, "--tokens")) tokens = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(a, "--iters")) iters = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(a, "--tc-bwd-products")) r.tc_bwd_products = atoi(argv[++i]);
        else FAIL("unknown option %s (use --config F --batch N --max-n N --tokens N --tc-bwd-products 5|7 --check "
                  "--measure --iters N)", a);
    }
    CHECK(iters >= 1 && iters <= 256, "--iters %d: use 1 to 256", iters);
    CHECK(tokens >= 256 && max_n >= 1, "--tokens %d / --max-n %d: too small", tokens, max_n);
    CHECK(r.tc_bwd_products == 5 || r.tc_bwd_products == 7, "--tc-bwd-products %d: use 5 or 7",
          r.tc_bwd_products);
    char *ov[] = {"logging.progress=false"};
    Config cfg;
    config_load(&cfg, cfg_path, 1, ov);
    if (batch <= 0) batch = cfg.batch_size;
    JitConfig mc = cfg.model;
    jit_config_finish(&mc);

    PmList *simt = malloc(sizeof *simt), *tc = malloc(sizeof *tc);
    CHECK(simt && tc, "out of memory");
    pm_list_init(simt, &r), pm_list_init(tc, &r);
    pm_jit_step(simt, &mc, batch, cfg.n_ema, PM_ATTN_SIMT);
    pm_jit_step(tc, &mc, batch, cfg.n_ema, PM_ATTN_TC);

    printf("# PREDICTION, not a measurement: %s (%s), batch %d, BF16 mode, on an %s\n", mc.name, cfg_path, batch,
           r.gpu);
    printf("# rates: GEMMs %.0f%% and tensor-core attention %.0f%% of the bf16 peak, SIMT attention %.0f%% of fp32,"
           " memory-bound kernels %.0f%% of HBM; %.1f us per launch; tensor-core backward %d N^2 d products; "
           "docs/performance.md\n",
           100 * r.f_gemm, 100 * r.f_attn_tc, 100 * r.f_attn_simt, 100 * r.f_mem, r.launch_s * 1e6,
           r.tc_bwd_products);
    print_step_table(simt, tc);
    double ts = pm_total(simt, 0, 0), tt = pm_total(tc, 0, 0), model = 3.0 * pm_forward_flops(&mc) * batch;
    printf("%-34s %-3s %-4s %6.0f %9.1f %9.2f %9.2f %11.2f %11.2f\n", "step", "", "", pm_total(simt, 0, 4),
           pm_total(simt, 0, 1) * 1e-9, pm_total(simt, 0, 2) * 1e-9, pm_total(simt, 0, 3) * 1e-9, ts * 1e3, tt * 1e3);
    printf("# attention's share of the step: SIMT %.0f%% (backward %.0f%%), tensor cores %.0f%%\n",
           100 * (rows_time(simt, "attention", 'f') + rows_time(simt, "attention", 'b')) / ts,
           100 * rows_time(simt, "attention", 'b') / ts,
           100 * (rows_time(tc, "attention", 'f') + rows_time(tc, "attention", 'b')) / tt);
    printf("# model FLOPs %.3f TFLOP per step (3 x forward, attention 4 n^2 D per block): MFU = model FLOPs / "
           "(step time x %.1f TFLOP/s)\n",
           model * 1e-12, r.tc_peak * 1e-12);
    print_step_line(cfg_path, &mc, batch, simt, "simt");
    print_step_line(cfg_path, &mc, batch, tc, "tc");
    /* Before the bf16 weight mirror and the BGRADB epilogue (perf_model.h: gemm_percall). */
    PmList *old_simt = malloc(sizeof *old_simt), *old_tc = malloc(sizeof *old_tc);
    CHECK(old_simt && old_tc, "out of memory");
    pm_list_init(old_simt, &r), pm_list_init(old_tc, &r);
    old_simt->gemm_percall = old_tc->gemm_percall = 1;
    pm_jit_step(old_simt, &mc, batch, cfg.n_ema, PM_ATTN_SIMT);
    pm_jit_step(old_tc, &mc, batch, cfg.n_ema, PM_ATTN_TC);
    printf("# PREDICTION, linear layers before/after the bf16 weight mirror and BGRADB: step %.2f -> %.2f ms (SIMT "
           "attention), %.2f -> %.2f ms (tensor cores); device memory %.2f -> %.2f GB, launches %.0f -> %.0f\n",
           pm_total(old_simt, 0, 0) * 1e3, ts * 1e3, pm_total(old_tc, 0, 0) * 1e3, tt * 1e3,
           pm_total(old_tc, 0, 3) * 1e-9, pm_total(tc, 0, 3) * 1e-9, pm_total(old_tc, 0, 4), pm_total(tc, 0, 4));
    free(old_simt), free(old_tc);

#ifdef JIT_HAVE_CUDA
    if (measure) {
        if (cuda_device_count() == 0) {
            fprintf(stderr, "bench_perf_model: --measure: no CUDA device (run it on a GPU machine)\n");
            return 77;
        }
        cuda_init(0);
        cuda_set_precision(CUDA_PREC_BF16);
        char name[256];
        printf("# MEASURED on %s, BF16 mode, %d iterations (median), beside the predictions\n",
               cuda_device_name(name, sizeof name), iters);
        /* the block's linear layers at the widest block's rows */
        const int n = mc.tokens + mc.in_context_len, M = batch * n, D = mc.hidden, h = mc.mlp_hidden;
        const struct { const char *role; int IC, OC; } lin[] = {{"qkv", D, 3 * D}, {"attn proj", D, D},
                                                                 {"mlp w12", D, 2 * h}, {"mlp w3", h, D}};
        for (size_t i = 0; i < sizeof lin / sizeof lin[0]; i++) {
            PmList *one = malloc(sizeof *one);
            CHECK(one != NULL, "out of memory");
            pm_list_init(one, &r);
            pm_linear(one, lin[i].role, M, lin[i].IC, lin[i].OC, 1, 1);
            Times m = time_linear(M, lin[i].IC, lin[i].OC, iters);
            printf("pm_linear role=%s M=%d IC=%d OC=%d pred_fwd_ms=%.3f pred_bwd_ms=%.3f meas_fwd_ms=%.3f "
                   "meas_bwd_ms=%.3f\n",
                   lin[i].role, M, lin[i].IC, lin[i].OC, rows_time(one, lin[i].role, 'f') * 1e3,
                   rows_time(one, lin[i].role, 'b') * 1e3, m.fwd, m.bwd);
            free(one);
        }
    }
#else
    if (measure) {
        fprintf(stderr, "bench_perf_model: --measure: this build has no CUDA backend\n");
        return 77;
    }
#endif

    printf("\n# PREDICTION: attention op alone, d = 64, B*H = %d / N; TFLOP/s of forward + backward in "
           "FlashAttention's count (4 B H N^2 d forward, 2.5x backward)\n",
           tokens);
    printf("%6s %4s %3s %12s %12s %10s %12s %12s %10s", "N", "B", "H", "SIMT fwd ms", "SIMT bwd ms", "TFLOP/s",
           "TC fwd ms", "TC bwd ms", "TFLOP/s");
    printf(measure ? " %12s %12s %10s\n" : "\n", "meas fwd ms", "meas bwd ms", "TFLOP/s");
    char lines[8][400];
    int nl = 0;
    for (int N = 256; N <= max_n && N <= 16384; N *= 4) {
        const int d = 64, BH = tokens / N < 1 ? 1 : tokens / N, H = BH < 16 ? BH : 16, B = BH / H;
        PmList *a = malloc(sizeof *a), *b = malloc(sizeof *b);
        CHECK(a && b, "out of memory");
        pm_list_init(a, &r), pm_list_init(b, &r);
        pm_attention(a, PM_ATTN_SIMT, B, H, N, d);
        pm_attention(b, PM_ATTN_TC, B, H, N, d);
        double fl = pm_attention_model_flops(B, H, N, d, 0) + pm_attention_model_flops(B, H, N, d, 1);
        double sf = pm_total(a, 'f', 0), sb = pm_total(a, 'b', 0), cf = pm_total(b, 'f', 0), cb = pm_total(b, 'b', 0);
        printf("%6d %4d %3d %12.3f %12.3f %10.1f %12.3f %12.3f %10.1f", N, B, H, sf * 1e3, sb * 1e3,
               fl / (sf + sb) * 1e-12, cf * 1e3, cb * 1e3, fl / (cf + cb) * 1e-12);
        char meas[160] = "";
#ifdef JIT_HAVE_CUDA
        if (measure) {
            Times m = time_attention(B, H, N, d, iters);
            printf(" %12.3f %12.3f %10.1f", m.fwd, m.bwd, fl / (m.fwd + m.bwd) * 1e-9);
            snprintf(meas, sizeof meas, " meas_fwd_ms=%.3f meas_bwd_ms=%.3f meas_tflops=%.2f", m.fwd, m.bwd,
                     fl / (m.fwd + m.bwd) * 1e-9);
        }
#endif
        printf("\n");
        snprintf(lines[nl++], sizeof lines[0], "pm_attn N=%d B=%d H=%d d=%d simt_fwd_ms=%.3f simt_bwd_ms=%.3f tc_fwd_ms=%.3f tc_bwd_ms=%.3f "
                "simt_tflops=%.2f tc_tflops=%.2f%s\n",
                N, B, H, d, sf * 1e3, sb * 1e3, cf * 1e3, cb * 1e3, fl / (sf + sb) * 1e-12, fl / (cf + cb) * 1e-12,
                meas);
        free(a), free(b);
    }
    for (int i = 0; i < nl; i++) printf("%s", lines[i]);

    /* SLA2 alone at top-k 0.15, blocks of 32 (the JiT configurations), same shapes */
    printf("\n# PREDICTION: SLA2 op alone (hard top-k 0.15, blocks 32 x 32, softmax features), d = 64, B*H = %d / N;"
           " dense-equivalent TFLOP/s (FlashAttention's count of the full attention it replaces)\n",
           tokens);
    printf("%6s %4s %3s %5s %12s %12s %10s %12s %12s %10s\n", "N", "B", "H", "k/nk", "SIMT fwd ms", "SIMT bwd ms",
           "eq TFLOP/s", "TC fwd ms", "TC bwd ms", "eq TFLOP/s");
    nl = 0;
    for (int N = 256; N <= max_n && N <= 16384; N *= 4) {
        const int d = 64, BH = tokens / N < 1 ? 1 : tokens / N, H = BH < 16 ? BH : 16, B = BH / H, nk = (N + 31) / 32;
        PmList *a = malloc(sizeof *a), *b = malloc(sizeof *b);
        CHECK(a && b, "out of memory");
        pm_list_init(a, &r), pm_list_init(b, &r);
        pm_sla2(a, PM_ATTN_SIMT, B, H, N, d, 32, 32, 0.15f);
        pm_sla2(b, PM_ATTN_TC, B, H, N, d, 32, 32, 0.15f);
        double fl = pm_attention_model_flops(B, H, N, d, 0) + pm_attention_model_flops(B, H, N, d, 1);
        double sf = pm_total(a, 'f', 0), sb = pm_total(a, 'b', 0), cf = pm_total(b, 'f', 0), cb = pm_total(b, 'b', 0);
        printf("%6d %4d %3d %2d/%-2d %12.3f %12.3f %10.1f %12.3f %12.3f %10.1f\n", N, B, H, sla2_k_select(0.15f, nk),
               nk, sf * 1e3, sb * 1e3, fl / (sf + sb) * 1e-12, cf * 1e3, cb * 1e3, fl / (cf + cb) * 1e-12);
        snprintf(lines[nl++], sizeof lines[0], "pm_sla2 N=%d B=%d H=%d d=%d topk=0.15 block=32 simt_fwd_ms=%.3f "
                 "simt_bwd_ms=%.3f tc_fwd_ms=%.3f tc_bwd_ms=%.3f simt_eq_tflops=%.2f tc_eq_tflops=%.2f\n",
                 N, B, H, d, sf * 1e3, sb * 1e3, cf * 1e3, cb * 1e3, fl / (sf + sb) * 1e-12, fl / (cf + cb) * 1e-12);
        free(a), free(b);
    }
    for (int i = 0; i < nl; i++) printf("%s", lines[i]);
    int rc = 0;
    if (check) rc = check_against_model(&mc, batch, simt);
    free(simt), free(tc);
    return rc;
}
