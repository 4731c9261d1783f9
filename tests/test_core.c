/* tests/test_core.c — the step arena, the parameter store, the checking
 * macros (a failed check exits with status 1 and a message) and the choice
 * of OpenBLAS core (kernels/cpu/blas_select.h). */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/arena.h"
#include "core/params.h"
#include "core/tensor.h"
#include "kernels/cpu/blas_select.h"
#include "kernels/cpu/cpu.h"

Test(arena, aligned_allocations_and_reset) {
    Arena a;
    arena_init(&a, 1000);
    char *p = arena_alloc(&a, 3), *q = arena_alloc(&a, 100);
    cr_expect_eq((uintptr_t)p % CORE_ALIGN, 0);
    cr_expect_eq((uintptr_t)q % CORE_ALIGN, 0);
    cr_expect(q >= p + 3);
    arena_reset(&a);
    cr_expect_eq(arena_alloc(&a, 3), p, "after reset the arena starts again at its base");
    arena_free(&a);
}

Test(arena, overflow_grows_once_then_allocates_nothing) {
    Arena a;
    arena_init(&a, 256);
    for (int step = 0; step < 5; step++) {
        size_t before = core_alloc_count();
        for (int i = 0; i < 50; i++) memset(arena_alloc(&a, 1000), 1, 1000);
        size_t during = core_alloc_count() - before;
        if (step == 0) cr_expect_gt(during, 0, "the first step overflows a small arena");
        else cr_expect_eq(during, 0, "step %d allocated %zu times", step, during);
        size_t before_reset = core_alloc_count();
        arena_reset(&a);
        if (step > 0) cr_expect_eq(core_alloc_count(), before_reset, "reset after a fitting step allocates nothing");
    }
    cr_expect_eq(arena_high_water(&a), 50 * 1024, "high-water mark counts rounded bytes of the largest step");
    arena_free(&a);
}

Test(arena, calloc_zeroes) {
    Arena a;
    arena_init(&a, 4096);
    memset(arena_alloc(&a, 4096), 0xff, 4096);
    arena_reset(&a);
    float *z = arena_calloc(&a, 64 * sizeof(float));
    for (int i = 0; i < 64; i++) cr_assert_eq(z[i], 0.0f);
    arena_free(&a);
}

static void make_store(ParamStore *ps) {
    params_create(ps);
    params_add(ps, "blocks.0.attn.qkv.weight", 2, (int[]){30, 10}, INIT_XAVIER_UNIFORM, 0, true);
    params_add(ps, "blocks.0.attn.qkv.bias", 1, (int[]){30}, INIT_ZERO, 0, false);
    params_add(ps, "norm.weight", 1, (int[]){7}, INIT_ONE, 0, false);
    params_add(ps, "table", 2, (int[]){5, 3}, INIT_NORMAL, 0.5f, false);
    params_add(ps, "router.proj_q", 2, (int[]){4, 4}, INIT_IDENTITY, 0, true);
    params_add(ps, "alpha", 1, (int[]){3}, INIT_CONSTANT, 2.2f, false);
}

Test(params, count_names_shapes_and_flat_layout) {
    ParamStore ps;
    make_store(&ps);
    cr_expect_eq(params_count(&ps), 300 + 30 + 7 + 15 + 16 + 3);
    params_alloc(&ps);
    Tensor *w = params_get(&ps, "blocks.0.attn.qkv.weight");
    cr_expect_eq(w->ndim, 2);
    cr_expect_eq(w->shape[0], 30);
    cr_expect_eq(w->shape[1], 10);
    cr_expect_str_eq(w->name, "blocks.0.attn.qkv.weight");
    cr_expect_eq(params_find(&ps, "nope"), -1);
    /* Views lie in the two flat buffers, in registration order, 64-byte aligned. */
    float *prev = NULL;
    for (int i = 0; i < ps.n; i++) {
        Tensor *t = params_at(&ps, i);
        cr_expect(t->data >= ps.data && t->data + t->numel <= ps.data + ps.padded);
        cr_expect_eq(t->grad - ps.grad, t->data - ps.data);
        cr_expect_eq((uintptr_t)t->data % 64, 0);
        cr_expect(prev == NULL || t->data > prev);
        prev = t->data;
    }
    params_destroy(&ps);
}

Test(params, initialisers) {
    ParamStore ps;
    make_store(&ps);
    params_alloc(&ps);
    params_init(&ps, 3);
    Tensor *w = params_get(&ps, "blocks.0.attn.qkv.weight");
    float a = sqrtf(6.0f / 40.0f), mx = 0;
    for (size_t i = 0; i < w->numel; i++) mx = fabsf(w->data[i]) > mx ? fabsf(w->data[i]) : mx;
    cr_expect(mx <= a && mx > 0.8f * a, "xavier bound %g, max %g", a, mx);
    for (int i = 0; i < 30; i++) cr_expect_eq(params_get(&ps, "blocks.0.attn.qkv.bias")->data[i], 0.0f);
    for (int i = 0; i < 7; i++) cr_expect_eq(params_get(&ps, "norm.weight")->data[i], 1.0f);
    Tensor *id = params_get(&ps, "router.proj_q");
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++) cr_expect_eq(id->data[r * 4 + c], r == c ? 1.0f : 0.0f);
    cr_expect_eq(params_get(&ps, "alpha")->data[2], 2.2f);
    /* Same seed, same weights; another seed, other weights. */
    float first = w->data[0];
    params_init(&ps, 3);
    cr_expect_eq(w->data[0], first);
    params_init(&ps, 4);
    cr_expect_neq(w->data[0], first);
    params_destroy(&ps);
}

Test(params, freeze_by_name) {
    ParamStore ps;
    make_store(&ps);
    params_alloc(&ps);
    cr_expect_eq(params_set_trainable(&ps, "router.", false), 1);
    cr_expect(!params_get(&ps, "router.proj_q")->requires_grad);
    cr_expect(params_get(&ps, "table")->requires_grad);
    params_destroy(&ps);
}

Test(params, unknown_name_is_a_clear_error, .exit_code = 1) {
    ParamStore ps;
    make_store(&ps);
    params_alloc(&ps);
    params_get(&ps, "blocks.0.attn.qkvv.weight");
}

Test(params, duplicate_name_is_an_error, .exit_code = 1) {
    ParamStore ps;
    make_store(&ps);
    params_add(&ps, "table", 1, (int[]){2}, INIT_ZERO, 0, false);
}

Test(tensor, shape_check_failure_exits, .exit_code = 1) {
    Tensor t = {0};
    tensor_set_shape(&t, 3, (int[]){2, 3, 4});
    CHECK_SHAPE(&t, 3, 2, 5, -1);
}

Test(tensor, shape_check_wildcards_pass) {
    Tensor t = {0};
    tensor_set_shape(&t, 3, (int[]){2, 3, 4});
    CHECK_SHAPE(&t, 3, -1, 3, -1);
    cr_expect_eq(t.numel, 24);
    cr_expect_eq(tensor_rows(&t), 6);
    char buf[64];
    cr_expect_str_eq(tensor_shape_str(&t, buf, sizeof buf), "[2, 3, 4]");
}

Test(tensor, too_many_dims_is_an_error, .exit_code = 1) {
    Tensor t = {0};
    tensor_set_shape(&t, 5, (int[]){1, 2, 3, 4, 5});
}

/* The kernels' vectorisable exponential against double-precision exp on
 * about 900,000 points from -87 to 88 (spaced 1e-5 (1 + |x|)), within 4e-7
 * relative; 0 below the range, inf above, NaN kept, exactly 1 at 0. */
Test(core, cpu_expf_is_accurate) {
    double worst = 0.0;
    float at = 0.0f;
    long n = 0;
    for (float x = -87.0f; x <= 88.0f; x += 1e-5f * (1.0f + fabsf(x))) {
        double want = exp((double)x), got = cpu_expf(x), e = fabs(got - want) / want;
        if (e > worst) worst = e, at = x;
        n++;
    }
    printf("cpu_expf: worst relative error %.3g (at x = %.9g) over %ld points\n", worst, (double)at, n);
    cr_expect_lt(worst, 4e-7, "cpu_expf: relative error %.3g at x = %.9g", worst, (double)at);
    cr_expect_gt(n, 100000);
    cr_expect_eq(cpu_expf(0.0f), 1.0f);
    cr_expect_eq(cpu_expf(-INFINITY), 0.0f, "masked scores of -inf must give exactly 0");
    cr_expect_eq(cpu_expf(-100.0f), 0.0f);
    cr_expect(isinf(cpu_expf(100.0f)) && cpu_expf(100.0f) > 0);
    cr_expect(isnan(cpu_expf(NAN)));
}

/* The policy of blas_select.h: a weaker core than the CPU supports is
 * replaced by the best one it supports; cores the table does not know, and
 * CPUs without AVX2, are left alone. */
Test(blas_select, replaces_weaker_cores_only) {
    const unsigned a2 = BLAS_ISA_AVX2, a512 = BLAS_ISA_AVX2 | BLAS_ISA_AVX512;
    cr_expect_str_eq(blas_choose_core("Prescott", a512), "SkylakeX", "the report's case: SSE3 kernels on AVX-512");
    cr_expect_str_eq(blas_choose_core("prescott", a2), "Haswell");
    cr_expect_str_eq(blas_choose_core("Sandybridge", a2), "Haswell");
    cr_expect_str_eq(blas_choose_core("Haswell", a512), "SkylakeX", "AVX2 kernels on an AVX-512 CPU");
    cr_expect_str_eq(blas_choose_core("Zen", a512), "SkylakeX");
    cr_expect_null(blas_choose_core("Zen", a2), "AMD's AVX2 core is the right one there");
    cr_expect_null(blas_choose_core("Haswell", a2));
    cr_expect_null(blas_choose_core("SkylakeX", a512));
    cr_expect_null(blas_choose_core("Cooperlake", a512));
    cr_expect_null(blas_choose_core("Prescott", 0), "a CPU without AVX2: nothing better exists");
    cr_expect_null(blas_choose_core("NEOVERSEN1", a512), "unknown names are never replaced");
    cr_expect_null(blas_choose_core(NULL, a512));
}
