/* tests/test_cuda_optim.c — the device optimiser (kernels/cuda/optim.cu)
 * against core/optim.c on a real ParamStore: AdamW over several steps, EMA,
 * the global gradient norm and gradient scaling. Part of the test_cuda_ops
 * program (same harness and skip rule).
 *
 * The store mixes what the chunk table must get right: a parameter longer
 * than a chunk (4096 floats), odd sizes (so the padding between parameters
 * is used), weight decay on some parameters only, and a frozen parameter
 * whose gradient is large (so counting it in the norm, or updating it, is a
 * visible error). The padding of the gradient buffer holds NaN on both sides:
 * a kernel that reads or writes outside the parameters spreads it. The
 * update is written to round like the CPU's, so the bound is 1e-6 (it is
 * expected to be exact). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/optim.h"
#include "core/params.h"
#include "core/rng.h"
#include "cuda_check.h"
#include "kernels/cuda/ops_cuda.h"

#define TOL_OPT 1e-6

static void setup(void) { cuda_init(0); }
static void teardown(void) { arr_free_all(); }
TestSuite(cuda_optim, .init = setup, .fini = teardown);

static void make_store(ParamStore *ps) {
    params_create(ps);
    params_add(ps, "blocks.0.mlp.fc1.weight", 2, (int[]){53, 97}, INIT_XAVIER_UNIFORM, 0, true); /* 5141 > 4096 */
    params_add(ps, "blocks.0.mlp.fc1.bias", 1, (int[]){53}, INIT_NORMAL, 0.1f, false);
    params_add(ps, "frozen.table", 2, (int[]){7, 37}, INIT_NORMAL, 1.0f, true);
    params_add(ps, "norm.weight", 1, (int[]){70}, INIT_ONE, 0, false);
    params_add(ps, "alpha", 1, (int[]){1}, INIT_CONSTANT, 2.2f, false);
    params_alloc(ps);
    params_init(ps, 99);
    params_set_trainable(ps, "frozen.", false);
}

/* Fills the gradients (host store and an Arr holding the same values), with
 * NaN in the padding on both sides; the frozen gradient is large. */
static void fill_grads(ParamStore *ps, Arr *g, uint64_t step) {
    for (size_t i = 0; i < ps->padded; i++) ps->grad[i] = NAN;
    for (int p = 0; p < ps->n; p++) {
        float *gp = ps->grad + ps->info[p].offset;
        float scale = ps->views[p].requires_grad ? 1.0f : 100.0f;
        rng_fill_uniform(gp, ps->info[p].numel, 5, RNG_STREAM_TEST + 1000 + step, ps->info[p].offset, -scale, scale);
    }
    memcpy(g->h, ps->grad, ps->padded * sizeof(float));
    arr_upload(g);
}

static Arr arr_from(const float *h, size_t n) {
    Arr a = arr_rand(n, 0, 1);
    memcpy(a.h, h, n * sizeof(float));
    arr_upload(&a);
    return a;
}

Test(cuda_optim, adamw_matches_cpu) {
    ParamStore ps;
    make_store(&ps);
    CudaOptimLayout lo;
    cuda_optim_layout_create(&lo, &ps);
    cr_expect_eq(lo.n_chunks, 2 + 1 + 1 + 1 + 1, "chunks: 5141 floats make two, every other parameter one");
    AdamW cpu, gpu;
    adamw_init(&cpu, &ps, 0.9f, 0.95f, 1e-8f, 0.1f);
    cuda_adamw_init(&gpu, &ps, 0.9f, 0.95f, 1e-8f, 0.1f);
    Arr w = arr_from(ps.data, ps.padded), g = arr_rand(ps.padded, 0, 1);
    Arr m = arr_rand(ps.padded, 0, 1), v = arr_rand(ps.padded, 0, 1);
    m.d = gpu.m, v.d = gpu.v; /* compare the device moments with the CPU's */
    for (uint64_t step = 0; step < 4; step++) {
        if (step == 2) { /* unfreeze: the layout's flags are re-uploaded */
            params_set_trainable(&ps, "frozen.", true);
            cuda_optim_layout_sync(&lo, &ps);
        }
        fill_grads(&ps, &g, step);
        float lr = 1e-2f * (float)(step + 1);
        adamw_step(&cpu, &ps, lr);
        cuda_adamw_step(&gpu, &lo, w.d, g.d, lr);
        cr_expect_eq(gpu.step, cpu.step);
        memcpy(w.h, ps.data, ps.padded * sizeof(float));
        memcpy(m.h, cpu.m, ps.padded * sizeof(float));
        memcpy(v.h, cpu.v, ps.padded * sizeof(float));
        EXPECT_CLOSE(w, TOL_OPT);
        EXPECT_CLOSE(m, TOL_OPT);
        EXPECT_CLOSE(v, TOL_OPT);
    }
    /* The update moved the weights by much more than the tolerance. */
    Arr w0 = arr_rand(ps.padded, 0, 1);
    ParamStore fresh;
    make_store(&fresh);
    memcpy(w0.h, fresh.data, ps.padded * sizeof(float));
    float *got = arr_download(&w);
    cr_expect(rel_err(got, w0.h, ps.padded) > 1e-3, "AdamW barely changed the weights");
    free(got);
    params_destroy(&fresh);
    cuda_adamw_free(&gpu);
    adamw_free(&cpu);
    cuda_optim_layout_free(&lo);
    params_destroy(&ps);
}

Test(cuda_optim, grad_norm_and_scale_skip_frozen) {
    ParamStore ps;
    make_store(&ps);
    CudaOptimLayout lo;
    cuda_optim_layout_create(&lo, &ps);
    Arr g = arr_rand(ps.padded, 0, 1);
    fill_grads(&ps, &g, 7);
    double want = params_grad_norm(&ps), got = cuda_grad_norm(&lo, g.d);
    cr_expect(fabs(got - want) <= 1e-12 * want, "grad norm: gpu %.17g cpu %.17g", got, want);
    cr_expect_eq(cuda_grad_norm(&lo, g.d), got, "the norm is reproducible");
    params_scale_grad(&ps, 0.37f);
    cuda_scale_grad(&lo, g.d, 0.37f);
    /* NaN padding: compare the parameters only. */
    float *dev = arr_download(&g);
    for (int p = 0; p < ps.n; p++) {
        size_t off = ps.info[p].offset, n = ps.info[p].numel;
        cr_expect(rel_err(dev + off, ps.grad + off, n) == 0.0, "scaled gradient of %s differs", ps.info[p].name);
    }
    free(dev);
    cuda_optim_layout_free(&lo);
    params_destroy(&ps);
}

/* A shard (dist.shard_optimizer): floats [lo, hi) cut inside the long
 * parameter and inside the last trainable one; the moments hold only the
 * range. AdamW, the squared norm and the scaling of the range match the
 * CPU's range loops, and nothing outside the range moves. */
Test(cuda_optim, shard_range_matches_cpu) {
    ParamStore ps;
    make_store(&ps);
    size_t lo = 4000, hi = ps.info[3].offset + 30, n = hi - lo;
    CudaOptimLayout lay;
    cuda_optim_layout_create_range(&lay, &ps, lo, hi);
    AdamW cpu, gpu;
    adamw_init_range(&cpu, lo, n, 0.9f, 0.95f, 1e-8f, 0.1f);
    cuda_adamw_init_range(&gpu, lo, n, 0.9f, 0.95f, 1e-8f, 0.1f);
    Arr w = arr_from(ps.data, ps.padded), g = arr_rand(ps.padded, 0, 1), m = arr_rand(n, 0, 1);
    m.d = gpu.m;
    float *w0 = malloc(ps.padded * sizeof(float));
    memcpy(w0, ps.data, ps.padded * sizeof(float));
    for (uint64_t step = 0; step < 3; step++) {
        fill_grads(&ps, &g, step);
        double want = params_grad_sq_range(&ps, lo, hi), got = cuda_grad_sq(&lay, g.d);
        cr_expect(fabs(got - want) <= 1e-12 * want, "range's squared norm: gpu %.17g cpu %.17g", got, want);
        adamw_step(&cpu, &ps, 1e-2f);
        cuda_adamw_step(&gpu, &lay, w.d, g.d, 1e-2f);
        memcpy(w.h, ps.data, ps.padded * sizeof(float));
        memcpy(m.h, cpu.m, n * sizeof(float));
        EXPECT_CLOSE(w, TOL_OPT);
        EXPECT_CLOSE(m, TOL_OPT);
    }
    for (size_t i = 0; i < ps.padded; i++)
        if (i < lo || i >= hi)
            cr_assert(ps.data[i] == w0[i] || (isnan(w0[i]) && isnan(ps.data[i])), "float %zu outside the range moved", i);
    cr_expect(ps.data[lo] != w0[lo] && ps.data[hi - 1] != w0[hi - 1], "the range's ends were not updated");
    params_scale_grad_range(&ps, 0.5f, lo, hi);
    cuda_scale_grad(&lay, g.d, 0.5f);
    float *dev = arr_download(&g);
    for (size_t i = lo - 1; i <= hi; i++) /* one float either side: scaled by neither */
        if (!isnan(ps.grad[i])) cr_assert(dev[i] == ps.grad[i], "scaled gradient float %zu differs", i);
    free(dev);
    free(w0);
    cuda_adamw_free(&gpu);
    adamw_free(&cpu);
    cuda_optim_layout_free(&lay);
    params_destroy(&ps);
}

Test(cuda_optim, ema_matches_cpu) {
    size_t n = 10007;
    Arr ema = arr_rand(n, -1, 1), w = arr_rand(n, -1, 1);
    for (int i = 0; i < 3; i++) {
        ema_update(ema.h, w.h, n, 0.999f);
        cuda_ema_update(ema.d, w.d, n, 0.999f);
    }
    EXPECT_CLOSE(ema, TOL_OPT);
}
