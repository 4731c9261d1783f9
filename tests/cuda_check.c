/* tests/cuda_check.c — the CUDA parity tests' harness (see cuda_check.h) and
 * the test program's main, which reports "skipped" to ctest (exit status 77)
 * where there is no GPU.
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

/* ---- helpers of the attention tests ---- */

Arr arr_copy(const Arr *src) {
    Arr a = arr_nan(src->n);
    memcpy(a.h, src->h, src->n * sizeof(float));
    arr_upload(&a);
    return a;
}

void dev_poison(float *d, size_t n) { cuda_memset(d, 0xff, n * sizeof(float)); }

int same_bits(const Arr *a, const Arr *b) {
    float *x = arr_download(a), *y = arr_download(b);
    int eq = memcmp(x, y, a->n * sizeof(float)) == 0;
    free(x), free(y);
    return eq;
}

void ref_lse(float *lse, const float *q, const float *k, int BH, int N, int hd) {
    double scale = 1.0 / sqrt((double)hd);
    for (int bh = 0; bh < BH; bh++)
        for (int a = 0; a < N; a++) {
            const float *qa = q + ((size_t)bh * N + a) * hd;
            double mx = -INFINITY, *s = malloc(sizeof(double) * N), sum = 0;
            for (int b = 0; b < N; b++) {
                const float *kb = k + ((size_t)bh * N + b) * hd;
                double t = 0;
                for (int c = 0; c < hd; c++) t += (double)qa[c] * kb[c];
                s[b] = t * scale;
                mx = fmax(mx, s[b]);
            }
            for (int b = 0; b < N; b++) sum += exp(s[b] - mx);
            lse[(size_t)bh * N + a] = (float)(mx + log(sum));
            free(s);
        }
}

void attention_bwd_subset(Arr g[3], int mask, const Arr g0[3], float *const want[3], const Arr *scratch,
                          const Arr *dout, const Arr *out, const Arr *lse, const Arr *q, const Arr *k, const Arr *v,
                          int B, int H, int N, int hd) {
    for (int t = 0; t < 3; t++) g[t] = arr_copy(&g0[t]);
    dev_poison(scratch->d, scratch->n);
    ops_cuda.attention_bwd(mask & 1 ? g[0].d : NULL, mask & 2 ? g[1].d : NULL, mask & 4 ? g[2].d : NULL, scratch->d,
                           dout->d, out->d, lse->d, q->d, k->d, v->d, B, H, N, hd);
    for (int t = 0; t < 3; t++) memcpy(g[t].h, mask & (1 << t) ? want[t] : g0[t].h, g0[t].n * sizeof(float));
}

void expect_attention_deterministic(int B, int H, int N, int hd) {
    const size_t nt = (size_t)B * H * N * hd, nr = (size_t)B * H * N;
    Arr q = arr_rand(nt, -2, 2), k = arr_rand(nt, -2, 2), v = arr_rand(nt, -1, 1), dout = arr_rand(nt, -1, 1);
    Arr o[2], l[2], g[2][3], scr = arr_nan(nr);
    for (int r = 0; r < 2; r++) {
        o[r] = arr_nan(nt), l[r] = arr_nan(nr);
        for (int t = 0; t < 3; t++) g[r][t] = arr_nan(nt), cuda_memset(g[r][t].d, 0, nt * sizeof(float));
        ops_cuda.attention_fwd(o[r].d, l[r].d, q.d, k.d, v.d, B, H, N, hd);
        ops_cuda.attention_bwd(g[r][0].d, g[r][1].d, g[r][2].d, scr.d, dout.d, o[r].d, l[r].d, q.d, k.d, v.d, B, H,
                               N, hd);
    }
    cr_expect(same_bits(&o[0], &o[1]) && same_bits(&l[0], &l[1]), "attention forward differs run to run");
    for (int t = 0; t < 3; t++) cr_expect(same_bits(&g[0][t], &g[1][t]), "attention gradient %d differs run to run", t);
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

static int cmp_desc(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

/* Smallest gap between the k-th and (k+1)-th largest router probability of any row. */
double sla2_topk_gap(const float *pc, int rows, int nk, int k) {
    if (k >= nk) return INFINITY;
    double worst = INFINITY;
    float *r = malloc(sizeof(float) * nk);
    for (int i = 0; i < rows; i++) {
        memcpy(r, pc + (size_t)i * nk, sizeof(float) * nk);
        qsort(r, nk, sizeof(float), cmp_desc);
        worst = fmin(worst, (double)r[k - 1] - r[k]);
    }
    free(r);
    return worst;
}
