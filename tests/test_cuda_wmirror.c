/* tests/test_cuda_wmirror.c — the bf16 weight mirror (kernels/cuda/wmirror.cu)
 * and the products that read it (linear.cu), in BF16 mode. Part of the
 * test_cuda_ops program (same harness and skip rule).
 *
 * What must hold:
 *  - a linear layer whose weight lies in a mirrored parameter buffer gives
 *    bit for bit what today's per-call rounding gives (the same weight in a
 *    buffer with no mirror), forward and every backward subset;
 *  - the mirror is made once per change of the weights, not per product:
 *    products after a change refresh it once, AdamW writes it beside the
 *    weights (no refresh after an update), and a weight uploaded through the
 *    backend's copy is seen by the next product;
 *  - a write to the weights that nobody reports (a kernel writing into the
 *    buffer) is caught by the check at the next product: the program stops
 *    naming the stale mirror. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "core/optim.h"
#include "core/params.h"
#include "cuda_check.h"
#include "kernels/cuda/ops_cuda.h"

#define M 37
#define IC 70
#define OC 53

static void setup(void) {
    cuda_init(0);
    cuda_set_precision(CUDA_PREC_BF16);
    cuda_wmirror_set_check(1);
}
static void teardown(void) {
    arr_free_all();
    cuda_set_precision(CUDA_PREC_FP32);
}
TestSuite(cuda_wmirror, .init = setup, .fini = teardown);

/* A parameter store like the model's: a weight [OC, IC], its bias, and a
 * frozen table (AdamW leaves it: its mirror must stay right anyway). */
static void make_store(ParamStore *ps) {
    params_create(ps);
    params_add(ps, "fc.weight", 2, (int[]){OC, IC}, INIT_XAVIER_UNIFORM, 0, true);
    params_add(ps, "fc.bias", 1, (int[]){OC}, INIT_NORMAL, 0.1f, false);
    params_add(ps, "frozen.table", 2, (int[]){7, 37}, INIT_NORMAL, 1.0f, true);
    params_alloc(ps);
    params_init(ps, 5);
    params_set_trainable(ps, "frozen.", false);
}

/* The device parameter buffer of ps (host side = ps->data). */
static Arr store_arr(const ParamStore *ps) {
    Arr a = arr_rand(ps->padded, 0, 1);
    memcpy(a.h, ps->data, ps->padded * sizeof(float));
    arr_upload(&a);
    return a;
}

/* Forward and the full backward of the linear layer with weight w, bias b
 * (device), the rest fixed; results into r[0..3] (out, dinp, dw, db). */
static void run_linear(Arr r[4], const float *w, const float *b, const Arr *inp, const Arr *dout) {
    r[0] = arr_nan((size_t)M * OC);
    r[1] = arr_nan((size_t)M * IC), r[2] = arr_nan((size_t)OC * IC), r[3] = arr_nan(OC);
    ops_cuda.linear_fwd(r[0].d, inp->d, w, b, M, IC, OC);
    for (int i = 1; i < 4; i++) cuda_memset(r[i].d, 0, r[i].n * sizeof(float));
    ops_cuda.linear_bwd(r[1].d, r[2].d, r[3].d, dout->d, inp->d, w, M, IC, OC);
}

/* The mirrored weight of `p` against a copy of it in a buffer no mirror covers. */
static void expect_same_as_per_call(const Arr *p, const ParamStore *ps, const Arr *inp, const Arr *dout) {
    const float *w = p->d + ps->info[0].offset, *b = p->d + ps->info[1].offset;
    Arr plain = arr_rand(p->n, 0, 1); /* today's path: rounded per call */
    cuda_memcpy_d2d(plain.d, p->d, p->n * sizeof(float));
    Arr got[4], want[4];
    run_linear(got, w, b, inp, dout);
    run_linear(want, plain.d + ps->info[0].offset, plain.d + ps->info[1].offset, inp, dout);
    const char *what[4] = {"out", "dinp", "dw", "db"};
    for (int i = 0; i < 4; i++) {
        float *g = arr_download(&got[i]), *h = arr_download(&want[i]);
        cr_expect(memcmp(g, h, got[i].n * sizeof(float)) == 0, "%s from the mirror differs from per-call rounding",
                  what[i]);
        free(g), free(h);
    }
}

Test(cuda_wmirror, equals_per_call_rounding_and_refreshes_once_per_change) {
    ParamStore ps;
    make_store(&ps);
    Arr p = store_arr(&ps), inp = arr_rand((size_t)M * IC, -1, 1), dout = arr_rand((size_t)M * OC, -1, 1);
    cuda_wmirror_attach(p.d, ps.padded);
    long r0 = cuda_wmirror_refreshes();
    expect_same_as_per_call(&p, &ps, &inp, &dout);
    cr_expect_eq(cuda_wmirror_refreshes(), r0 + 1, "two products after attach: %ld refreshes, 1 expected",
                 cuda_wmirror_refreshes() - r0);

    /* New weights through the backend's upload (a checkpoint load): seen at once, one refresh. */
    for (size_t i = 0; i < ps.padded; i++) p.h[i] = -0.5f * p.h[i] + 0.01f;
    arr_upload(&p);
    expect_same_as_per_call(&p, &ps, &inp, &dout);
    cr_expect_eq(cuda_wmirror_refreshes(), r0 + 2, "after an upload: %ld refreshes, 2 expected",
                 cuda_wmirror_refreshes() - r0);

    /* AdamW writes the mirror with the weights: the products after it need no refresh. */
    CudaOptimLayout lo;
    cuda_optim_layout_create(&lo, &ps);
    AdamW opt;
    cuda_adamw_init(&opt, &ps, 0.9f, 0.95f, 1e-8f, 0.05f);
    Arr g = arr_rand(ps.padded, -1, 1);
    for (int s = 0; s < 2; s++) {
        cuda_adamw_step(&opt, &lo, p.d, g.d, 1e-2f);
        expect_same_as_per_call(&p, &ps, &inp, &dout);
    }
    cr_expect_eq(cuda_wmirror_refreshes(), r0 + 2, "AdamW's update was followed by %ld refreshes (0 expected)",
                 cuda_wmirror_refreshes() - r0 - 2);

    /* An EMA swap (device-to-device copies into the weights), and back. */
    Arr ema = arr_rand(ps.padded, -0.2f, 0.2f), backup = arr_rand(ps.padded, 0, 1);
    cuda_memcpy_d2d(backup.d, p.d, ps.padded * sizeof(float));
    cuda_memcpy_d2d(p.d, ema.d, ps.padded * sizeof(float));
    expect_same_as_per_call(&p, &ps, &inp, &dout);
    cuda_memcpy_d2d(p.d, backup.d, ps.padded * sizeof(float));
    expect_same_as_per_call(&p, &ps, &inp, &dout);
    cr_expect_eq(cuda_wmirror_refreshes(), r0 + 4);

    cuda_adamw_free(&opt);
    cuda_optim_layout_free(&lo);
    cuda_wmirror_detach(p.d);
    params_destroy(&ps);
}

/* A kernel writes the weights and nobody reports it: the next product must
 * stop (CHECK exits with status 1) instead of using the stale copy. */
Test(cuda_wmirror, unreported_write_is_caught, .exit_code = 1) {
    ParamStore ps;
    make_store(&ps);
    Arr p = store_arr(&ps), inp = arr_rand((size_t)M * IC, -1, 1), out = arr_nan((size_t)M * OC);
    cuda_wmirror_attach(p.d, ps.padded);
    const float *w = p.d + ps.info[0].offset;
    ops_cuda.linear_fwd(out.d, inp.d, w, NULL, M, IC, OC); /* mirror made and checked */
    Arr x = arr_rand((size_t)OC * IC, -3, 3);
    ops_cuda.silu_fwd(p.d + ps.info[0].offset, x.d, (size_t)OC * IC); /* an unreported write */
    ops_cuda.linear_fwd(out.d, inp.d, w, NULL, M, IC, OC);
    cr_log_error("the stale mirror was used without a stop");
    exit(0);
}
