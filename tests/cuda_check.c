/* tests/cuda_check.c — the CUDA parity tests' harness (see cuda_check.h), the
 * local op table of the kernels under test, and the test program's main,
 * which reports "skipped" to ctest (exit status 77) where there is no GPU.
 *
 * The device probe runs in a forked child: a process that has initialised
 * CUDA cannot use it in the children Criterion forks for each test. */
#include "cuda_check.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/rng.h"
#include "kernels/cuda/ops_cuda.h"

/* The kernels' C declarations, typed from the table itself (cuda_common.cuh,
 * which declares them, is C++): a signature drift fails to compile here. */
#define CUDA_DECL(f) extern __typeof__(*((OpTable *)0)->f) cuda_##f;
CUDA_DECL(linear_fwd) CUDA_DECL(linear_bwd) CUDA_DECL(rmsnorm_fwd) CUDA_DECL(rmsnorm_bwd)
CUDA_DECL(rope_fwd) CUDA_DECL(rope_bwd) CUDA_DECL(modulate_fwd) CUDA_DECL(modulate_bwd)
CUDA_DECL(gated_add_fwd) CUDA_DECL(gated_add_bwd) CUDA_DECL(swiglu_fwd) CUDA_DECL(swiglu_bwd)
CUDA_DECL(silu_fwd) CUDA_DECL(silu_bwd) CUDA_DECL(qkv_split_fwd) CUDA_DECL(qkv_split_bwd)
CUDA_DECL(patchify_fwd) CUDA_DECL(patchify_bwd) CUDA_DECL(unpatchify_fwd) CUDA_DECL(unpatchify_bwd)
CUDA_DECL(timestep_embed_fwd) CUDA_DECL(timestep_embed_bwd) CUDA_DECL(embedding_fwd) CUDA_DECL(embedding_bwd)
CUDA_DECL(add_rows_fwd) CUDA_DECL(add_rows_bwd) CUDA_DECL(add_fwd) CUDA_DECL(incontext_prepend_fwd)
CUDA_DECL(incontext_prepend_bwd) CUDA_DECL(incontext_strip_fwd) CUDA_DECL(incontext_strip_bwd)
CUDA_DECL(chunk_fwd) CUDA_DECL(chunk_bwd) CUDA_DECL(vloss_fwd) CUDA_DECL(vloss_bwd) CUDA_DECL(dropout_fwd)
CUDA_DECL(dropout_bwd) CUDA_DECL(mse_fwd) CUDA_DECL(mse_bwd) CUDA_DECL(xent_fwd) CUDA_DECL(xent_bwd)
CUDA_DECL(unfold_fwd) CUDA_DECL(unfold_bwd) CUDA_DECL(mean_tokens_fwd) CUDA_DECL(mean_tokens_bwd)
CUDA_DECL(relu_fwd) CUDA_DECL(relu_bwd) CUDA_DECL(maxpool2_fwd) CUDA_DECL(maxpool2_bwd) CUDA_DECL(lpips_dist_fwd)
CUDA_DECL(lpips_dist_bwd) CUDA_DECL(layernorm_fwd) CUDA_DECL(layernorm_bwd) CUDA_DECL(gelu_fwd) CUDA_DECL(gelu_bwd)
CUDA_DECL(cosine_fwd) CUDA_DECL(cosine_bwd) CUDA_DECL(resize_bicubic_fwd) CUDA_DECL(resize_bicubic_bwd)
CUDA_DECL(accumulate)

#define E(f) .f = cuda_##f
const OpTable gpu_ops = {
    .name = "cuda (without attention)",
    E(linear_fwd), E(linear_bwd), E(rmsnorm_fwd), E(rmsnorm_bwd), E(rope_fwd), E(rope_bwd),
    E(modulate_fwd), E(modulate_bwd), E(gated_add_fwd), E(gated_add_bwd), E(swiglu_fwd), E(swiglu_bwd),
    E(silu_fwd), E(silu_bwd), E(qkv_split_fwd), E(qkv_split_bwd), E(patchify_fwd), E(patchify_bwd),
    E(unpatchify_fwd), E(unpatchify_bwd), E(timestep_embed_fwd), E(timestep_embed_bwd), E(embedding_fwd),
    E(embedding_bwd), E(add_rows_fwd), E(add_rows_bwd), E(add_fwd), E(incontext_prepend_fwd),
    E(incontext_prepend_bwd), E(incontext_strip_fwd), E(incontext_strip_bwd), E(chunk_fwd), E(chunk_bwd),
    E(vloss_fwd), E(vloss_bwd), E(dropout_fwd), E(dropout_bwd), E(mse_fwd), E(mse_bwd), E(xent_fwd),
    E(xent_bwd), E(unfold_fwd), E(unfold_bwd), E(mean_tokens_fwd), E(mean_tokens_bwd), E(relu_fwd), E(relu_bwd),
    E(maxpool2_fwd), E(maxpool2_bwd), E(lpips_dist_fwd), E(lpips_dist_bwd), E(layernorm_fwd), E(layernorm_bwd),
    E(gelu_fwd), E(gelu_bwd), E(cosine_fwd), E(cosine_bwd), E(resize_bicubic_fwd), E(resize_bicubic_bwd),
    E(accumulate),
};

/* ---- arrays ---- */

#define MAX_TRACKED 4096
static void *tracked_host[MAX_TRACKED], *tracked_dev[MAX_TRACKED];
static int n_host, n_dev;

static void *track_host(void *p) {
    cr_assert(n_host < MAX_TRACKED, "harness: too many host arrays");
    return tracked_host[n_host++] = p;
}

static void *track_dev(void *p) {
    cr_assert(n_dev < MAX_TRACKED, "harness: too many device arrays");
    return tracked_dev[n_dev++] = p;
}

static Arr arr_new(size_t n) {
    Arr a;
    a.n = n;
    a.h = track_host(malloc((n ? n : 1) * sizeof(float)));
    a.d = track_dev(cuda_malloc((n ? n : 1) * sizeof(float)));
    return a;
}

void arr_upload(Arr *a) { cuda_memcpy_h2d(a->d, a->h, a->n * sizeof(float)); }

Arr arr_rand(size_t n, float lo, float hi) {
    static uint64_t tag;
    Arr a = arr_new(n);
    rng_fill_uniform(a.h, n, 1234, RNG_STREAM_TEST + 100 + tag++, 0, lo, hi);
    arr_upload(&a);
    return a;
}

Arr arr_nan(size_t n) {
    Arr a = arr_new(n);
    for (size_t i = 0; i < n; i++) a.h[i] = NAN;
    arr_upload(&a);
    return a;
}

int *dev_ints(const int *h, int n) {
    int *d = track_dev(cuda_malloc((size_t)(n ? n : 1) * sizeof(int)));
    cuda_memcpy_h2d(d, h, (size_t)n * sizeof(int));
    return d;
}

float *arr_download(const Arr *a) {
    float *h = malloc((a->n ? a->n : 1) * sizeof(float));
    cuda_memcpy_d2h(h, a->d, a->n * sizeof(float)); /* waits for the kernels */
    return h;
}

void arr_free_all(void) {
    cuda_synchronize();
    for (int i = 0; i < n_host; i++) free(tracked_host[i]);
    for (int i = 0; i < n_dev; i++) cuda_free(tracked_dev[i]);
    n_host = n_dev = 0;
}

double rel_err(const float *got, const float *want, size_t n) {
    double maxref = 0.0, maxerr = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(got[i]) || !isfinite(want[i])) return INFINITY;
        double r = fabs((double)want[i]), e = fabs((double)got[i] - want[i]);
        maxref = r > maxref ? r : maxref;
        maxerr = e > maxerr ? e : maxerr;
    }
    return maxref > 0.0 ? maxerr / maxref : maxerr;
}

double arr_err(const Arr *a) {
    float *got = arr_download(a);
    double e = rel_err(got, a->h, a->n);
    free(got);
    return e;
}

void expect_close(const Arr *a, double tol, const char *what, const char *file, int line) {
    float *got = arr_download(a);
    double e = rel_err(got, a->h, a->n);
    size_t worst = 0;
    double we = -1.0;
    for (size_t i = 0; i < a->n; i++) {
        double d = isfinite(got[i]) ? fabs((double)got[i] - a->h[i]) : INFINITY;
        if (d > we) we = d, worst = i;
    }
    cr_expect(e <= tol, "%s:%d: %s: relative error %.3g > %.1g (worst element %zu of %zu: gpu %.9g cpu %.9g)", file,
              line, what, e, tol, worst, a->n, a->n ? got[worst] : 0.0f, a->n ? a->h[worst] : 0.0f);
    free(got);
}

/* ---- main: skip without a GPU ---- */

/* 1: a device, 0: none, -1: the probe itself crashed. */
static int probe_device(void) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) _exit(cuda_device_count() > 0 ? 0 : 3);
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid) return -1;
    if (!WIFEXITED(st)) return -1;
    return WEXITSTATUS(st) == 0 ? 1 : WEXITSTATUS(st) == 3 ? 0 : -1;
}

int main(int argc, char *argv[]) {
    int dev = probe_device();
    if (dev == 0) {
        printf("no CUDA device: CUDA op tests skipped\n");
        return 77; /* SKIP_RETURN_CODE in tests/CMakeLists.txt */
    }
    if (dev < 0) {
        fprintf(stderr, "the CUDA device probe (cuda_device_count in a child process) crashed\n");
        return 1;
    }
    struct criterion_test_set *tests = criterion_initialize();
    int result = 0;
    if (criterion_handle_args(argc, argv, true)) result = !criterion_run_all_tests(tests);
    criterion_finalize(tests);
    return result;
}
