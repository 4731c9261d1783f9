/* kernels/cpu/sla2_gather.c — SLA2 with a hard mask, one query block at a
 * time: the selected key blocks are gathered into one contiguous K, V and
 * the sparse branch is one plain softmax attention over them (one product
 * for the scores, one for P V, instead of a pair of tile products per
 * selected block). The probabilities are kept for backward in
 * Sla2Saved.kept, as the CPU's full attention keeps its own.
 *
 * The linear branch takes whichever form costs less (sla2_cpu_linear_quadratic):
 * the linear form of kernels/cpu/sla2.c, O(N d^2) per (batch, head), or, at
 * short sequences, the quadratic form over the gathered linear keys,
 *   O_l,a = sum_b A_ab v_b / (sum_b A_ab + eps),  A_ab = phi(q_a) . phi(k_b),
 * b over the key blocks query block i did not select. It is the same sum
 * (phi(q_a) H_i = sum_b A_ab v_b, phi(q_a) Z_i = sum_b A_ab) in another order,
 * O(N (N - selected) d); its normalised weights are kept beside the sparse
 * branch's probabilities, so each query row of `kept` covers every key once:
 * with the quadratic form a hard-mask SLA2 step does the matrix work of one
 * full-attention step, whatever the top-k. */
#include <math.h>
#include <string.h>

#include <cblas.h>

#include "kernels/cpu/cpu.h"
#include "kernels/cpu/sla2_internal.h"

#define SLA2_LINEAR_EPS 1e-6f /* as kernels/cpu/sla2.c's linear form */

/* Multiply-adds of the two linear forms, forward (backward scales alike). */
int sla2_cpu_linear_quadratic(const Sla2Dims *dm) {
    double N = dm->N, d = dm->d, nl = (double)(dm->nk - dm->k_sel) * dm->block_k;
    double quadratic = 2.0 * N * nl * d;
    int fewer = dm->nk - dm->k_sel < dm->k_sel ? dm->nk - dm->k_sel : dm->k_sel;
    double linear = 2.0 * N * d * d + (double)dm->nq * fewer * d * d;
    return quadratic <= linear;
}

/* Keys per kept row: every key with the quadratic form, else the most a
 * query block selects. */
static int kept_stride(const Sla2Dims *dm) {
    int sel = dm->k_sel * dm->block_k;
    return sla2_cpu_linear_quadratic(dm) || sel > dm->N ? dm->N : sel;
}

/* Per (b, h): the rows' probabilities and linear weights; with the
 * quadratic form also the linear denominators [N] and phi(Q), phi(K) [N, d]
 * (kept rather than recomputed: the exponentials of the softmax feature map
 * cost as much as a product here). */
size_t sla2_gather_kept_per_pair(const Sla2Dims *dm) {
    size_t n = (size_t)dm->N * kept_stride(dm);
    if (sla2_cpu_linear_quadratic(dm)) n += (size_t)dm->N + 2 * (size_t)dm->N * dm->d;
    return n;
}

typedef struct Kept {
    float *P, *den, *phi_q, *phi_k;
} Kept;

static Kept kept_map(float *kept, const Sla2Dims *dm) {
    size_t Nd = (size_t)dm->N * dm->d;
    Kept k = {.P = kept, .den = kept + (size_t)dm->N * kept_stride(dm)};
    k.phi_q = k.den + dm->N, k.phi_k = k.phi_q + Nd;
    return k;
}

/* Per-thread scratch: the gathered K, V, phi(K) and their gradients, one
 * row tile, and the token index list. */
typedef struct GatherWs {
    float *Kg, *Vg, *Fg, *dKg, *dVg, *dFg, *T;
    int *rows;
} GatherWs;

size_t sla2_gather_scratch_floats(const Sla2Dims *dm) {
    return 6 * (size_t)dm->N * dm->d + (size_t)dm->block_q * dm->N + (size_t)dm->N;
}

static GatherWs gather_ws(float *p, const Sla2Dims *dm) {
    size_t Nd = (size_t)dm->N * dm->d;
    GatherWs g = {.Kg = p, .Vg = p + Nd, .Fg = p + 2 * Nd, .dKg = p + 3 * Nd, .dVg = p + 4 * Nd, .dFg = p + 5 * Nd};
    g.T = p + 6 * Nd;
    g.rows = (int *)(g.T + (size_t)dm->block_q * dm->N);
    return g;
}

/* Query block i's key tokens: the selected blocks' first, then the linear
 * blocks', each in block order. Returns the selected count; *nl the linear. */
static int key_rows(const Sla2Dims *dm, const float *mrow, int *rows, int *nl) {
    int ns = 0, n = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int j = 0; j < dm->nk; j++) {
            if ((mrow[j] != 0.0f) != (pass == 0)) continue;
            int b0 = j * dm->block_k, nb = sla2_block_len(j, dm->block_k, dm->N);
            for (int b = b0; b < b0 + nb; b++) rows[n++] = b;
            if (pass == 0) ns = n;
        }
    *nl = n - ns;
    return ns;
}

static void gather(float *dst, const float *src, const int *rows, int n, int d) {
    for (int t = 0; t < n; t++) memcpy(dst + (size_t)t * d, src + (size_t)rows[t] * d, sizeof(float) * (size_t)d);
}

static void scatter_add(float *dst, const float *src, const int *rows, int n, int d) {
    for (int t = 0; t < n; t++) {
        float *o = dst + (size_t)rows[t] * d;
        const float *s = src + (size_t)t * d;
        for (int c = 0; c < d; c++) o[c] += s[c];
    }
}

void sla2_gather_fwd(const Sla2Dims *dm, const float *q, const float *k, const float *v, const float *mask,
                     float *o_s, float *lse, float *o_l, float *kept, Sla2Ws *w, float *scratch) {
    int N = dm->N, d = dm->d, bq = dm->block_q, ld = kept_stride(dm);
    float scale = 1.0f / sqrtf((float)d);
    Kept kp = kept_map(kept, dm);
    GatherWs g = gather_ws(scratch, dm);
    if (o_l) {
        sla2_phi_fwd(kp.phi_q, q, N, d, dm->feature_map);
        sla2_phi_fwd(kp.phi_k, k, N, d, dm->feature_map);
    }
    for (int i = 0; i < dm->nq; i++) {
        int a0 = i * bq, na = sla2_block_len(i, bq, N), nl;
        int ns = key_rows(dm, mask + (size_t)i * dm->nk, g.rows, &nl);
        gather(g.Kg, k, g.rows, ns, d);
        gather(g.Vg, v, g.rows, ns + (o_l ? nl : 0), d);
        float *P = kept + (size_t)a0 * ld;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, na, ns, d, scale, q + (size_t)a0 * d, d, g.Kg, d, 0.0f,
                    P, ld);
        for (int a = 0; a < na; a++) {
            float *row = P + (size_t)a * ld, mx = cpu_max_f32(row, ns);
            for (int b = 0; b < ns; b++) row[b] = cpu_expf(row[b] - mx);
            double sum = cpu_sum_f64(row, ns);
            float inv = (float)(1.0 / sum);
            for (int b = 0; b < ns; b++) row[b] *= inv;
            lse[a0 + a] = mx + (float)log(sum);
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, na, d, ns, 1.0f, P, ld, g.Vg, d,
                    0.0f, o_s + (size_t)a0 * d, d);
        if (!o_l) continue;
        float *ol = o_l + (size_t)a0 * d;
        if (nl == 0) { /* every block selected: the linear branch is exactly 0 */
            memset(ol, 0, sizeof(float) * (size_t)na * d);
            continue;
        }
        gather(g.Fg, kp.phi_k, g.rows + ns, nl, d);
        float *L = P + ns;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, na, nl, d, 1.0f, kp.phi_q + (size_t)a0 * d, d, g.Fg, d,
                    0.0f, L, ld);
        for (int a = 0; a < na; a++) {
            float *row = L + (size_t)a * ld;
            float dn = (float)cpu_sum_f64(row, nl) + SLA2_LINEAR_EPS, inv = 1.0f / dn;
            kp.den[a0 + a] = dn;
            for (int b = 0; b < nl; b++) row[b] *= inv;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, na, d, nl, 1.0f, L, ld, g.Vg + (size_t)ns * d, d, 0.0f,
                    ol, d);
    }
}

void sla2_gather_bwd(const Sla2Dims *dm, const float *q, const float *k, const float *v, const float *mask,
                     const float *kept, const float *g, int ldg, float alpha, float *dq, float *dk, float *dv,
                     int linear, Sla2Ws *w, float *scratch) {
    int N = dm->N, d = dm->d, bq = dm->block_q, ld = kept_stride(dm);
    float scale = 1.0f / sqrtf((float)d);
    Kept kp = kept_map((float *)kept, dm);
    GatherWs gw = gather_ws(scratch, dm);
    if (linear) {
        memset(w->dphi_q, 0, sizeof(float) * (size_t)N * d);
        memset(w->dphi_k, 0, sizeof(float) * (size_t)N * d);
    }
    for (int i = 0; i < dm->nq; i++) {
        int a0 = i * bq, na = sla2_block_len(i, bq, N), nl;
        int ns = key_rows(dm, mask + (size_t)i * dm->nk, gw.rows, &nl);
        if (!linear) nl = 0;
        gather(gw.Kg, k, gw.rows, ns, d);
        gather(gw.Vg, v, gw.rows, ns + nl, d);
        const float *P = kp.P + (size_t)a0 * ld, *gi = g + (size_t)a0 * ldg, *qi = q + (size_t)a0 * d;
        /* dP = alpha g V^T; dS = P (dP - rowsum(P dP)) */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, na, ns, d, alpha, gi, ldg, gw.Vg, d, 0.0f, gw.T, ns);
        for (int a = 0; a < na; a++) {
            const float *p = P + (size_t)a * ld;
            float *t = gw.T + (size_t)a * ns;
            float D = (float)cpu_dot_f64(p, t, ns);
            for (int b = 0; b < ns; b++) t[b] = p[b] * (t[b] - D);
        }
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, ns, d, na, alpha, P, ld, gi, ldg, 0.0f, gw.dVg, d);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, na, d, ns, scale, gw.T, ns, gw.Kg, d, 1.0f,
                    dq + (size_t)a0 * d, d);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, ns, d, na, scale, gw.T, ns, qi, d, 0.0f, gw.dKg, d);
        scatter_add(dk, gw.dKg, gw.rows, ns, d);
        scatter_add(dv, gw.dVg, gw.rows, ns, d);
        if (nl == 0) continue;
        /* O_l = L V_l with L = A / den: dL = (1 - alpha) g V_l^T; dA = (dL - rowsum(L dL)) / den */
        const float *L = P + ns, *fq = kp.phi_q + (size_t)a0 * d;
        float beta_l = 1.0f - alpha;
        const float *Vl = gw.Vg + (size_t)ns * d;
        gather(gw.Fg, kp.phi_k, gw.rows + ns, nl, d);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, na, nl, d, beta_l, gi, ldg, Vl, d, 0.0f, gw.T, nl);
        for (int a = 0; a < na; a++) {
            const float *l = L + (size_t)a * ld;
            float *t = gw.T + (size_t)a * nl;
            float dot = (float)cpu_dot_f64(l, t, nl), inv = 1.0f / kp.den[a0 + a];
            for (int b = 0; b < nl; b++) t[b] = (t[b] - dot) * inv;
        }
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nl, d, na, beta_l, L, ld, gi, ldg, 0.0f, gw.dVg, d);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, na, d, nl, 1.0f, gw.T, nl, gw.Fg, d, 1.0f,
                    w->dphi_q + (size_t)a0 * d, d);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nl, d, na, 1.0f, gw.T, nl, fq, d, 0.0f, gw.dFg, d);
        scatter_add(dv, gw.dVg, gw.rows + ns, nl, d);
        scatter_add(w->dphi_k, gw.dFg, gw.rows + ns, nl, d);
    }
    if (linear) {
        sla2_phi_bwd(dq, w->dphi_q, q, kp.phi_q, N, d, dm->feature_map);
        sla2_phi_bwd(dk, w->dphi_k, k, kp.phi_k, N, d, dm->feature_map);
    }
}
